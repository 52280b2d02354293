// The waiting page in headless Chromium (node --test + playwright-core).
//
// Server under test: URR_QUEUE_URL (e.g. http://127.0.0.1:8080), its room
// URR_TEST_ROOM, and URR_ADMIT_URL, a hook the test POSTs JSON to in order to
// move the serving counter and admit (the body format is documented at
// admit() in fake-queue.mjs; run.sh provides one for a real urr-queue on
// Redis). Tier 2 against a real service also needs URR_TEST_EVENT (default:
// the room) and a user JWT: URR_TEST_USER_TOKEN, or URR_USER_JWT_SECRET to
// sign one (HS256).
// Without URR_QUEUE_URL the test starts fake-queue.mjs on 127.0.0.1.
//
// CHROMIUM_PATH (default /usr/bin/chromium); URR_SCREENSHOT=1 also writes
// docs/waiting-page.png at the repository root.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ADMIT, BASE, EVENT, ROOM, SLOW, browser, fake, hook, numbersPosts, open, skip, textOf, userToken, waitText } from './harness.mjs';

const SCREENSHOT = fileURLToPath(new URL('../../../docs/waiting-page.png', import.meta.url));

test('tier 1: a visitor gets a number, watches the line move, and is sent on when served', { timeout: 120000 }, async (t) => {
  if (!ADMIT) return t.skip('URR_ADMIT_URL is not set: the counter cannot be moved');
  // 1,233 numbers taken so far, 1,000 served.
  await hook({ room: ROOM, next: 1233, serving: 1000, perInterval: 25, intervalSeconds: 30 });
  const { context, page } = await open(`/waiting/${encodeURIComponent(ROOM)}?return=/events/x`, { clock: true });

  await waitText(page, '#figure', '1,234', 10000);
  assert.equal(await textOf(page, 'h1'), "You're in line");
  assert.equal(await textOf(page, '#figure-label'), 'Your number');
  assert.equal(await textOf(page, '#side'), '1,000');
  assert.equal(await textOf(page, '#ahead-text'), '234 people ahead of you');
  assert.equal(await textOf(page, '#room'), `Waiting room · ${ROOM}`);
  assert.equal(await page.locator('progress#progress').evaluate((p) => p.value), 0);
  assert.match(await textOf(page, '#announce'), /^Your number is 1,234\. 234 people ahead of you\. Estimated wait /);
  // The counter moves 25 per 30 s: 234 ahead is 10 intervals, about 5 minutes.
  await waitText(page, '#eta', 'about 5 minutes');
  assert.equal(await textOf(page, '#announce'), 'Your number is 1,234. 234 people ahead of you. Estimated wait about 5 minutes.');

  const cookie = (await context.cookies()).find((c) => c.name === 'urr-vwr-token');
  assert.ok(cookie?.httpOnly, 'the pass is an HttpOnly cookie');
  const stored = () => page.evaluate((k) => JSON.parse(sessionStorage.getItem(k)), `urr.vwr.${ROOM}`);
  assert.deepEqual(await stored(), { number: 1234, firstServing: 1000 });

  // A reload keeps the number (sessionStorage + the cookie), it does not take a new one.
  await page.reload();
  await waitText(page, '#figure', '1,234', 10000);
  await waitText(page, '#status-text', /^Live/, 10000);
  assert.deepEqual(await stored(), { number: 1234, firstServing: 1000 });
  if (fake) {
    const posts = numbersPosts();
    assert.deepEqual(posts.map((r) => [r.status, r.cookie]), [[201, false], [201, true]]);
  }

  // 100 more are served: the page follows without a reload, at its next
  // look at the parameters (every 51-69 s).
  await hook({ room: ROOM, serving: 1100 });
  await skip(page, 75000);
  await waitText(page, '#side', '1,100');
  assert.equal(await textOf(page, '#ahead-text'), '134 people ahead of you');
  assert.equal(await textOf(page, '#pct'), '43%');
  const value = await page.locator('#progress').evaluate((p) => p.value);
  assert.ok(Math.abs(value - 100 / 234) < 0.001, `progress ${value}`);
  assert.equal(await textOf(page, '#eta'), 'about 3 minutes');
  if (process.env.URR_SCREENSHOT === '1') {
    await page.waitForTimeout(1000); // the bar's transition
    mkdirSync(new URL('../../../docs/', import.meta.url), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
  }

  // Their number comes up: "It's your turn", then on to the return path.
  const turn = waitText(page, 'h1', "It's your turn");
  await hook({ room: ROOM, serving: 1234 });
  await skip(page, 75000);
  await turn;
  assert.equal(await page.locator('#continue-link').getAttribute('href'), '/events/x');
  await page.waitForURL(`${BASE}/events/x`, { timeout: 10000 });
  assert.equal(page.url(), `${BASE}/events/x`);
  await context.close();
});

test('tier 2: a signed-in buyer sees their position, is admitted, and keeps the entry token', { timeout: 120000 }, async (t) => {
  if (!ADMIT) return t.skip('URR_ADMIT_URL is not set');
  const token = userToken(`buyer-${Date.now()}-${Math.random().toString(36).slice(2)}`);
  if (!token) return t.skip('no user token: set URR_TEST_USER_TOKEN or URR_USER_JWT_SECRET');
  await hook({ event: EVENT, hold: true, ahead: 41, behind: 4958 });
  const { context, page } = await open(
    `/waiting/${encodeURIComponent(ROOM)}?event=${encodeURIComponent(EVENT)}&return=${encodeURIComponent('/events/x/seats?from=queue')}`,
    { token });

  await waitText(page, '#figure', '42', 10000);
  assert.equal(await textOf(page, '#figure-label'), 'Your place');
  assert.equal(await textOf(page, '#side-label'), 'In line');
  assert.equal(await textOf(page, '#ahead-text'), '41 people ahead of you');
  if (fake) {
    assert.equal(await textOf(page, '#side'), '5,000');
    const calls = fake.requests.filter((r) => r.path.startsWith(`/v1/events/${EVENT}/queue`));
    assert.equal(calls[0].method, 'POST');
    assert.ok(calls.every((r) => r.auth), 'every queue call carries the bearer token');
    assert.equal(numbersPosts().filter((r) => r.at >= calls[0].at).length, 0, 'tier 2 takes no tier-1 number');
  }

  await hook({ event: EVENT, advance: 30 });
  await waitText(page, '#figure', '12');
  assert.equal(await textOf(page, '#ahead-text'), '11 people ahead of you');
  assert.equal(await textOf(page, '#pct'), '71%');

  const turn = waitText(page, 'h1', "It's your turn");
  await hook({ event: EVENT, admit: true });
  await turn;
  await page.waitForURL(`${BASE}/events/x/seats?from=queue`, { timeout: 10000 });
  assert.equal(page.url(), `${BASE}/events/x/seats?from=queue`);
  const entry = await page.evaluate((e) => sessionStorage.getItem(`urr.entryToken.${e}`), EVENT);
  assert.ok(entry && entry.split('.').length === 3, 'the entry token (a JWT) is in sessionStorage');
  const claims = JSON.parse(Buffer.from(entry.split('.')[1], 'base64url').toString());
  assert.equal(claims.evt, EVENT);
  await context.close();
});

test('tier 2 while the edge gates: the page takes a number first and joins once it is served', { timeout: 120000 }, async (t) => {
  if (!ADMIT) return t.skip('URR_ADMIT_URL is not set');
  const token = userToken(`gated-${Date.now()}-${Math.random().toString(36).slice(2)}`);
  if (!token) return t.skip('no user token: set URR_TEST_USER_TOKEN or URR_USER_JWT_SECRET');
  await hook({ event: EVENT, hold: true, ahead: 3, behind: 10, gate: ROOM });
  // Leave the queue as the next test expects it: ungated, nobody waiting.
  t.after(() => hook({ event: EVENT, gate: false, admit: true }));
  await hook({ room: ROOM, serving: 7000, next: 7004 });
  const since = Date.now();
  const joins = () => fake.requests.filter((r) => r.at >= since && r.method === 'POST' && r.path === `/v1/events/${EVENT}/queue`);
  const { context, page } = await open(
    `/waiting/${encodeURIComponent(ROOM)}?event=${encodeURIComponent(EVENT)}&return=${encodeURIComponent('/events/x/seats')}`,
    { token, clock: true });

  // Refused at the queue (pass-required): the page takes number 7005 and waits at tier 1.
  await waitText(page, '#figure', '7,005', 10000);
  assert.equal(await textOf(page, '#figure-label'), 'Your number');
  if (fake) assert.equal(joins()[0].status, 403, 'the first join, without a pass, is refused');

  await hook({ room: ROOM, serving: 7005 });
  await skip(page, 75000);
  // Served: the page joins with the pass and shows the place in line.
  await waitText(page, '#figure-label', 'Your place', SLOW);
  // 3 ahead; a real queue may still hold someone from an earlier test.
  await waitText(page, '#figure', fake ? '4' : /^\d{1,2}$/);
  if (fake) {
    const last = joins().at(-1);
    assert.equal(last.status, 200);
    assert.ok(last.cookie, 'the join carries the pass cookie');
  }
  await context.close();
});

test('tier 2: an expired sign-in asks the buyer to sign in again', { timeout: 60000 }, async () => {
  const { context, page } = await open(`/waiting/${encodeURIComponent(ROOM)}?event=${encodeURIComponent(EVENT)}&return=/events/x`,
    { token: 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4IiwiZXhwIjoxfQ.bm90LWEtc2lnbmF0dXJl' });
  await waitText(page, 'h1', 'Please sign in again', 10000);
  assert.match(await textOf(page, '#status-text'), /sign-in has expired/);
  assert.equal(new URL(page.url()).pathname, `/waiting/${ROOM}`, 'the page stays');
  await context.close();
});

test('tier 2: heartbeats every 20 s, the server\'s poll interval, and a check on returning to the tab', { timeout: 60000 }, async (t) => {
  if (!ADMIT || !fake) return t.skip('needs the fake (the poll interval is set through its hook)');
  const token = userToken(`buyer-${Date.now()}-hb`);
  await hook({ event: EVENT, hold: true, ahead: 5, behind: 0, pollAfterMs: 30000 });
  const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
  const page = await context.newPage();
  await page.clock.install();
  await page.addInitScript((tk) => window.sessionStorage.setItem('urr.userToken', tk), token);
  const since = Date.now();
  await page.goto(`${BASE}/waiting/${encodeURIComponent(ROOM)}?event=${encodeURIComponent(EVENT)}`, { timeout: 15000 });
  await waitText(page, '#figure', '6', 10000);
  const calls = () => fake.requests.filter((r) => r.at >= since && r.path.startsWith(`/v1/events/${EVENT}/queue`))
    .map((r) => `${r.method} ${r.path.slice(`/v1/events/${EVENT}/queue`.length) || '/'} ${r.auth}`);
  assert.deepEqual(calls(), ['POST / true']);
  // 20 s on the page's clock: one heartbeat, and no poll before the 30 s the server asked for.
  await page.clock.runFor(20500);
  for (let i = 0; i < 50 && calls().length < 2; i += 1) await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(calls(), ['POST / true', 'POST /heartbeat true']);
  // Hidden, then shown again: the page checks its place at once.
  await page.evaluate(() => {
    Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => 'visible' });
    document.dispatchEvent(new Event('visibilitychange'));
  });
  for (let i = 0; i < 50 && calls().length < 3; i += 1) await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(calls(), ['POST / true', 'POST /heartbeat true', 'GET /me true']);
  await context.close();
  await hook({ event: EVENT, pollAfterMs: 1000 });
});

test('the return target is never another site', { timeout: 120000 }, async (t) => {
  if (!ADMIT) return t.skip('URR_ADMIT_URL is not set');
  await hook({ room: ROOM, serving: 1000000000 }); // everyone is served: the page continues at once
  for (const evil of ['https://evil.example/', '//evil.example/x', '/\\evil.example/', '/\t/evil.example/', 'javascript:alert(1)', 'evil.example']) {
    const { context, page } = await open(`/waiting/${encodeURIComponent(ROOM)}?return=${encodeURIComponent(evil)}`);
    await waitText(page, 'h1', "It's your turn", 10000);
    assert.equal(await page.locator('#continue-link').getAttribute('href'), '/', evil);
    await page.waitForURL(`${BASE}/`, { timeout: 10000 });
    assert.equal(page.url(), `${BASE}/`, evil);
    await context.close();
  }
});

test('a 429 on the first number request is retried after Retry-After', { timeout: 60000 }, async (t) => {
  if (!ADMIT) return t.skip('URR_ADMIT_URL is not set');
  if (!await hook({ room: ROOM, next: 500, serving: 400, perInterval: 25, intervalSeconds: 30, throttle: { count: 1, retryAfter: 2 } })) {
    return t.skip('the admit hook cannot make the service answer 429');
  }
  const since = Date.now();
  const { context, page } = await open(`/waiting/${encodeURIComponent(ROOM)}?return=/events/x`);
  await waitText(page, '#status-text', 'The line is busy — trying again in 2 seconds…', 5000);
  assert.equal(await textOf(page, 'h1'), "You're in line", 'the page stays readable while throttled');
  await waitText(page, '#figure', '501', 10000);
  if (fake) {
    const posts = numbersPosts().filter((r) => r.at >= since);
    assert.deepEqual(posts.map((r) => r.status), [429, 201]);
    assert.ok(posts[1].at - posts[0].at >= 1900, `retried after ${posts[1].at - posts[0].at} ms`);
  }
  await context.close();
});

test('a dropped connection shows "Reconnecting…" and the page recovers', { timeout: 60000 }, async (t) => {
  if (!ADMIT) return t.skip('URR_ADMIT_URL is not set');
  if (!await hook({ room: ROOM, next: 700, serving: 650, failForMs: 3000 })) return t.skip('the admit hook cannot drop connections');
  const { context, page } = await open(`/waiting/${encodeURIComponent(ROOM)}?return=/events/x`, { viewport: { width: 390, height: 844 } });
  await waitText(page, '#status-text', /^Reconnecting…/, 10000);
  assert.equal(await textOf(page, '#figure'), '701', 'the last known place stays on screen');
  await waitText(page, '#status-text', /^Live/, 15000);
  assert.equal(await textOf(page, '#ahead-text'), '51 people ahead of you');
  assert.match(await textOf(page, '#checked'), /^\d{1,2}:\d\d:\d\d [AP]M$/);
  await context.close();
});

test('without JavaScript the page explains itself and refreshes', { timeout: 30000 }, async () => {
  const { context, page } = await open(`/waiting/${encodeURIComponent(ROOM)}`, { javaScriptEnabled: false });
  assert.equal(await textOf(page, 'h1'), "You're in line");
  const visible = await page.locator('body').innerText();
  assert.match(visible, /JavaScript is turned off\. This page reloads itself every 30 seconds/);
  assert.doesNotMatch(visible, /Your number|Estimated wait/, 'no empty live figures without JavaScript');
  const html = await page.content();
  assert.match(html, /<noscript><meta http-equiv="refresh" content="30"><\/noscript>/);
  await context.close();
});

test('tier 2 with an invite code: redeemed with the join, and a refused one leaves the buyer in the ordinary line', { timeout: 90000 }, async (t) => {
  // The queue's side of codes is tested on Redis (tests/invites.rs); here
  // the page's: it sends the code, and copes with a refusal.
  if (!fake) return t.skip('the fake queue decides the codes; a real one needs codes signed with its key');
  const token = userToken(`vip-${Date.now()}`);
  await hook({ event: EVENT, hold: true, ahead: 300, behind: 10 });
  await hook({ event: EVENT, invite: { code: 'GOOD-CODE', mode: 'skip' } });
  await hook({ event: EVENT, invite: { code: 'USED-CODE', mode: 'used' } });
  const joins = () => fake.requests.filter((r) => r.method === 'POST' && r.path === `/v1/events/${EVENT}/queue`);
  const before = joins().length;
  const vip = await open(`/waiting/${encodeURIComponent(ROOM)}?event=${encodeURIComponent(EVENT)}&urr-invite=GOOD-CODE&return=/events/x`, { token });
  await vip.page.waitForURL(`${BASE}/events/x`, { timeout: 15000 });
  assert.deepEqual(JSON.parse(joins()[before].body), { inviteCode: 'GOOD-CODE' });
  await vip.context.close();

  const second = joins().length;
  const late = await open(`/waiting/${encodeURIComponent(ROOM)}?event=${encodeURIComponent(EVENT)}&urr-invite=USED-CODE&return=/events/x`,
    { token: userToken(`late-${Date.now()}`) });
  await waitText(late.page, '#status-text', "Your invite code could not be used, so you're in the regular line.", 15000);
  assert.equal(await textOf(late.page, 'h1'), "You're in line");
  for (let i = 0; i < 50 && joins().length < second + 2; i += 1) await new Promise((r) => setTimeout(r, 200));
  const tried = joins().slice(second);
  assert.equal(JSON.parse(tried[0].body).inviteCode, 'USED-CODE');
  assert.equal(tried[1].body, '', 'the second join goes without the refused code');
  await late.context.close();

  const told = await open(`/waiting/${encodeURIComponent(ROOM)}?event=${encodeURIComponent(EVENT)}&urr-invite-refused=expired&return=/events/x`,
    { token: userToken(`told-${Date.now()}`) });
  await waitText(told.page, '#status-text', "Your invite code could not be used, so you're in the regular line.", 15000);
  await told.context.close();
});
