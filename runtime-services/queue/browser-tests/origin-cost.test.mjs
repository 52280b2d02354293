// Issue 19, item 1: at tier 1 the page computes the serving counter from
// the published parameters, so a waiter costs the origin (or the edge
// cache in front of it) about one request a minute, not a poll every
// 1-15 s. Measured on the page's own clock: Playwright's clock runs the page
// through simulated minutes while the requests it sends are counted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ADMIT, ROOM, fake, hook, open, roomPath, skip, waitText } from './harness.mjs';

const MINUTES = 5;
// The page re-fetches the parameters every 51-69 s: at most ~1.2 a minute. The page before this issue polled every 15 s far back and
// every 5 s near the front (4 and 12 a minute).
const BOUND_PER_MINUTE = 1.5;

for (const [name, next, serving] of [['far back (4,000 ahead)', 4999, 1000], ['near the front (30 ahead)', 5029, 5000]]) {
  test(`tier 1 origin cost, ${name}: at most ${BOUND_PER_MINUTE} requests per waiter per minute`, { timeout: 120000 }, async (t) => {
    if (!ADMIT) return t.skip('URR_ADMIT_URL is not set');
    await hook({ room: ROOM, next, serving, perInterval: 25, intervalSeconds: 30 });
    const { context, page, apiCalls } = await open(roomPath('?return=/events/x'), { clock: true });
    await waitText(page, '#figure', (next + 1).toLocaleString('en-US'), 10000);
    await page.waitForTimeout(500); // the start-up requests (number, parameters) settle
    const seen = apiCalls.length;
    const sinceServer = Date.now();
    for (let s = 0; s < MINUTES * 60; s += 1) {
      await page.clock.runFor(1000);
      await new Promise((r) => setTimeout(r, 10)); // a request sent in this second is answered
    }
    const sent = apiCalls.length - seen;
    const perMinute = sent / MINUTES;
    const server = fake ? fake.requests.filter((r) => r.at >= sinceServer).length / MINUTES : null;
    console.log(`# origin requests per waiter per minute, ${name}: ${perMinute.toFixed(2)} sent by the page`
      + (server === null ? '' : `, ${server.toFixed(2)} seen by the server`) + ` (${sent} in ${MINUTES} simulated minutes)`);
    assert.ok(perMinute <= BOUND_PER_MINUTE, `${perMinute} requests per minute: ${JSON.stringify(apiCalls.slice(seen).map((c) => c.path))}`);
    assert.ok(sent >= 1, 'the page still re-fetches the parameters now and then');
    await context.close();
  });
}

test('tier 1: the counter moves on the page\'s own clock, without a request, and the skew is corrected', { timeout: 60000 }, async (t) => {
  if (!ADMIT) return t.skip('URR_ADMIT_URL is not set');
  // The server's clock is an hour behind the visitor's (on a real service,
  // none): the page must go by the server's `now`, or it would think
  // 360 intervals have passed. Moving since a second ago: 10 numbers every 10 s.
  const offset = fake ? -3600 : 0;
  if (fake) await hook({ room: ROOM, clockOffset: offset });
  t.after(() => fake && hook({ room: ROOM, clockOffset: 0 }));
  const epoch = Math.floor(Date.now() / 1000) + offset - 1;
  await hook({ room: ROOM, next: 1999, serving: 1000, epoch, perInterval: 10, intervalSeconds: 10 });
  const { context, page, apiCalls } = await open(roomPath('?return=/events/x'), { clock: true });
  await waitText(page, '#figure', '2,000', 10000);
  await waitText(page, '#side', '1,000', 5000);
  // The parameters follow the number within a second (the page's spacing).
  for (let i = 0; i < 50 && !apiCalls.some((c) => c.path.endsWith('/serving')); i += 1) await page.clock.runFor(100);
  await page.waitForTimeout(300);
  const seen = apiCalls.length;
  await skip(page, 20000);
  await waitText(page, '#side', '1,020', 5000);
  assert.equal(await page.locator('#ahead-text').textContent(), '980 people ahead of you');
  assert.deepEqual(apiCalls.slice(seen), [], 'no request while the counter moves');
  await context.close();
});
