import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { build } from '../build.mjs';
import { DECISIONS, GATE_PATH, SOURCE_PATH, VECTORS, loadGate, runVector, sign, stubKvs, viewerRequest } from './harness.mjs';

const NOW = VECTORS.now;
const ROOM = 'urr-demo/aurora-seoul-2026';
const KEY = VECTORS.keys[0];

// Keys live under their room: key/<ns>/<name>/<kid>.
function keys(room = ROOM) {
  return Object.fromEntries(VECTORS.keys.map((k) => [`key/${room}/${k.id}`, k.secretHex]));
}
const KIDS = VECTORS.keys.map((k) => k.id);

function roomEntry(overrides = {}) {
  return {
    v: 1,
    room: ROOM,
    active: true,
    enforceFrom: NOW - 60,
    protected: ['/events/aurora', '/api/v1/events/aurora'],
    bypass: ['/events/aurora/static/'],
    waitingPage: '/waiting/aurora-seoul-2026',
    serving: { start: 1000, perInterval: 500, intervalSeconds: 10, epoch: NOW - 100 },
    kids: KIDS,
    ...overrides,
  };
}

function gateWith(entries) {
  const kvs = stubKvs({
    'wr/p/': { v: 1, rooms: [], segments: ['api', 'events'] },
    'wr/p/events': { v: 1, rooms: [['/events/aurora', `wr/${ROOM}`], ['/events/other', 'wr/urr-demo/other']] },
    'wr/p/api': { v: 1, rooms: [['/api/v1/events/aurora', `wr/${ROOM}`]] },
    ...keys(),
    ...entries,
  });
  const gate = loadGate(kvs);
  gate.setNow(NOW);
  return { gate, kvs };
}

// serving at NOW: 1000 + 500 * floor(100 / 10) = 6000
const SERVING = 6000;

test('the shared token vectors give the same outcome as in Rust', async () => {
  const rooms = [...new Set(VECTORS.tokens.map((v) => v.room))];
  const gate = loadGate(stubKvs(Object.assign({}, ...rooms.map((r) => keys(r)))));
  assert.ok(VECTORS.tokens.length >= 9);
  for (const vector of VECTORS.tokens) {
    const result = await gate.checkToken(vector.token, { room: vector.room, kids: KIDS }, NOW);
    const outcome = result.ok ? 'valid' : result.reason;
    assert.equal(outcome, vector.expect, vector.name);
    if (result.ok) assert.equal(result.number, vector.number, vector.name);
  }
});

test('the shared serving-counter vectors match', () => {
  const gate = loadGate(stubKvs({}));
  for (const { now, serving } of VECTORS.serving) {
    assert.equal(gate.servingAt(VECTORS.servingParams, now), serving, `now=${now}`);
  }
});

test('a served number passes, an unserved one is sent to the waiting page', async () => {
  const { gate } = gateWith({ [`wr/${ROOM}`]: roomEntry() });
  const served = sign(KEY.secretHex, KEY.id, ROOM, SERVING, NOW + 3600);
  const passed = await gate.handler(viewerRequest('/events/aurora/seats', { cookie: served }));
  assert.equal(passed.uri, '/events/aurora/seats', 'the request goes on to the origin');

  const early = sign(KEY.secretHex, KEY.id, ROOM, SERVING + 1, NOW + 3600);
  const held = await gate.handler(viewerRequest('/events/aurora/seats', { cookie: early, querystring: { s: { value: 'a b' } } }));
  assert.equal(held.statusCode, 302);
  assert.equal(held.headers.location.value, '/waiting/aurora-seoul-2026?return=%2Fevents%2Faurora%2Fseats%3Fs%3Da%2520b');
  assert.equal(held.headers['x-frame-options'].value, 'DENY');
  assert.match(held.headers['strict-transport-security'].value, /max-age=\d+/);
});

test('API clients get a 429 problem with Retry-After and their place', async () => {
  const { gate } = gateWith({ [`wr/${ROOM}`]: roomEntry() });
  const token = sign(KEY.secretHex, KEY.id, ROOM, SERVING + 1200, NOW + 3600);
  const response = await gate.handler(viewerRequest('/api/v1/events/aurora/holds', { cookie: token, accept: 'application/json' }));
  assert.equal(response.statusCode, 429);
  assert.equal(response.headers['content-type'].value, 'application/problem+json');
  const body = JSON.parse(response.body);
  assert.equal(body.serving, SERVING);
  assert.equal(body.aheadOfYou, 1200);
  // 1200 ahead at 500 per 10 s: three intervals.
  assert.equal(response.headers['retry-after'].value, '30');
  assert.equal(body.retryAfterSeconds, 30);
});

test('room controls: a closed sale answers 403 sale-closed, a sold-out one says so in the 429', async () => {
  const api = (gate) => gate.handler(viewerRequest('/api/v1/events/aurora/holds', { accept: 'application/json' }));
  const closed = await api(gateWith({ [`wr/${ROOM}`]: roomEntry({ method: 'reject' }) }).gate);
  assert.equal(closed.statusCode, 403);
  const problem = JSON.parse(closed.body);
  assert.equal(problem.type, 'https://urr.dev/problems/sale-closed');
  assert.equal(problem.admission, 'closed');
  assert.equal(closed.headers['retry-after'], undefined, 'nothing to retry for');
  const soldOut = await api(gateWith({ [`wr/${ROOM}`]: roomEntry({ soldOut: true }) }).gate);
  assert.equal(soldOut.statusCode, 429);
  assert.equal(JSON.parse(soldOut.body).admission, 'soldOut');
  const open = await api(gateWith({ [`wr/${ROOM}`]: roomEntry() }).gate);
  assert.equal(JSON.parse(open.body).admission, 'open');
  // A malformed control is a malformed entry: fail open.
  const odd = await api(gateWith({ [`wr/${ROOM}`]: roomEntry({ method: 'lottery' }) }).gate);
  assert.equal(odd.uri, '/api/v1/events/aurora/holds', 'passed unchanged');
});

test('no token, a forged token, an expired token and another room\'s token all wait', async () => {
  const { gate } = gateWith({ [`wr/${ROOM}`]: roomEntry() });
  const forged = sign('00'.repeat(32), KEY.id, ROOM, 1, NOW + 3600);
  const expired = sign(KEY.secretHex, KEY.id, ROOM, 1, NOW - 1);
  const elsewhere = sign(KEY.secretHex, KEY.id, 'urr-demo/other', 1, NOW + 3600);
  for (const cookie of [undefined, forged, expired, elsewhere, 'garbage']) {
    const response = await gate.handler(viewerRequest('/events/aurora', { cookie }));
    assert.equal(response.statusCode, 302, String(cookie));
  }
});

test('fail-open: missing index, missing or malformed entry, room off, before enforceFrom', async () => {
  const cases = [
    ['no index', { 'wr/p/': undefined }],
    ['no index shard', { 'wr/p/events': undefined }],
    ['no room entry', {}],
    ['malformed entry', { [`wr/${ROOM}`]: '{not json' }],
    ['unknown schema version', { [`wr/${ROOM}`]: roomEntry({ v: 2 }) }],
    ['room off', { [`wr/${ROOM}`]: roomEntry({ active: false }) }],
    ['before enforceFrom', { [`wr/${ROOM}`]: roomEntry({ enforceFrom: NOW + 1 }) }],
  ];
  for (const [name, entries] of cases) {
    const { gate, kvs } = gateWith(entries);
    for (const key of ['wr/p/', 'wr/p/events']) if (key in entries) kvs.store.delete(key);
    const response = await gate.handler(viewerRequest('/events/aurora'));
    assert.equal(response.uri, '/events/aurora', name);
  }
});

test('bypass paths, the waiting page and unprotected paths pass without a token', async () => {
  const { gate } = gateWith({ [`wr/${ROOM}`]: roomEntry() });
  for (const uri of ['/events/aurora/static/app.js', '/waiting/aurora-seoul-2026', '/about', '/']) {
    const response = await gate.handler(viewerRequest(uri));
    assert.equal(response.uri, uri, uri);
  }
});

test('a room protecting everything still lets the waiting page, its assets and the queue API through', async () => {
  const site = roomEntry({ room: 'urr-demo/site', protected: ['/'], bypass: [], waitingPage: '/waiting/site' });
  const { gate, kvs } = gateWith({ 'wr/urr-demo/site': site });
  kvs.store.set('wr/p/', JSON.stringify({ v: 1, rooms: [['/', 'wr/urr-demo/site']], segments: [] }));
  for (const uri of [
    '/waiting/site',
    '/waiting/assets/waiting.js',
    '/v1/rooms/site/numbers',
    '/v1/rooms/site/serving',
    '/v1/events/aurora-seoul-2026/queue',
    '/v1/events/aurora-seoul-2026/queue/me',
  ]) {
    const response = await gate.handler(viewerRequest(uri));
    assert.equal(response.uri, uri, uri);
  }
  for (const uri of ['/', '/v1/events/aurora-seoul-2026/holds', '/v1/events/aurora-seoul-2026/queueish', '/v1/rooms/']) {
    const response = await gate.handler(viewerRequest(uri));
    assert.ok(response.statusCode === 302 || response.statusCode === 429, `${uri} is held: ${response.statusCode}`);
  }
});

test('every edge flips at enforceFrom, not before', async () => {
  const { gate } = gateWith({ [`wr/${ROOM}`]: roomEntry({ enforceFrom: NOW + 30 }) });
  gate.setNow(NOW + 29);
  assert.equal((await gate.handler(viewerRequest('/events/aurora'))).uri, '/events/aurora');
  gate.setNow(NOW + 30);
  assert.equal((await gate.handler(viewerRequest('/events/aurora'))).statusCode, 302);
});

test('a room at the root shard covers paths of every segment, the longest prefix wins', async () => {
  const rootRoom = roomEntry({ room: 'urr-demo/site', protected: ['/'], waitingPage: '/waiting/site' });
  const { gate, kvs } = gateWith({ [`wr/${ROOM}`]: roomEntry(), 'wr/urr-demo/site': rootRoom });
  kvs.store.set('wr/p/', JSON.stringify({ v: 1, rooms: [['/', 'wr/urr-demo/site']], segments: ['api', 'events'] }));
  const shop = await gate.handler(viewerRequest('/shop/cart'));
  assert.equal(shop.headers.location.value, '/waiting/site?return=%2Fshop%2Fcart');
  const event = await gate.handler(viewerRequest('/events/aurora/x'));
  assert.equal(event.headers.location.value, '/waiting/aurora-seoul-2026?return=%2Fevents%2Faurora%2Fx', 'the longer prefix wins');
});

test('an unprotected path costs one KVS read and no miss', async () => {
  const { gate, kvs } = gateWith({ [`wr/${ROOM}`]: roomEntry() });
  kvs.reads = 0;
  const response = await gate.handler(viewerRequest('/about'));
  assert.equal(response.uri, '/about');
  assert.equal(kvs.reads, 1, 'only the root shard');
});

test('the shared decision vectors give the outcome the Rust twin computed', async () => {
  assert.ok(DECISIONS.vectors.length >= 30);
  for (const vector of DECISIONS.vectors) {
    assert.deepEqual(await runVector(vector), vector.expect, vector.name);
  }
});

test('the function fits CloudFront\'s 10 KB code limit', () => {
  const size = statSync(GATE_PATH).size;
  assert.ok(size < 10 * 1024, `dist/gate.js is ${size} bytes`);
});

test('dist/gate.js is the build of gate.js (run `node build.mjs` after editing gate.js)', () => {
  assert.equal(readFileSync(GATE_PATH, 'utf8'), build(readFileSync(SOURCE_PATH, 'utf8')));
});

test('the commented source decides every shared vector as its build does', async () => {
  const source = readFileSync(SOURCE_PATH, 'utf8');
  for (const vector of DECISIONS.vectors) {
    assert.deepEqual(await runVector(vector, source), vector.expect, vector.name);
  }
});

test('the build refuses what stripping line by line could change', () => {
  assert.throws(() => build('var a = `x\n// y`;'), /template literal/);
  assert.throws(() => build('/* a\n b */'), /block comment/);
  assert.equal(build('  // why\n  var a = 1; // kept\n\n'), 'var a = 1; // kept\n');
});
