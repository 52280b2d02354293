// The waiting page calls the queue API as docs/openapi/queue.json says
// (issue 17): waiting.js runs in Chromium against fake-queue.mjs through
// tier 1 and tier 2 (a refused early join, the line, a heartbeat, the
// admission), and the page itself records, through an init script, every
// fetch it makes (method, path, whether it carries the bearer token, its
// body) and every member it reads of each JSON answer (a Proxy around what
// JSON.parse gives back for that answer's text). Each call must be an
// operation of the document, with the security it asks for and a body its
// request schema declares; each member read must be a property the
// documented response schema (of that status) declares. A member the page
// reads that the document does not promise, or a path it does not have,
// fails here. The fake's answers are held to the document too (required
// members, declared members, their types at the top level), so the page is
// not tested against answers urr-queue never gives; this found the fake
// without `admission` and `order`, and with `entryTokenExpiresAt` as a date
// string instead of Unix seconds. Checked to fail: `b.placesLeft` read as
// `b.places_left` in waiting.js ("joinQueue 200 reads places_left").
//
// Against the fake only: its hook moves the line; the page's requests are
// the same against a real urr-queue (run.sh's second pass skips this file's
// checks).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { BASE, EVENT, ROOM, browser, fake, hook, roomPath, skip, userToken, waitText } from './harness.mjs';

const DOC = JSON.parse(readFileSync(new URL('../../../docs/openapi/queue.json', import.meta.url), 'utf8'));

// In the page, before waiting.js: fetch and JSON.parse wrapped to report to
// the test (exposed functions, so a navigation away does not lose them).
function recorder() {
  let next = 0;
  const pending = new Map(); // an answer's text -> its call
  const realFetch = window.fetch.bind(window);
  window.fetch = (input, init = {}) => {
    const url = new URL(typeof input === 'string' ? input : input.url, location.href);
    if (!url.pathname.startsWith('/v1/')) return realFetch(input, init);
    const id = (next += 1);
    const headers = Object.keys(init.headers || {}).map((h) => h.toLowerCase());
    window.__urrCall(id, init.method || 'GET', url.pathname, headers, typeof init.body === 'string' ? init.body : null);
    return realFetch(input, init).then((res) => {
      window.__urrStatus(id, res.status);
      const text = res.text.bind(res);
      res.text = () => text().then((t) => { pending.set(t, id); window.__urrBody(id, t); return t; });
      return res;
    });
  };
  const parse = JSON.parse;
  const wrap = (value, prefix, id) => (value === null || typeof value !== 'object' ? value : new Proxy(value, {
    get(target, key, receiver) {
      const got = Reflect.get(target, key, receiver);
      if (typeof key !== 'string') return got;
      const path = prefix ? `${prefix}.${key}` : key;
      window.__urrRead(id, path);
      return wrap(got, path, id);
    },
  }));
  JSON.parse = function (text, reviver) {
    const value = parse(text, reviver);
    if (!pending.has(text)) return value;
    const id = pending.get(text);
    pending.delete(text);
    return wrap(value, '', id);
  };
}

async function recordedPage(token) {
  const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
  const page = await context.newPage();
  const calls = new Map();
  await page.exposeFunction('__urrCall', (id, method, path, headers, body) =>
    calls.set(id, { method, path, headers, body, status: null, answer: null, reads: new Set() }));
  await page.exposeFunction('__urrBody', (id, text) => { const c = calls.get(id); if (c) c.answer = text; });
  await page.exposeFunction('__urrStatus', (id, status) => { calls.get(id).status = status; });
  await page.exposeFunction('__urrRead', (id, path) => calls.get(id)?.reads.add(path));
  await page.clock.install();
  if (token) await page.addInitScript((t) => window.sessionStorage.setItem('urr.userToken', t), token);
  await page.addInitScript(recorder);
  return { context, page, calls };
}

const resolve = (schema) => {
  let s = schema;
  while (s && s.$ref) s = s.$ref.replace(/^#\//, '').split('/').reduce((o, k) => o?.[k], DOC);
  return s || {};
};

/** The schemas each property name has in any branch of `schema`. */
function properties(schema, into = new Map()) {
  const s = resolve(schema);
  for (const [name, sub] of Object.entries(s.properties || {})) into.set(name, [...(into.get(name) || []), sub]);
  for (const k of ['allOf', 'oneOf', 'anyOf']) for (const branch of s[k] || []) properties(branch, into);
  return into;
}

/**
 * The sets of members `schema` requires, one per `oneOf`/`anyOf` branch
 * (`allOf` adds up): an answer must have all of one set.
 */
function requiredSets(schema) {
  const s = resolve(schema);
  let sets = [new Set(s.required || [])];
  for (const part of s.allOf || []) sets = sets.flatMap((a) => requiredSets(part).map((b) => new Set([...a, ...b])));
  const branches = [...(s.oneOf || []), ...(s.anyOf || [])];
  if (branches.length) sets = sets.flatMap((a) => branches.flatMap((b) => requiredSets(b).map((c) => new Set([...a, ...c]))));
  return sets;
}

const typeOf = (v) => (v === null ? 'null' : Array.isArray(v) ? 'array' : Number.isInteger(v) ? 'integer' : typeof v);
/** Whether `value` has a type one of `schemas` allows (a schema without `type` allows any). */
function typeFits(schemas, value) {
  return schemas.some((schema) => {
    const s = resolve(schema);
    const branches = [...(s.oneOf || []), ...(s.anyOf || [])];
    if (branches.length) return typeFits(branches, value);
    if (!s.type) return true;
    const allowed = [].concat(s.type);
    const t = typeOf(value);
    return allowed.includes(t) || (t === 'integer' && allowed.includes('number'));
  });
}

/** The operation `method path` is, and its path parameters' names. */
function operationOf(method, path) {
  const segments = path.split('/').slice(1);
  for (const [template, item] of Object.entries(DOC.paths)) {
    const parts = template.split('/').slice(1);
    if (parts.length !== segments.length || !item[method.toLowerCase()]) continue;
    const names = [];
    if (parts.every((p, i) => (/^\{.+\}$/.test(p) ? (names.push(p.slice(1, -1)), segments[i] !== '') : p === segments[i]))) {
      return { operation: item[method.toLowerCase()], names };
    }
  }
  return null;
}

/** What is wrong with `call` against the document (empty: nothing). */
function findings(call) {
  const found = [];
  const what = `${call.method} ${call.path}`;
  const match = operationOf(call.method, call.path);
  if (!match) return [`${what}: no such operation in docs/openapi/queue.json`];
  const { operation, names } = match;
  const id = operation.operationId;
  for (const name of names) {
    if (!(operation.parameters || []).some((p) => p.in === 'path' && p.name === name)) found.push(`${id}: path parameter ${name} not declared`);
  }
  // The page sends the bearer token wherever the user JWT is needed; the
  // pass is its HttpOnly cookie, which the browser adds by itself.
  const security = operation.security || [];
  const bearer = call.headers.includes('authorization');
  if (security.length && !security.some((req) => Object.keys(req).every((s) => s !== 'userJwt' || bearer))) {
    found.push(`${id}: no Authorization, and every security requirement needs the user JWT`);
  }
  if (bearer && !security.some((req) => 'userJwt' in req)) found.push(`${id}: sends a bearer token the operation does not take`);
  if (call.body !== null) {
    const schema = operation.requestBody?.content?.['application/json']?.schema;
    if (!schema) found.push(`${id}: sends a body the operation does not take`);
    else {
      const declared = properties(schema);
      for (const key of Object.keys(JSON.parse(call.body) || {})) {
        if (!declared.has(key)) found.push(`${id}: body member ${key} is not in the request schema`);
      }
    }
  }
  if (call.reads.size === 0) return found;
  const response = operation.responses?.[String(call.status)];
  if (!response) return [...found, `${id}: answered ${call.status}, which it does not document, and the page read it`];
  const schema = Object.values(response.content || {})[0]?.schema;
  if (!schema) return [...found, `${id} ${call.status}: the page reads a body the document does not give`];
  // The fake's answer, as the document says it (else the page is tested
  // against an answer the real service never gives): one required set
  // present whole, each member declared and of its declared type.
  let answer = null;
  try { answer = JSON.parse(call.answer); } catch { answer = null; }
  if (answer && typeof answer === 'object') {
    const declared = properties(schema);
    const keys = Object.keys(answer);
    if (!requiredSets(schema).some((set) => [...set].every((k) => keys.includes(k)))) {
      found.push(`${id} ${call.status}: the fake's answer ${call.answer} lacks members the document requires`);
    }
    for (const key of keys) {
      if (!declared.has(key)) found.push(`${id} ${call.status}: the fake answers ${key}, which the document does not have`);
      else if (!typeFits(declared.get(key), answer[key])) found.push(`${id} ${call.status}: the fake's ${key} ${JSON.stringify(answer[key])} is not of its documented type`);
    }
  }
  for (const read of call.reads) {
    // `etaSeconds.low`: `low` among the properties of `etaSeconds`'s schemas.
    let schemas = [schema];
    for (const key of read.split('.')) {
      schemas = schemas.flatMap((s) => properties(s).get(key) || []);
      if (!schemas.length) { found.push(`${id} ${call.status} reads ${read}, which the document does not promise`); break; }
    }
  }
  return found;
}

test('the waiting page calls the queue API as docs/openapi/queue.json says', { timeout: 120000 }, async (t) => {
  if (!fake) return t.skip('needs the fake (its hook moves the line)');
  const seen = [];

  // Tier 1: a number, then the counter's parameters.
  await hook({ room: ROOM, next: 1233, serving: 1000, perInterval: 25, intervalSeconds: 30 });
  const one = await recordedPage(null);
  await one.page.goto(`${BASE}${roomPath('?return=/events/x')}`, { timeout: 15000 });
  await waitText(one.page, '#figure', '1,234', 10000);
  await waitText(one.page, '#side', '1,000', 10000);
  await skip(one.page, 1000);
  seen.push(...one.calls.values());
  await one.context.close();

  // Tier 2: a join before the queue opens (403 queue-not-open), the line,
  // a heartbeat, then the admission.
  t.after(() => hook({ event: EVENT, opensInSeconds: null, admit: true }));
  await hook({ event: EVENT, hold: true, ahead: 3, behind: 10, opensInSeconds: 30, pollAfterMs: 1000 });
  const two = await recordedPage(userToken(`openapi-${Date.now()}`));
  await two.page.goto(`${BASE}${roomPath(`?event=${encodeURIComponent(EVENT)}&return=/events/x`)}`, { timeout: 15000 });
  await waitText(two.page, 'h1', /./, 10000);
  await hook({ event: EVENT, opensInSeconds: null });
  await skip(two.page, 65000);
  await waitText(two.page, '#figure', '4');
  await two.page.clock.runFor(20500);
  await hook({ event: EVENT, admit: true });
  await skip(two.page, 3000);
  await two.page.waitForURL(`${BASE}/events/x`, { timeout: 15000 });
  seen.push(...two.calls.values());
  await two.context.close();

  const ids = new Set(seen.map((c) => operationOf(c.method, c.path)?.operation.operationId));
  for (const id of ['takeNumber', 'serving', 'joinQueue', 'queueStatus', 'queueHeartbeat']) {
    const op = Object.values(DOC.paths).flatMap((item) => Object.values(item)).find((o) => o.operationId === id);
    assert.ok(op, `the document has no ${id} (the test's list is out of date)`);
    assert.ok(ids.has(id), `the page never called ${id}: ${[...ids].join(', ')}`);
  }
  // It read the answers at all (the recorder works): the join's 403 type, the place's status.
  assert.ok(seen.some((c) => c.status === 403 && c.reads.has('type')), 'the refused join was read');
  assert.ok(seen.some((c) => c.reads.has('entryToken')), 'the admission was read');
  // URR_OPENAPI_DEBUG=1: each call with the members the page read of it.
  if (process.env.URR_OPENAPI_DEBUG) for (const c of seen) console.log(c.method, c.path, c.status, [...c.reads].join(' '));
  const all = seen.flatMap(findings);
  assert.deepEqual(all, [], all.join('\n'));
});
