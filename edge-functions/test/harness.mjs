// Loads gate.js the way CloudFront runs it (a script with `import cf from
// 'cloudfront'` and `import crypto from 'crypto'`), in a fresh VM context with
// a stub of the KeyValueStore module and a settable clock.
import { readFileSync } from 'node:fs';
import { createHmac } from 'node:crypto';
import vm from 'node:vm';

/** What CloudFront runs (and the tests check): the build of ../gate.js (build.mjs). */
export const GATE_PATH = new URL('../dist/gate.js', import.meta.url);
/** The commented source it is built from. */
export const SOURCE_PATH = new URL('../gate.js', import.meta.url);
export const VECTORS = JSON.parse(
  readFileSync(new URL('../../runtime-services/common/testdata/vwr-token-vectors.json', import.meta.url), 'utf8'),
);

/** A KVS stub that behaves like CloudFront's: `get` of a missing key throws. */
export function stubKvs(entries) {
  const store = new Map(Object.entries(entries).map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)]));
  return {
    store,
    reads: 0,
    async get(key) {
      this.reads += 1;
      if (!store.has(key)) throw new Error(`KeyValueStore key not found: ${key}`);
      return store.get(key);
    },
  };
}

/** The decision vectors shared with the Rust twin (tools/load/src/gate), written by tools/load/tests/gate_decisions.rs. */
export const DECISIONS = JSON.parse(readFileSync(new URL('../testdata/gate-decisions.json', import.meta.url), 'utf8'));

/** `source`: another version of gate.js (text), to run the vectors against it. */
export function loadGate(kvs, source = readFileSync(GATE_PATH, 'utf8')) {
  source = source
    .replace("import cf from 'cloudfront';", '')
    .replace("import crypto from 'crypto';", '');
  const context = vm.createContext({
    Buffer,
    cf: { kvs: () => kvs },
    crypto: { createHmac },
    now: 0,
  });
  vm.runInContext(`Date.now = function () { return now * 1000; };\n${source}`, context);
  return {
    handler: (event) => context.handler(event),
    checkToken: (token, entry, now) => context.checkToken(token, entry, now),
    evaluate: (event, now) => context.evaluate(event.request, now),
    servingAt: (params, now) => context.servingAt(params, now),
    setNow: (seconds) => {
      context.now = seconds;
    },
  };
}

export function viewerRequest(uri, { cookie, host, accept = 'text/html,application/xhtml+xml', querystring = {} } = {}) {
  const cookies = cookie ? { 'urr-vwr-token': { value: cookie } } : {};
  const headers = { accept: { value: accept }, ...(host ? { host: { value: host } } : {}) };
  return { request: { method: 'GET', uri, querystring, headers, cookies } };
}

/** Signs a token exactly as the Rust signer does (for scenario tests). */
export function sign(secretHex, kid, room, number, expiresAt) {
  const payload = `v1|${kid}|${room}|${number}|${expiresAt}`;
  const signature = createHmac('sha256', Buffer.from(secretHex, 'hex')).update(payload).digest('base64url');
  return `${Buffer.from(payload).toString('base64url')}.${signature}`;
}

/** What the function did with a vector's request, in the vectors' terms. */
export async function runVector(vector, source) {
  const gate = loadGate(stubKvs(vector.kvs), source);
  gate.setNow(vector.now);
  const { uri, cookie, accept, host, invite } = vector.request;
  const querystring = invite ? { 'urr-invite': { value: invite } } : {};
  let response;
  try {
    response = await gate.handler(viewerRequest(uri, { cookie, host, querystring, ...(accept ? { accept } : {}) }));
  } catch (e) {
    return { outcome: 'error', error: String(e) };
  }
  if (!response.statusCode) return { outcome: 'pass', uri: response.uri };
  const outcome = { outcome: 'wait', status: response.statusCode };
  try {
    outcome.reason = (await gate.evaluate(viewerRequest(uri, { cookie, host, querystring }), vector.now)).d.reason;
  } catch (e) {
    outcome.reason = 'unknown';
  }
  if (response.headers.location) outcome.location = response.headers.location.value;
  return outcome;
}
