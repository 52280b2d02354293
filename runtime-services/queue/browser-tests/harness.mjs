// What every browser-test file shares: the server under test (fake-queue.mjs
// unless URR_QUEUE_URL is set; see waiting.test.mjs for the variables), one
// headless Chromium, the admit hook, and helpers to open and read the page.
import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';
import { startFakeQueue, signJwt } from './fake-queue.mjs';

export const REAL = Boolean(process.env.URR_QUEUE_URL);
export const ROOM = process.env.URR_TEST_ROOM || (REAL ? '' : 'aurora-2026');
export const EVENT = process.env.URR_TEST_EVENT || ROOM;
const FAKE_SECRET = 'fake-user-secret';
// A real service takes up to 15 s (its pollAfterMs) before the first counter check.
export const SLOW = REAL ? 40000 : 20000;
if (REAL && !ROOM) throw new Error('URR_TEST_ROOM is not set (the room of the service at URR_QUEUE_URL)');

// Live bindings, set in before(): `fake` is null against a real service.
export let browser;
export let fake = null;
export let BASE = process.env.URR_QUEUE_URL?.replace(/\/+$/, '');
export let ADMIT = process.env.URR_ADMIT_URL;

before(async () => {
  if (!REAL) {
    fake = await startFakeQueue({ rooms: [ROOM], events: [EVENT], userSecret: FAKE_SECRET });
    BASE = fake.url;
    ADMIT = fake.admitUrl;
  }
  for (const url of [BASE, ADMIT].filter(Boolean)) {
    const host = new URL(url).hostname;
    assert.ok(/^(127\.\d+\.\d+\.\d+|localhost|\[::1\])$/.test(host), `${url} is not a loopback address`);
  }
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    timeout: 30000,
  });
});

after(async () => {
  await browser?.close();
  await fake?.close();
});

/** POSTs to the admit hook; false when the hook does not support the request (501). */
export async function hook(body) {
  const res = await fetch(ADMIT, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body),
    signal: AbortSignal.timeout(10000),
  });
  if (res.status === 501) return false;
  assert.ok(res.ok, `admit hook answered ${res.status}: ${await res.text()}`);
  return true;
}

export function userToken(sub) {
  if (!REAL) return signJwt({ sub, exp: Math.floor(Date.now() / 1000) + 600 }, FAKE_SECRET);
  if (process.env.URR_TEST_USER_TOKEN) return process.env.URR_TEST_USER_TOKEN;
  if (process.env.URR_USER_JWT_SECRET) return signJwt({ sub, exp: Math.floor(Date.now() / 1000) + 600 }, process.env.URR_USER_JWT_SECRET);
  return null;
}

/**
 * Opens `path` in a fresh context. `clock`: install Playwright's clock (time
 * still flows; `skip()` jumps it forward). Every request the page sends to
 * the API (`/v1/`) is logged in `apiCalls` as { at (page clock ms), method, path }.
 */
export async function open(path, { token, viewport = { width: 1200, height: 900 }, javaScriptEnabled = true,
  locale = 'en-US', clock = false, reducedMotion, init } = {}) {
  const context = await browser.newContext({ viewport, javaScriptEnabled, deviceScaleFactor: 1, locale, reducedMotion });
  context.setDefaultTimeout(SLOW);
  const page = await context.newPage();
  const apiCalls = [];
  // A script error fails the test that caused it, not a later assertion.
  page.on('pageerror', (err) => { console.error(`page error: ${err.message}`); process.exitCode = 1; });
  page.on('request', (req) => {
    const url = new URL(req.url());
    if (url.pathname.startsWith('/v1/')) apiCalls.push({ at: Date.now(), method: req.method(), path: url.pathname });
  });
  if (clock) await page.clock.install();
  if (token) await page.addInitScript((t) => window.sessionStorage.setItem('urr.userToken', t), token);
  if (init) await page.addInitScript(init);
  await page.goto(`${BASE}${path}`, { timeout: 15000 });
  return { context, page, apiCalls };
}

/**
 * Moves the page's clock `ms` ahead (due timers fire once), then lets its
 * requests settle. First the page's own requests settle: an answer still on
 * its way would be taken as what the page saw after the jump.
 */
export async function skip(page, ms) {
  await page.waitForLoadState('networkidle').catch(() => {});
  await page.clock.fastForward(ms);
  await page.waitForTimeout(300);
}

export const numbersPosts = () => fake.requests.filter((r) => r.method === 'POST' && r.path === `/v1/rooms/${ROOM}/numbers`);
export const roomPath = (query = '') => `/waiting/${encodeURIComponent(ROOM)}${query}`;
export const textOf = async (page, selector) => (await page.locator(selector).textContent())?.trim();
export const waitText = (page, selector, expected, timeout = SLOW) =>
  page.waitForFunction(([s, e, re]) => {
    const t = document.querySelector(s)?.textContent.trim() ?? '';
    return re ? new RegExp(e).test(t) : t === e;
  }, [selector, expected instanceof RegExp ? expected.source : expected, expected instanceof RegExp], { timeout })
    .catch(async (err) => {
      const seen = await page.locator(selector).textContent().catch(() => '(gone)');
      throw new Error(`${selector} never showed ${expected} (shows ${JSON.stringify(seen?.trim())}): ${err.message}`);
    });

// axe-core, evaluated in the page through the DevTools protocol: the page's
// own CSP (script-src 'self') stays as it is.
const AXE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
export const WCAG_AA = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'];

/** axe-core's violations at WCAG 2.1 AA, as "rule: target…" lines. */
export async function axeViolations(page) {
  await page.evaluate(AXE);
  const found = await page.evaluate((tags) => window.axe.run(document, { runOnly: { type: 'tag', values: tags } })
    .then((r) => r.violations.map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')} (${v.help})`)), WCAG_AA);
  return found;
}
