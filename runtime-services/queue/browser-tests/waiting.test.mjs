// The waiting page in headless Chromium, against a real urr-queue process
// with a real Redis (run.sh starts both). A visitor sees their place, then is
// sent on when admitted.
//
// Env: URR_QUEUE_URL (the running service), URR_EVENT_ID, URR_REDIS_URL,
// URR_USER_JWT_SECRET (the service's HS256 user key), CHROMIUM_PATH,
// URR_SCREENSHOT=1 to refresh docs/waiting-page.png.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { chromium } from 'playwright-core';

const BASE = process.env.URR_QUEUE_URL;
const EVENT = process.env.URR_EVENT_ID;
const REDIS = process.env.URR_REDIS_URL;
const SECRET = process.env.URR_USER_JWT_SECRET;
for (const [name, value] of Object.entries({ URR_QUEUE_URL: BASE, URR_EVENT_ID: EVENT, URR_REDIS_URL: REDIS, URR_USER_JWT_SECRET: SECRET })) {
  if (!value) throw new Error(`${name} is not set; run this through run.sh`);
}
const SCREENSHOT = new URL('../../../docs/waiting-page.png', import.meta.url).pathname;

let browser;
before(async () => {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});
after(async () => {
  await browser?.close();
});

function redis(...args) {
  return execFileSync('redis-cli', ['-u', REDIS, ...args], { encoding: 'utf8' }).trim();
}

function userToken(sub) {
  const b64 = (value) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const body = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ sub, exp: Math.floor(Date.now() / 1000) + 600 })}`;
  return `${body}.${createHmac('sha256', SECRET).update(body).digest('base64url')}`;
}

async function openPage(path, init) {
  const context = await browser.newContext({ viewport: { width: 900, height: 860 } });
  const page = await context.newPage();
  if (init) await page.addInitScript(init);
  await page.goto(`${BASE}${path}`);
  return { context, page };
}

test('tier 1: a visitor gets a number, watches the counter, and is sent on when served', async () => {
  const now = Math.floor(Date.now() / 1000);
  // A crowd took numbers up to 1233; 1000 are served; 50 more every 4 s from 2 s from now.
  redis('SET', `urr:{${EVENT}}:t1:next`, '1233');
  redis('HSET', `urr:{${EVENT}}:edge`, 'start', '1000', 'perInterval', '50', 'intervalSeconds', '4', 'epoch', String(now + 2));
  const { context, page } = await openPage(`/waiting/${EVENT}?return=/events/aurora/seats`);
  await page.waitForFunction(() => document.getElementById('figure').textContent.trim() !== '…', null, { timeout: 10000 });
  const number = Number((await page.textContent('#figure')).replace(/\D/g, ''));
  assert.equal(number, 1234, 'the next number is shown');
  assert.equal(await page.textContent('#figure-label'), 'Your number');
  assert.match(await page.textContent('#status'), /Now serving number \d+/);
  assert.ok(Number((await page.textContent('#ahead')).replace(/\D/g, '')) >= 1, 'someone is still ahead');
  const cookies = await context.cookies();
  assert.ok(cookies.some((c) => c.name === 'urr-vwr-token' && c.httpOnly), 'an HttpOnly pass was set');
  // The counter moves: the progress bar follows.
  await page.waitForFunction(() => {
    const value = document.getElementById('progress').value;
    return value > 0 && value < 1;
  }, null, { timeout: 20000 });
  assert.match(await page.textContent('#status'), /Now serving number 1,(0[5-9]|1|2)/);
  if (process.env.URR_SCREENSHOT === '1') {
    await page.waitForTimeout(800); // let the progress bar's transition finish
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
  }
  await page.waitForURL(`${BASE}/events/aurora/seats`, { timeout: 60000 });
  await context.close();
});

test('tier 2: a signed-in buyer sees their position, then is admitted with an entry token', async () => {
  const now = Math.floor(Date.now() / 1000);
  redis('HSET', `urr:{${EVENT}}:policy`, 'active', '1', 'usersPerSecond', '5', 'maxActiveUsers', '100',
    'entryTokenTtlSeconds', '300', 'salesOpenAt', String(now + 4), 'preQueueOpensAt', '0', 'randomizeAtOpen', '0');
  const token = userToken(`buyer-${Date.now()}`);
  const { context, page } = await openPage(`/waiting/${EVENT}?event=${EVENT}&return=/events/aurora/seats`,
    `window.sessionStorage.setItem('urr.userToken', ${JSON.stringify(token)});`);
  await page.waitForFunction(() => /^\d/.test(document.getElementById('figure').textContent.trim()), null, { timeout: 10000 });
  assert.equal(await page.textContent('#figure-label'), 'Your place');
  assert.equal((await page.textContent('#figure')).trim(), '1');
  assert.match(await page.textContent('#status'), /people in line/);
  await page.waitForURL(`${BASE}/events/aurora/seats`, { timeout: 30000 });
  const entry = await page.evaluate((event) => window.sessionStorage.getItem(`urr.entryToken.${event}`), EVENT);
  assert.ok(entry && entry.split('.').length === 3, 'the entry token (a JWT) is kept for the ticket API');
  const claims = JSON.parse(Buffer.from(entry.split('.')[1], 'base64url').toString());
  assert.equal(claims.evt, EVENT);
  await context.close();
});

test('the return target is never another site', async () => {
  // Everyone is already served: the page continues at once, but only to a path here.
  redis('HSET', `urr:{${EVENT}}:edge`, 'start', '100000000', 'perInterval', '1', 'intervalSeconds', '1', 'epoch', '0');
  for (const evil of ['https://evil.example/', '//evil.example/x', '/\\evil.example']) {
    const { context, page } = await openPage(`/waiting/${EVENT}?return=${encodeURIComponent(evil)}`);
    await page.waitForURL((url) => url.pathname === '/' , { timeout: 15000 });
    assert.equal(new URL(page.url()).origin, BASE, evil);
    await context.close();
  }
});
