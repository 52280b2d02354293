// Issue 19, item 2: Korean, English and Japanese, chosen by the browser's
// languages (what it sends as Accept-Language) or the switcher (remembered),
// numbers and times by Intl in the visitor's locale and the event's time
// zone (?tz=, default Asia/Seoul).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { ADMIT, ROOM, axeViolations, hook, open, roomPath, textOf, waitText } from './harness.mjs';

const DIR = new URL('../static/i18n/', import.meta.url);
const catalogues = Object.fromEntries(readdirSync(DIR).filter((f) => f.endsWith('.json'))
  .map((f) => [f.replace(/\.json$/, ''), JSON.parse(readFileSync(new URL(f, DIR), 'utf8'))]));
const placeholders = (message) => [...new Set(JSON.stringify(message).match(/\{\w+\}/g) || [])].sort();

test('every catalogue has exactly the keys of the English one, with the same placeholders', () => {
  assert.deepEqual(Object.keys(catalogues).sort(), ['en', 'ja', 'ko']);
  const english = catalogues.en;
  for (const [lang, catalogue] of Object.entries(catalogues)) {
    assert.deepEqual(Object.keys(catalogue).sort(), Object.keys(english).sort(), `${lang}: keys`);
    for (const [key, message] of Object.entries(catalogue)) {
      assert.ok(typeof message === 'string' ? message.trim() : typeof message.other === 'string',
        `${lang}.${key}: a string, or plural forms with "other"`);
      assert.deepEqual(placeholders(message), placeholders(english[key]), `${lang}.${key}: placeholders`);
    }
  }
});

// No `{name}` left over, no key shown in place of its words.
const rawLeft = (page) => page.evaluate(() => document.body.innerText.match(/\{\w+\}|\b[a-z]+[A-Z]\w+\b/g));

test('a Korean browser gets the Korean page, Korean numbers and times, Seoul time', { timeout: 60000 }, async (t) => {
  if (!ADMIT) return t.skip('URR_ADMIT_URL is not set');
  await hook({ room: ROOM, next: 1233, serving: 1000, perInterval: 25, intervalSeconds: 30 });
  const { context, page } = await open(roomPath('?return=/events/x'), { locale: 'ko-KR' });
  await waitText(page, 'h1', '대기 중입니다', 10000);
  await waitText(page, '#eta', '약 5분', 10000);
  assert.equal(await textOf(page, '#figure'), '1,234');
  assert.equal(await textOf(page, '#figure-label'), '내 번호');
  assert.equal(await textOf(page, '#ahead-text'), '앞에 234명');
  assert.equal(await textOf(page, '#room'), `대기실 · ${ROOM}`);
  assert.match(await textOf(page, '#checked'), /^(오전|오후) \d{1,2}:\d\d:\d\d$/);
  assert.equal(await page.evaluate(() => document.documentElement.lang), 'ko');
  assert.equal(await page.locator('#lang').inputValue(), 'ko');
  assert.equal(await page.title(), '앞에 234명 · 대기 중입니다');
  assert.equal(await rawLeft(page), null);
  assert.deepEqual(await axeViolations(page), [], 'axe-core at WCAG 2.1 AA, in Korean');
  if (process.env.URR_SCREENSHOT === '1') {
    mkdirSync(new URL('../../../docs/waiting-page/', import.meta.url), { recursive: true });
    await page.screenshot({ path: new URL('../../../docs/waiting-page/waiting-ko.png', import.meta.url).pathname, fullPage: true });
  }
  await context.close();
});

test('an English browser gets English; a Japanese one Japanese', { timeout: 60000 }, async (t) => {
  if (!ADMIT) return t.skip('URR_ADMIT_URL is not set');
  await hook({ room: ROOM, next: 1233, serving: 1000, perInterval: 25, intervalSeconds: 30 });
  const en = await open(roomPath(), { locale: 'en-GB' });
  await waitText(en.page, '#eta', 'about 5 minutes', 10000);
  assert.equal(await textOf(en.page, 'h1'), "You're in line");
  // en-GB keeps its own clock: 24 hours.
  assert.match(await textOf(en.page, '#checked'), /^\d{1,2}:\d\d:\d\d$/);
  assert.equal(await rawLeft(en.page), null);
  await en.context.close();
  const ja = await open(roomPath(), { locale: 'ja-JP' });
  await waitText(ja.page, 'h1', '順番待ちをしています', 10000);
  await waitText(ja.page, '#ahead-text', /^前に\d+人$/, 10000);
  assert.equal(await rawLeft(ja.page), null);
  assert.deepEqual(await axeViolations(ja.page), [], 'axe-core at WCAG 2.1 AA, in Japanese');
  await ja.context.close();
});

test('the switcher changes the language at once and is remembered', { timeout: 60000 }, async (t) => {
  if (!ADMIT) return t.skip('URR_ADMIT_URL is not set');
  await hook({ room: ROOM, next: 1233, serving: 1000, perInterval: 25, intervalSeconds: 30 });
  const { context, page } = await open(roomPath(), { locale: 'en-US' });
  await waitText(page, '#eta', 'about 5 minutes', 10000);
  await page.selectOption('#lang', 'ko');
  await waitText(page, 'h1', '대기 중입니다', 5000);
  assert.equal(await textOf(page, '#eta'), '약 5분');
  assert.equal(await textOf(page, '.foot'), 'URR 대기실 · 인기 판매를 위한 공정한 대기열');
  await page.reload();
  await waitText(page, 'h1', '대기 중입니다', 10000);
  assert.equal(await page.evaluate(() => localStorage.getItem('urr.lang')), 'ko');
  await page.selectOption('#lang', 'ja');
  await waitText(page, 'h1', '順番待ちをしています', 5000);
  await context.close();
});

test('the opening time is in the event\'s time zone (?tz=), Seoul by default', { timeout: 60000 }, async (t) => {
  if (!ADMIT) return t.skip('URR_ADMIT_URL is not set');
  const opens = Math.floor(Date.now() / 1000) + 900;
  await hook({ room: ROOM, next: 2999, serving: 2000, epoch: opens, perInterval: 25, intervalSeconds: 30 });
  // The expected words from the browser's own Intl (node's may lack Korean data).
  for (const [query, tz, locale, words] of [['', 'Asia/Seoul', 'en-US', (s) => `at ${s}`],
    ['?tz=America/New_York', 'America/New_York', 'en-US', (s) => `at ${s}`], ['', 'Asia/Seoul', 'ko-KR', (s) => `${s} 오픈`]]) {
    const { context, page } = await open(roomPath(query), { locale });
    await waitText(page, '#countdown', /^1[45]:\d\d$/, 10000);
    const at = await page.evaluate(([ms, zone, loc]) => new Intl.DateTimeFormat(loc,
      { hour: 'numeric', minute: '2-digit', timeZone: zone, timeZoneName: 'short' }).format(new Date(ms)), [opens * 1000, tz, locale]);
    assert.match(at, tz === 'Asia/Seoul' ? /GMT\+9/ : /E[SD]T/);
    assert.equal(await textOf(page, '#opens-at'), words(at), `${query || 'default'} in ${locale}`);
    await context.close();
  }
});
