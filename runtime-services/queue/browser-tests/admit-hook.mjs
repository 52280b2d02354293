// The test hook (URR_ADMIT_URL) for a real urr-queue: turns the JSON bodies
// that waiting.test.mjs POSTs (format: admit() in fake-queue.mjs) into writes
// to the service's Redis keys, the way the operator would move the serving
// counter or open the sale. Loopback only; run.sh starts it.
//
//   URR_REDIS_URL=redis://127.0.0.1:6379 URR_EVENT_ID=e PORT=0 node admit-hook.mjs
//
// Prints "admit hook on http://127.0.0.1:<port>/admit" once listening.
// Requests it cannot honour on a real service (throttle, failForMs, pollAfterMs, the
// admission states) get 501.
import http from 'node:http';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);
const REDIS = process.env.URR_REDIS_URL;
const EVENT = process.env.URR_EVENT_ID;
if (!REDIS || !EVENT) throw new Error('URR_REDIS_URL and URR_EVENT_ID must be set');
const ROOM = process.env.URR_ROOM_NAME || EVENT;
const key = (suffix) => `urr:{${EVENT}}:${suffix}`;
const FROZEN = '4102444800'; // an epoch far ahead: the counter stays where it is put

const redis = async (...args) => (await run('redis-cli', ['-u', REDIS, ...args.map(String)], { timeout: 5000 })).stdout.trim();

async function apply(body) {
  // Not on this service (yet): the pause and admission states come with the
  // queue controls (issue 18); the fake has them.
  const fakeOnly = ['throttle', 'failForMs', 'clockOffset', 'pollAfterMs', 'placesLeft', 'opensInSeconds', 'preQueue'];
  if (fakeOnly.some((k) => body[k] !== undefined)) return 501;
  if (body.admission === 'soldOut') return 501; // needs the ticket service's inventory
  // The room's admission and refusals are the policy's (spec.control and
  // spec.queueing.method, as the operator writes them).
  if (body.admission !== undefined) {
    const a = body.admission || 'open';
    await redis('HSET', key('policy'), 'paused', a === 'paused' ? 1 : 0, 'draining', a === 'draining' ? 1 : 0,
      'method', a === 'closed' ? 'reject' : 'fifo');
  }
  if (body.refuse !== undefined) {
    await redis('HSET', key('policy'), 'method', body.refuse === 'sale-closed' ? 'reject' : 'fifo',
      'blockedAddresses', body.refuse === 'blocked' ? '127.0.0.0/8' : '');
  }
  if (body.room !== undefined) {
    if (body.room !== ROOM) return 404;
    if (Number.isFinite(body.next)) await redis('SET', key('t1:next'), body.next);
    const fields = [];
    if (Number.isFinite(body.serving)) fields.push('start', body.serving, 'epoch', Number.isFinite(body.epoch) ? body.epoch : FROZEN);
    if (Number.isFinite(body.perInterval)) fields.push('perInterval', body.perInterval);
    if (Number.isFinite(body.intervalSeconds)) fields.push('intervalSeconds', body.intervalSeconds);
    // A paused counter (serving.pausedAt); empty: not paused.
    if (body.pausedAt !== undefined) fields.push('pausedAt', Number.isFinite(body.pausedAt) ? body.pausedAt : '');
    if (fields.length) await redis('HSET', key('edge'), ...fields);
  }
  if (body.event !== undefined) {
    if (body.event !== EVENT) return 404;
    const now = Date.now();
    if (body.hold) {
      // Open for joining, closed for admission; `ahead` people joined before the visitor.
      await redis('HSET', key('policy'), 'active', 1, 'usersPerSecond', 5, 'maxActiveUsers', 1000,
        'entryTokenTtlSeconds', 300, 'salesOpenAt', Math.floor(now / 1000) + 86400, 'preQueueOpensAt', 0, 'randomizeAtOpen', 0);
      for (let i = 0; i < (body.ahead ?? 0); i += 1) {
        const member = `phantom-${now}-${i}`;
        const seq = await redis('INCR', key('seq'));
        await redis('ZADD', key('q'), seq, member);
        await redis('ZADD', key('hb'), now, member);
      }
    }
    // Chained tiers: the edge gates from a minute ago, so joins need a served pass.
    if (body.gate !== undefined) await redis('HSET', key('policy'), 'passRequiredFrom', body.gate ? Math.floor(now / 1000) - 60 : 0);
    if (Number.isFinite(body.advance) && body.advance > 0) {
      const popped = (await redis('ZPOPMIN', key('q'), body.advance)).split('\n').filter((_, i) => i % 2 === 0);
      if (popped.length && popped[0]) await redis('ZREM', key('hb'), ...popped);
    }
    if (body.admit) await redis('HSET', key('policy'), 'salesOpenAt', 0, 'usersPerSecond', 1000);
  }
  return 204;
}

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', async () => {
    let status;
    try {
      status = req.method === 'POST' && req.url === '/admit'
        ? await apply(JSON.parse(Buffer.concat(chunks).toString() || '{}')) : 404;
    } catch (err) {
      console.error('admit hook:', err.message);
      status = 500;
    }
    res.writeHead(status).end();
  });
});
server.listen(Number(process.env.PORT || 0), '127.0.0.1', () => {
  console.log(`admit hook on http://127.0.0.1:${server.address().port}/admit`);
});
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => server.close(() => process.exit(0)));
