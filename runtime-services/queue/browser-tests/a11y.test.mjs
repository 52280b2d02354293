// Issue 19, item 4: keyboard only, a visible focus, the live region, and
// reduced motion (axe-core on every state is in states.test.mjs).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ADMIT, EVENT, ROOM, axeViolations, fake, hook, open, roomPath, userToken, waitText } from './harness.mjs';

const eventPath = () => `${roomPath()}?event=${encodeURIComponent(EVENT)}&return=/events/x`;

// What has the focus, and whether it is drawn (an outline of 2 px or more).
const focused = (page) => page.evaluate(() => {
  const el = document.activeElement;
  const style = getComputedStyle(el);
  return { id: el.id, tag: el.tagName, visible: el.matches(':focus-visible') && style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2 };
});

test('axe-core finds what it should (the check can fail)', { timeout: 30000 }, async () => {
  // A screen that stays put whatever the server's state (an unknown room).
  const { context, page } = await open('/waiting/no-such-room');
  await waitText(page, 'h1', 'This waiting room is closed', 10000);
  await page.evaluate(() => {
    const img = document.createElement('img');
    img.src = 'data:image/gif;base64,R0lGODlhAQABAAAAACw=';
    document.body.append(img);
  });
  const violations = await axeViolations(page);
  assert.ok(violations.some((v) => v.startsWith('image-alt:')), violations.join('\n'));
  await context.close();
});

test('keyboard only: the language switcher, then the way on, each with a visible focus', { timeout: 60000 }, async (t) => {
  if (!ADMIT) return t.skip('URR_ADMIT_URL is not set');
  await hook({ room: ROOM, next: 1233, serving: 1000, perInterval: 25, intervalSeconds: 30 });
  const { context, page } = await open(roomPath('?return=/events/x'));
  await waitText(page, '#figure', '1,234', 10000);
  await page.keyboard.press('Tab');
  assert.deepEqual(await focused(page), { id: 'lang', tag: 'SELECT', visible: true });
  // The switcher by keyboard: English → 한국어.
  await page.keyboard.press('ArrowDown');
  await waitText(page, 'h1', '대기 중입니다', 5000);
  assert.equal(await page.evaluate(() => document.documentElement.lang), 'ko');
  await page.keyboard.press('ArrowUp');
  await waitText(page, 'h1', "You're in line", 5000);
  // Everything else on the waiting screen that takes the focus has it drawn.
  for (let i = 0; i < 4; i += 1) {
    await page.keyboard.press('Tab');
    const now = await focused(page);
    if (now.tag === 'BODY') break;
    assert.ok(now.visible, `focus on ${now.tag}#${now.id} is not visible`);
  }
  await context.close();
  // The turn: the "Continue" link is reachable and drawn.
  await hook({ room: ROOM, next: 99, serving: 100 });
  const turn = await open(roomPath('?return=/events/x'), {
    init: () => Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => 'hidden' }),
  });
  await waitText(turn.page, 'h1', "It's your turn", 10000);
  await turn.page.keyboard.press('Tab');
  await turn.page.keyboard.press('Tab');
  const link = await focused(turn.page);
  assert.deepEqual(link, { id: 'continue-link', tag: 'A', visible: true });
  assert.equal(await turn.page.locator('#continue-link').getAttribute('href'), '/events/x');
  await turn.context.close();
  return undefined;
});

test('the live region announces each change of position, in the page\'s language', { timeout: 60000 }, async (t) => {
  const token = userToken(`buyer-${Date.now()}-a`);
  if (!ADMIT || !token) return t.skip('no admit hook or user token');
  await hook({ event: EVENT, hold: true, ahead: 41, behind: 10 });
  t.after(() => hook({ event: EVENT, admit: true }));
  const { context, page } = await open(eventPath(), { token, locale: 'ko-KR' });
  await page.evaluate(() => {
    window.__said = [];
    new MutationObserver(() => window.__said.push(document.getElementById('announce').textContent))
      .observe(document.getElementById('announce'), { childList: true, characterData: true, subtree: true });
  });
  // 41 ahead (a real queue may still hold someone from an earlier test).
  await waitText(page, '#figure', fake ? '42' : /^\d+$/, 10000);
  const before = Number(await page.locator('#figure').textContent());
  assert.equal(await page.locator('#announce').getAttribute('aria-live'), 'polite');
  await hook({ event: EVENT, advance: 30 });
  await waitText(page, '#figure', String(before - 30), fake ? 10000 : 40000);
  await page.waitForTimeout(300);
  const said = await page.evaluate(() => window.__said);
  const place = before - 30;
  assert.ok(said.some((s) => s.startsWith(`내 순서: ${place}. 앞에 ${place - 1}명. 예상 대기 시간 `)), JSON.stringify(said));
  // Words said once: polls that change nothing are not announced again.
  const repeats = said.filter((s, i) => i > 0 && s === said[i - 1]);
  assert.deepEqual(repeats, []);
  await context.close();
  return undefined;
});

test('a counter moving every second is announced at most every 30 s', { timeout: 60000 }, async (t) => {
  if (!ADMIT) return t.skip('URR_ADMIT_URL is not set');
  // One number a second from now on: 5,000 ahead, so no turn in the minute.
  await hook({ room: ROOM, next: 5999, serving: 1000, epoch: Math.floor(Date.now() / 1000), perInterval: 1, intervalSeconds: 1 });
  const { context, page } = await open(roomPath(), { clock: true });
  await waitText(page, '#figure', '6,000', 10000);
  for (let i = 0; i < 30 && !/ahead of you\. Estimated/.test(await page.locator('#announce').textContent()); i += 1) await page.clock.runFor(100);
  await page.evaluate(() => {
    window.__said = [];
    new MutationObserver(() => window.__said.push(document.getElementById('announce').textContent))
      .observe(document.getElementById('announce'), { childList: true, characterData: true, subtree: true });
  });
  for (let s = 0; s < 60; s += 1) await page.clock.runFor(1000);
  const said = await page.evaluate(() => window.__said);
  assert.ok(said.length >= 1 && said.length <= 3, `${said.length} announcements in a minute: ${JSON.stringify(said.slice(0, 3))}…`);
  await context.close();
});

test('prefers-reduced-motion: no pulse, no animated bar', { timeout: 30000 }, async () => {
  const moving = await open(roomPath());
  const pulse = await moving.page.evaluate(() => getComputedStyle(document.querySelector('.live')).animationName);
  assert.equal(pulse, 'pulse', 'without the preference the status dot pulses');
  await moving.context.close();
  const { context, page } = await open(roomPath(), { reducedMotion: 'reduce' });
  const still = await page.evaluate(() => ({
    live: getComputedStyle(document.querySelector('.live')).animationName,
    bar: getComputedStyle(document.querySelector('#progress'), '::-webkit-progress-value').transitionDuration,
  }));
  assert.deepEqual(still, { live: 'none', bar: '0s' });
  await context.close();
});

