// Issue 19, items 4 and 5: every state has its screen, each passes axe-core
// at WCAG 2.1 AA (wcag2a, wcag2aa, wcag21a, wcag21aa) with zero violations,
// and URR_SCREENSHOT=1 writes each to docs/waiting-page/{state}.png.
// The states the queue announces with `admission` (issue 18's contract) are
// driven through the fake; against a real service only what it has runs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ADMIT, EVENT, REAL, ROOM, SLOW, axeViolations, fake, hook, open, roomPath, skip, textOf, userToken, waitText } from './harness.mjs';

const SHOTS = fileURLToPath(new URL('../../../docs/waiting-page/', import.meta.url));
const eventPath = (ret = '/events/x') => `${roomPath()}?event=${encodeURIComponent(EVENT)}&return=${encodeURIComponent(ret)}`;
const now = () => Math.floor(Date.now() / 1000);

/** Zero axe violations, then the screenshot when asked for. */
async function check(page, name) {
  await page.waitForTimeout(900); // the progress bar's transition
  const violations = await axeViolations(page);
  assert.deepEqual(violations, [], `${name}: axe-core at WCAG 2.1 AA`);
  if (process.env.URR_SCREENSHOT === '1') {
    mkdirSync(SHOTS, { recursive: true });
    await page.screenshot({ path: `${SHOTS}${name}.png`, fullPage: true });
  }
}

// The tab in the background, as far as the page can tell.
const HIDDEN = () => {
  window.__hidden = true;
  Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => (window.__hidden ? 'hidden' : 'visible') });
  window.__notes = [];
  // A visitor who allowed notifications: what the page shows is recorded.
  window.Notification = function Notification(title, options) { window.__notes.push({ title, body: options && options.body }); };
  window.Notification.permission = 'granted';
};

test('before open: a countdown to the opening, in the event\'s time zone', { timeout: 60000 }, async (t) => {
  if (!ADMIT) return t.skip('URR_ADMIT_URL is not set');
  await hook({ room: ROOM, next: 2999, serving: 2000, epoch: now() + 600, perInterval: 25, intervalSeconds: 30 });
  const { context, page } = await open(roomPath('?return=/events/x'));
  await waitText(page, 'h1', "The sale hasn't opened yet", 10000);
  await waitText(page, '#countdown', /^(10:00|09:\d\d)$/, 5000);
  assert.match(await textOf(page, '#opens-at'), /^at \d{1,2}:\d\d [AP]M GMT\+9$/);
  assert.equal(await textOf(page, '#figure'), '3,000');
  // 600 s to the opening, then 40 intervals of 30 s.
  assert.match(await textOf(page, '#eta'), /^about (29|30) minutes$/);
  assert.match(await textOf(page, '#announce'), /^The sale opens at \d{1,2}:\d\d [AP]M GMT\+9\.$/);
  await check(page, 'before-open');
  await context.close();
});

test('waiting (tier 1 and tier 2 with places left) passes axe', { timeout: 60000 }, async (t) => {
  if (!ADMIT) return t.skip('URR_ADMIT_URL is not set');
  await hook({ room: ROOM, next: 1233, serving: 1000, perInterval: 25, intervalSeconds: 30 });
  const one = await open(roomPath('?return=/events/x'));
  await waitText(one.page, '#eta', 'about 5 minutes', 10000);
  await check(one.page, 'waiting');
  await one.context.close();
  if (!fake) return undefined;
  await hook({ event: EVENT, hold: true, ahead: 41, behind: 4958, placesLeft: 1234 });
  t.after(() => hook({ event: EVENT, placesLeft: null, admit: true }));
  const two = await open(eventPath(), { token: userToken(`buyer-${Date.now()}-w`) });
  await waitText(two.page, '#figure', '42', 10000);
  await waitText(two.page, '#places', '1,234', 5000);
  assert.equal(await two.page.locator('#places-stat').isVisible(), true);
  await check(two.page, 'waiting-signed-in');
  await two.context.close();
  return undefined;
});

test('your turn in a background tab: the title and a notification say so, and the page goes on when shown', { timeout: 60000 }, async (t) => {
  if (!ADMIT) return t.skip('URR_ADMIT_URL is not set');
  // Number 100 is served by the time it is taken (the tier-1 test covers a
  // turn that comes while the page watches the counter).
  await hook({ room: ROOM, next: 99, serving: 100, perInterval: 25, intervalSeconds: 30 });
  const { context, page } = await open(roomPath('?return=/events/x'), { init: HIDDEN });
  await waitText(page, 'h1', "It's your turn", 10000);
  assert.equal(await page.title(), "✓ It's your turn!");
  assert.deepEqual(await page.evaluate(() => window.__notes),
    [{ title: "It's your turn", body: 'Your turn has come: continue to the sale.' }]);
  assert.equal(new URL(page.url()).pathname, `/waiting/${ROOM}`, 'a hidden tab stays on its turn');
  assert.equal(await textOf(page, '#lead'), 'Thanks for waiting. Come back to this tab to continue.');
  await check(page, 'your-turn');
  await page.evaluate(() => { window.__hidden = false; document.dispatchEvent(new Event('visibilitychange')); });
  await page.waitForURL(/\/events\/x$/, { timeout: 10000 });
  await context.close();
});

test('paused: the counter is frozen at serving(pausedAt), the place is kept', { timeout: 60000 }, async (t) => {
  if (!ADMIT) return t.skip('URR_ADMIT_URL is not set');
  // Moving 10 per 10 s from 60 s ago, paused 30 s ago: frozen at 1,030.
  await hook({ room: ROOM, next: 1999, serving: 1000, epoch: now() - 60, perInterval: 10, intervalSeconds: 10, pausedAt: now() - 30 });
  t.after(() => hook({ room: ROOM, pausedAt: null }));
  const { context, page } = await open(roomPath('?return=/events/x'), { clock: true });
  await waitText(page, 'h1', 'The line is paused', 10000);
  await waitText(page, '#side', '1,030', 5000);
  await skip(page, 20000);
  assert.equal(await textOf(page, '#side'), '1,030', 'frozen while paused');
  assert.equal(await textOf(page, '#eta'), 'paused');
  assert.match(await textOf(page, '#status-text'), /^Paused/);
  await check(page, 'paused');
  // Resumed (the operator republishes without pausedAt): the page follows
  // at its next look, within 30 s while paused.
  await hook({ room: ROOM, pausedAt: null, serving: 1030 });
  await skip(page, 36000);
  await waitText(page, 'h1', "You're in line", 10000);
  await context.close();
});

test('tier 2 paused and draining follow `admission`', { timeout: 90000 }, async (t) => {
  if (!ADMIT) return t.skip('URR_ADMIT_URL is not set');
  const token = userToken(`buyer-${Date.now()}-p`);
  if (!token) return t.skip('no user token');
  await hook({ event: EVENT, hold: true, ahead: 9, behind: 0, admission: 'paused' });
  t.after(() => hook({ event: EVENT, admission: null, admit: true }));
  const { context, page } = await open(eventPath(), { token });
  await waitText(page, 'h1', 'The line is paused', 10000);
  // 9 ahead (a real queue may still hold someone from an earlier test).
  assert.match(await textOf(page, '#figure'), fake ? /^10$/ : /^\d+$/);
  await hook({ event: EVENT, admission: 'draining' });
  await waitText(page, 'h1', "You're in line", SLOW);
  assert.equal(await textOf(page, '#lead'), 'The line is closed to newcomers; everyone in it keeps their place.');
  await context.close();
  return undefined;
});

test('sold out, at tier 1 and tier 2', { timeout: 60000 }, async (t) => {
  if (!fake) return t.skip('sold out needs the ticket service\'s inventory: the fake has it');
  await hook({ room: ROOM, next: 500, serving: 400, admission: 'soldOut' });
  t.after(() => hook({ room: ROOM, admission: null }));
  const one = await open(roomPath('?return=/events/x'), { clock: true });
  await waitText(one.page, 'h1', 'Sold out', 10000);
  await check(one.page, 'sold-out');
  // Places come back (holds lapse): the page carries on at its next look (30 s while held).
  await hook({ room: ROOM, admission: null });
  await skip(one.page, 36000);
  await waitText(one.page, 'h1', "You're in line", 10000);
  await one.context.close();
  await hook({ event: EVENT, hold: true, ahead: 3, admission: 'soldOut' });
  t.after(() => hook({ event: EVENT, admission: null, admit: true }));
  const two = await open(eventPath(), { token: userToken(`buyer-${Date.now()}-s`) });
  await waitText(two.page, 'h1', 'Sold out', 10000);
  await two.context.close();
});

test('closed: a sale that refuses joins (sale-closed), and a room that does not exist', { timeout: 60000 }, async (t) => {
  const gone = await open('/waiting/no-such-room?return=/events/x');
  await waitText(gone.page, 'h1', 'This waiting room is closed', 10000);
  await check(gone.page, 'closed');
  await gone.context.close();
  const token = userToken(`buyer-${Date.now()}-c`);
  if (!ADMIT || !token) return t.skip('no admit hook or user token');
  await hook({ event: EVENT, refuse: 'sale-closed' });
  t.after(() => hook({ event: EVENT, refuse: null }));
  const { context, page } = await open(eventPath(), { token });
  await waitText(page, 'h1', 'The sale is closed', 10000);
  assert.equal(await page.locator('#continue').isVisible(), true);
  await context.close();
  return undefined;
});

test('errors: blocked, an expired sign-in, and a waiting room out of reach', { timeout: 90000 }, async (t) => {
  const expired = await open(eventPath(), { token: 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4IiwiZXhwIjoxfQ.bm90LWEtc2lnbmF0dXJl' });
  await waitText(expired.page, 'h1', 'Please sign in again', 10000);
  await check(expired.page, 'error-sign-in');
  await expired.context.close();
  const token = userToken(`buyer-${Date.now()}-b`);
  if (!ADMIT || !token) return t.skip('no admit hook or user token');
  await hook({ event: EVENT, refuse: 'blocked' });
  const blocked = await open(eventPath(), { token });
  await waitText(blocked.page, 'h1', "You can't join this line", 10000);
  await check(blocked.page, 'error');
  await blocked.context.close();
  await hook({ event: EVENT, refuse: null });
  if (!fake) return t.skip('dropped connections need the fake');
  // Five failures in a row: the page says it cannot reach the room, keeps
  // the number on screen and keeps trying.
  await hook({ room: ROOM, next: 800, serving: 700, failForMs: 60000 });
  t.after(() => hook({ room: ROOM, failForMs: 0 }));
  const { context, page } = await open(roomPath('?return=/events/x'), { clock: true });
  await waitText(page, '#figure', '801', 10000);
  for (let i = 0; i < 40 && (await textOf(page, 'h1')) !== "We can't reach the waiting room"; i += 1) await skip(page, 5000);
  assert.equal(await textOf(page, 'h1'), "We can't reach the waiting room");
  assert.equal(await textOf(page, '#figure'), '801', 'the number stays on screen');
  await check(page, 'error-offline');
  await hook({ room: ROOM, failForMs: 0 });
  for (let i = 0; i < 40 && (await textOf(page, 'h1')) !== "You're in line"; i += 1) await skip(page, 5000);
  assert.equal(await textOf(page, 'h1'), "You're in line");
  await context.close();
  return undefined;
});

test('tier 2 before open: queue-not-open counts down to the opening', { timeout: 60000 }, async (t) => {
  if (!fake || REAL) return t.skip('queue-not-open with a chosen Retry-After needs the fake');
  await hook({ event: EVENT, hold: true, ahead: 0, behind: 0, opensInSeconds: 3700 });
  t.after(() => hook({ event: EVENT, opensInSeconds: null, admit: true }));
  const { context, page } = await open(eventPath(), { token: userToken(`buyer-${Date.now()}-o`) });
  await waitText(page, 'h1', "The sale hasn't opened yet", 10000);
  await waitText(page, '#countdown', /^1:0[01]:\d\d$/, 5000);
  assert.match(await textOf(page, '#status-text'), /hasn't opened yet/);
  await context.close();
});
