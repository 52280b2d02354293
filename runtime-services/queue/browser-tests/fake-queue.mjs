// A small stand-in for urr-queue that implements the waiting page's API
// contract (plain node:http, loopback only), so the page can be tested
// without Rust, Redis or the network:
//
//   GET  /waiting/{room}                      the page (static/waiting.html)
//   GET  /waiting/assets/{file}               waiting.js, waiting.css
//   POST /v1/rooms/{room}/numbers             201 + HttpOnly urr-vwr-token cookie; idempotent with it
//   GET  /v1/rooms/{room}/serving             the serving counter
//   POST /v1/events/{event}/queue             tier 2 join (Authorization: Bearer <HS256 user JWT>)
//   GET  /v1/events/{event}/queue/me          place, or 404 problem when not in the queue
//   POST /v1/events/{event}/queue/heartbeat   204, or 404 problem
//   POST /__test/admit                        the test hook (JSON body, see admit() below)
//   GET  anything else                        a plain "destination" page (where the visitor is sent on)
//
// Errors are application/problem+json {type,title,status,detail}.
//
//   node fake-queue.mjs            serves on 127.0.0.1:8080 for a look by hand
import http from 'node:http';
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const STATIC = new URL('../static/', import.meta.url);
const COOKIE = 'urr-vwr-token';
export const SECURITY = {
  'x-content-type-options': 'nosniff',
  'content-security-policy': "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
  'referrer-policy': 'no-referrer',
};
const ASSETS = {
  'waiting.js': 'text/javascript; charset=utf-8',
  'waiting-text.js': 'text/javascript; charset=utf-8',
  'waiting.css': 'text/css; charset=utf-8',
  'i18n.en.json': 'application/json; charset=utf-8',
  'i18n.ko.json': 'application/json; charset=utf-8',
  'i18n.ja.json': 'application/json; charset=utf-8',
};
// assets/i18n.{lang}.json is static/i18n/{lang}.json, as urr-queue serves it.
const assetFile = (name) => new URL(name.replace(/^i18n\.(\w+)\.json$/, 'i18n/$1.json'), STATIC);

const b64url = (value) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');

/** An HS256 JWT, as the identity provider issues user tokens. */
export function signJwt(claims, secret) {
  const body = `${b64url({ alg: 'HS256', typ: 'JWT' })}.${b64url(claims)}`;
  return `${body}.${createHmac('sha256', secret).update(body).digest('base64url')}`;
}

function verifyJwt(token, secret) {
  const parts = String(token).split('.');
  if (parts.length !== 3) return null;
  const expected = createHmac('sha256', secret).update(`${parts[0]}.${parts[1]}`).digest();
  const given = Buffer.from(parts[2], 'base64url');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return null;
  try {
    const claims = JSON.parse(Buffer.from(parts[1], 'base64url').toString());
    return typeof claims.sub === 'string' && claims.sub && claims.exp > Date.now() / 1000 ? claims : null;
  } catch {
    return null;
  }
}

/**
 * Starts the fake on 127.0.0.1 (port 0 = any free port).
 * Returns { url, admitUrl, requests, close() }; `requests` logs every API call
 * as { at (ms), method, path, status, auth (bool), cookie (bool) }.
 */
export async function startFakeQueue({ rooms = [], events = [], userSecret = 'fake-user-secret', port = 0 } = {}) {
  const roomState = new Map();
  const eventState = new Map();
  const passes = new Map(); // cookie value -> { room, number }
  const requests = [];

  const room = (name) => {
    if (!roomState.has(name)) {
      // Frozen counter (epoch far ahead) until the hook moves it.
      roomState.set(name, { next: 0, start: 0, perInterval: 500, intervalSeconds: 10, epoch: 4102444800, throttle: null, failUntil: 0 });
    }
    return roomState.get(name);
  };
  const event = (name) => {
    if (!eventState.has(name)) eventState.set(name, { open: false, ahead: 0, behind: 0, pollAfterMs: 1000, queue: [], admitted: new Map(), beats: new Map(), invites: new Map() });
    return eventState.get(name);
  };
  rooms.forEach(room);
  events.forEach(event);

  // runtime-services/common/src/serving.rs; a paused room stays at serving(pausedAt).
  const servingOf = (r, now) => {
    const at = r.pausedAt != null && r.pausedAt < now ? r.pausedAt : now;
    return at < r.epoch ? r.start : r.start + r.perInterval * Math.floor((at - r.epoch) / r.intervalSeconds);
  };

  function send(res, status, body, headers = {}) {
    const text = body === undefined ? '' : typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body);
    res.writeHead(status, { 'content-length': Buffer.byteLength(text), ...headers });
    res.end(text);
    return status;
  }
  const json = (res, status, body, headers = {}) =>
    send(res, status, body, { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers });
  const problem = (res, status, slug, title, detail, headers = {}) =>
    send(res, status, { type: `https://urr.dev/problems/${slug}`, title, status, detail },
      { 'content-type': 'application/problem+json', 'cache-control': 'no-store', ...headers });

  function cookieOf(req) {
    for (const pair of (req.headers.cookie || '').split(';')) {
      const [k, ...v] = pair.trim().split('=');
      if (k === COOKIE) return v.join('=');
    }
    return null;
  }

  function takeNumber(req, res, name) {
    const r = room(name);
    const now = Math.floor(Date.now() / 1000) + (r.clockOffset || 0);
    if (r.throttle && r.throttle.count > 0) {
      r.throttle.count -= 1;
      return problem(res, 429, 'rate-limited', 'Too many requests', `retry after ${r.throttle.retryAfter} s`,
        { 'retry-after': String(r.throttle.retryAfter) });
    }
    const held = passes.get(cookieOf(req));
    const headers = {};
    let number;
    if (held && held.room === name) {
      number = held.number;
    } else {
      number = ++r.next;
      const token = randomBytes(18).toString('base64url');
      passes.set(token, { room: name, number });
      headers['set-cookie'] = `${COOKIE}=${token}; Path=/; Max-Age=3600; HttpOnly; SameSite=Lax`;
    }
    const serving = servingOf(r, now);
    const ahead = Math.max(0, number - serving);
    const wait = ahead === 0 ? 0 : Math.ceil(ahead / Math.max(1, r.perInterval)) * r.intervalSeconds;
    return json(res, 201, { room: name, number, serving, aheadOfYou: ahead, etaSeconds: { low: wait, high: wait, basis: 'schedule' }, pollAfterMs: 1000 }, headers);
  }

  function servingCounter(res, name) {
    const r = room(name);
    if (Date.now() < r.failUntil) {
      res.socket.destroy(); // a dropped connection (Chromium retries once itself, then fetch() rejects)
      return 0;
    }
    const now = Math.floor(Date.now() / 1000) + (r.clockOffset || 0);
    const body = { room: name, serving: servingOf(r, now), start: r.start, perInterval: r.perInterval,
      intervalSeconds: r.intervalSeconds, epoch: r.epoch, now };
    if (r.pausedAt != null) body.pausedAt = r.pausedAt;
    // As urr-queue answers (docs/openapi/queue.json): `admission` always.
    body.admission = r.admission || 'open';
    return json(res, 200, body, { 'cache-control': 'public, max-age=0, s-maxage=5' });
  }

  function placeOf(e, user, eventName) {
    const admitted = e.admitted.get(user);
    if (admitted) return { event: eventName, status: 'admitted', ...admitted };
    const index = e.queue.indexOf(user);
    if (index < 0) return null;
    const position = e.ahead + index + 1;
    const place = { event: eventName, status: 'waiting', position: e.preQueue ? null : position, total: e.ahead + e.queue.length + e.behind,
      preQueue: Boolean(e.preQueue), etaSeconds: e.preQueue ? null : { low: Math.ceil(position / 5), high: Math.ceil(position / 2), basis: 'measured' },
      pollAfterMs: e.pollAfterMs, admission: e.admission || 'open', order: 'fifo' };
    if (e.placesLeft !== undefined) place.placesLeft = e.placesLeft;
    return place;
  }

  function tier2(req, res, eventName, action, body = '') {
    if (!eventState.has(eventName)) return problem(res, 404, 'unknown-event', 'No such event', `no queue for event ${eventName}`);
    const e = event(eventName);
    const auth = /^Bearer (.+)$/.exec(req.headers.authorization || '');
    const claims = auth && verifyJwt(auth[1], userSecret);
    if (!claims) return problem(res, 401, 'unauthorized', 'Unauthorized', auth ? 'invalid or expired token' : 'missing bearer token');
    const user = claims.sub;
    // Invite codes as the hook set them: 'skip' admits, 'used' is 409, anything else 403.
    let inviteCode = null;
    try { inviteCode = action === 'join' && body ? JSON.parse(body).inviteCode || null : null; } catch { inviteCode = null; }
    if (inviteCode) {
      const mode = e.invites.get(inviteCode);
      if (mode === 'used') return problem(res, 409, 'invite-used', 'The invite code was already used', 'redeemed by another account');
      if (mode !== 'skip') return problem(res, 403, 'invite-invalid', 'The invite code is not valid', 'refused: bad-signature');
      const exp = Math.floor(Date.now() / 1000) + 600;
      e.queue = e.queue.filter((u) => u !== user);
      e.admitted.set(user, {
        entryToken: signJwt({ sub: user, evt: eventName, exp }, 'fake-entry-key'),
        entryTokenExpiresAt: exp, // Unix seconds, as the document says
      });
    }
    if (action === 'join' && e.refuse) {
      return problem(res, 403, e.refuse, e.refuse === 'blocked' ? 'Blocked' : 'The sale is closed', `refused: ${e.refuse}`);
    }
    if (action === 'join' && e.opensAt && Date.now() / 1000 < e.opensAt) {
      const wait = Math.ceil(e.opensAt - Date.now() / 1000);
      return problem(res, 403, 'queue-not-open', 'The queue is not open yet', `the queue opens at ${e.opensAt} (Unix seconds)`,
        { 'retry-after': String(wait) });
    }
    if (action === 'join' && e.gateRoom) {
      // Chained tiers: while the edge gates, a join needs a served pass of the room.
      const pass = passes.get(cookieOf(req));
      if (!pass || pass.room !== e.gateRoom) {
        return send(res, 403, { type: 'https://urr.dev/problems/pass-required', title: 'Take a number first', status: 403,
          detail: 'take a number first', numbersUrl: `/v1/rooms/${e.gateRoom}/numbers`, waitingPage: `/waiting/${e.gateRoom}` },
        { 'content-type': 'application/problem+json', 'cache-control': 'no-store' });
      }
      const serving = servingOf(room(e.gateRoom), Math.floor(Date.now() / 1000));
      if (pass.number > serving) {
        return problem(res, 403, 'pass-not-served', 'Your number is not served yet', `serving ${serving}`, { 'retry-after': '1' });
      }
    }
    if (action === 'join' && !e.admitted.has(user) && !e.queue.includes(user)) e.queue.push(user);
    const place = placeOf(e, user, eventName);
    if (!place) return problem(res, 404, 'not-in-queue', 'Not in the queue', 'join the queue again');
    if (action === 'heartbeat') {
      e.beats.set(user, Date.now());
      return send(res, 204);
    }
    return json(res, 200, place);
  }

  // The test hook. Body fields:
  //   {room, serving?, next?, perInterval?, intervalSeconds?}  set the counter (frozen) and the last number issued
  //   {room, throttle: {count, retryAfter}}                   answer the next `count` number requests with 429
  //   {room, failForMs: n}                                    drop every serving request for the next n ms
  //   {room, serving, epoch}                                  a moving counter: `serving` from `epoch` (Unix s) on
  //   {room, clockOffset: s}                                  the server's clock is s seconds off the real one
  //   {room, pausedAt: s | null}                              the counter stays at serving(pausedAt)
  //   {room, admission: 'open'|'paused'|'draining'|'soldOut'|'closed'|null}   the serving answer's admission
  //   {event, admission, placesLeft}                          the same in the waiting answers (null: absent)
  //   {event, refuse: 'sale-closed'|'blocked'|null}           joins are refused with that 403 problem
  //   {event, opensInSeconds: n | null}                       joins get 403 queue-not-open with Retry-After until then
  //   {event, preQueue: bool}                                 waiting answers are of the pre-queue (no position yet)
  //   {event, hold: true, ahead?, behind?}                     a closed queue with phantom people around the visitor
  //   {event, gate: room | false}                             joins need a served pass of `room` (the edge gates), or not
  //   {event, advance: n}                                     n people ahead of the visitor move on
  //   {event, pollAfterMs: n}                                 the poll interval the server asks for
  //   {event, admit: true}                                    everyone waiting is admitted
  //   {event, invite: {code, mode: 'skip'|'used'}}            how a join with that inviteCode is answered (other codes: 403 invite-invalid)
  function admit(body) {
    if (body.room) {
      const r = room(String(body.room));
      for (const k of ['next', 'perInterval', 'intervalSeconds']) if (Number.isFinite(body[k])) r[k] = body[k];
      if (Number.isFinite(body.serving)) { r.start = body.serving; r.epoch = Number.isFinite(body.epoch) ? body.epoch : 4102444800; }
      if (body.pausedAt !== undefined) r.pausedAt = body.pausedAt;
      if (Number.isFinite(body.clockOffset)) r.clockOffset = body.clockOffset;
      if (body.admission !== undefined) r.admission = body.admission;
      if (body.throttle) r.throttle = { count: body.throttle.count ?? 1, retryAfter: body.throttle.retryAfter ?? 2 };
      if (Number.isFinite(body.failForMs)) r.failUntil = Date.now() + body.failForMs;
    }
    if (body.event) {
      const e = event(String(body.event));
      if (body.hold) Object.assign(e, { open: false, ahead: body.ahead ?? 0, behind: body.behind ?? 0 });
      if (body.gate !== undefined) e.gateRoom = body.gate ? String(body.gate) : null;
      if (Number.isFinite(body.advance)) e.ahead = Math.max(0, e.ahead - body.advance);
      if (Number.isFinite(body.pollAfterMs)) e.pollAfterMs = body.pollAfterMs;
      if (body.admission !== undefined) e.admission = body.admission;
      if (body.placesLeft !== undefined) e.placesLeft = body.placesLeft === null ? undefined : body.placesLeft;
      if (body.refuse !== undefined) e.refuse = body.refuse;
      if (body.opensInSeconds !== undefined) e.opensAt = body.opensInSeconds === null ? null : Date.now() / 1000 + body.opensInSeconds;
      if (body.preQueue !== undefined) e.preQueue = Boolean(body.preQueue);
      if (body.invite) e.invites.set(String(body.invite.code), String(body.invite.mode));
      if (body.admit) {
        e.open = true;
        e.ahead = 0;
        const exp = Math.floor(Date.now() / 1000) + 600;
        for (const user of e.queue) {
          e.admitted.set(user, {
            entryToken: signJwt({ sub: user, evt: String(body.event), exp }, 'fake-entry-key'),
            entryTokenExpiresAt: exp, // Unix seconds, as the document says
          });
        }
        e.queue = [];
      }
    }
  }

  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://fake');
    const path = url.pathname;
    const seg = path.split('/').slice(1).map((s) => { try { return decodeURIComponent(s); } catch { return s; } });
    let status = 0;
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const m = req.method;
      if (path === '/__test/admit' && m === 'POST') {
        try { admit(JSON.parse(Buffer.concat(chunks).toString() || '{}')); } catch (err) {
          return problem(res, 400, 'bad-request', 'Bad request', String(err));
        }
        return send(res, 204);
      }
      if (seg[0] === 'waiting' && seg.length === 2 && seg[1] && m === 'GET') {
        return send(res, 200, readFileSync(new URL('waiting.html', STATIC)), { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'public, max-age=60', ...SECURITY });
      }
      if (seg[0] === 'waiting' && seg[1] === 'assets' && seg.length === 3 && m === 'GET') {
        if (!ASSETS[seg[2]]) return problem(res, 404, 'not-found', 'Not found', 'no such asset');
        return send(res, 200, readFileSync(assetFile(seg[2])), { 'content-type': ASSETS[seg[2]], 'cache-control': 'public, max-age=300', ...SECURITY });
      }
      if (seg[0] === 'v1') {
        if (seg[1] === 'rooms' && seg.length === 4 && !roomState.has(seg[2])) {
          status = problem(res, 404, 'unknown-room', 'No such waiting room', `no room ${seg[2]}`);
        } else if (seg[1] === 'rooms' && seg[3] === 'numbers' && seg.length === 4 && m === 'POST') {
          status = takeNumber(req, res, seg[2]);
        } else if (seg[1] === 'rooms' && seg[3] === 'serving' && seg.length === 4 && m === 'GET') {
          status = servingCounter(res, seg[2]);
        } else if (seg[1] === 'events' && seg[3] === 'queue' && seg.length === 4 && m === 'POST') {
          status = tier2(req, res, seg[2], 'join', Buffer.concat(chunks).toString());
        } else if (seg[1] === 'events' && seg[3] === 'queue' && seg[4] === 'me' && seg.length === 5 && m === 'GET') {
          status = tier2(req, res, seg[2], 'me');
        } else if (seg[1] === 'events' && seg[3] === 'queue' && seg[4] === 'heartbeat' && seg.length === 5 && m === 'POST') {
          status = tier2(req, res, seg[2], 'heartbeat');
        } else {
          status = problem(res, 404, 'not-found', 'Not found', 'no such route');
        }
        requests.push({ at: Date.now(), method: m, path, status, auth: Boolean(req.headers.authorization), cookie: Boolean(cookieOf(req)),
          body: Buffer.concat(chunks).toString() });
        return undefined;
      }
      if (m !== 'GET') return problem(res, 405, 'method-not-allowed', 'Method not allowed', m);
      return send(res, 200, '<!doctype html><meta charset="utf-8"><title>Destination</title><h1>Destination</h1>',
        { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    });
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  const url = `http://127.0.0.1:${server.address().port}`;
  return {
    url,
    admitUrl: `${url}/__test/admit`,
    requests,
    close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const fake = await startFakeQueue({ rooms: ['demo'], events: ['demo'], port: Number(process.env.PORT || 8080) });
  await fetch(fake.admitUrl, { method: 'POST', body: JSON.stringify({ room: 'demo', next: 1233, serving: 1000, perInterval: 25, intervalSeconds: 30 }) });
  await fetch(fake.admitUrl, { method: 'POST', body: JSON.stringify({ event: 'demo', hold: true, ahead: 41, behind: 4958 }) });
  console.log(`fake urr-queue on ${fake.url}: open ${fake.url}/waiting/demo?return=/events/demo`);
  console.log(`user token for tier 2: ${signJwt({ sub: 'someone', exp: Math.floor(Date.now() / 1000) + 3600 }, 'fake-user-secret')}`);
}
