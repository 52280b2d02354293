// Runs 100,000 viewer requests through the gate in node and prints the cost
// per request, next to a baseline handler that only returns the request.
// CloudFront's budget is about 1 ms of compute per invocation; node on a
// laptop-class core is a rough stand-in for the edge runtime, not a promise.
import { performance } from 'node:perf_hooks';
import { VECTORS, loadGate, sign, stubKvs, viewerRequest } from './test/harness.mjs';

const N = Number(process.env.URR_BENCH_REQUESTS || 100000);
const NOW = VECTORS.now;
const ROOM = 'urr-demo/aurora-seoul-2026';
const KEY = VECTORS.keys[0];
const kvs = stubKvs({
  'wr/p/': { v: 1, rooms: [], segments: ['events'] },
  'wr/p/events': { v: 1, rooms: [['/events/aurora', `wr/${ROOM}`]] },
  [`wr/${ROOM}`]: {
    v: 1, room: ROOM, active: true, enforceFrom: NOW - 60, protected: ['/events/aurora'], bypass: [],
    waitingPage: '/waiting/aurora', serving: { start: 1000, perInterval: 500, intervalSeconds: 10, epoch: NOW - 100 }, kids: [KEY.id],
  },
  [`key/${ROOM}/${KEY.id}`]: KEY.secretHex,
});
const gate = loadGate(kvs);
gate.setNow(NOW);
const served = sign(KEY.secretHex, KEY.id, ROOM, 10, NOW + 3600);
const waiting = sign(KEY.secretHex, KEY.id, ROOM, 999999, NOW + 3600);

async function measure(name, make, handler) {
  const times = new Float64Array(N);
  const started = performance.now();
  for (let i = 0; i < N; i++) {
    const event = make(i);
    const t = performance.now();
    await handler(event);
    times[i] = performance.now() - t;
  }
  const total = performance.now() - started;
  times.sort();
  const us = (ms) => (ms * 1000).toFixed(1);
  console.log(`${name.padEnd(44)} mean ${us(total / N).padStart(6)} µs   p50 ${us(times[Math.floor(N * 0.5)]).padStart(6)} µs   p99 ${us(times[Math.floor(N * 0.99)]).padStart(6)} µs`);
}

console.log(`edge gate, ${N} requests per case, node ${process.version}`);
await measure('baseline: handler that returns the request', () => viewerRequest('/events/aurora'), async (e) => e.request);
await measure('served token (passes)', () => viewerRequest('/events/aurora/seats', { cookie: served }), gate.handler);
await measure('unserved token (302 to the waiting page)', () => viewerRequest('/events/aurora/seats', { cookie: waiting }), gate.handler);
await measure('no token, API client (429 JSON)', () => viewerRequest('/events/aurora/x', { accept: 'application/json' }), gate.handler);
await measure('unprotected path (pass)', () => viewerRequest('/about'), gate.handler);
