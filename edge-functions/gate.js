// URR waiting-room gate (CloudFront Function, viewer-request). What it reads
// and decides: README.md. Deployed as dist/gate.js, built by build.mjs
// without comments (CloudFront counts them against the 10 KB code limit).
import cf from 'cloudfront';
import crypto from 'crypto';

var kvs = cf.kvs();
var COOKIE = 'urr-vwr-token';
function securityHeaders() {
  return {
    'strict-transport-security': { value: 'max-age=63072000; includeSubDomains; preload' },
    'x-content-type-options': { value: 'nosniff' },
    'x-frame-options': { value: 'DENY' },
    'referrer-policy': { value: 'strict-origin-when-cross-origin' },
    'cache-control': { value: 'no-store' }
  };
}

async function handler(event) {
  var request = event.request;
  // All inside the guard: an exception must not become a 503 (fail-closed).
  try {
    var r = await evaluate(request, Math.floor(Date.now() / 1000));
    if (r.d.pass) {
      // The origin serves what was decided: resolving /static/../events/x
      // itself, it would serve /events/x that passed as /static/.
      request.uri = r.uri;
      return request;
    }
    return waitResponse(request, r.uri, r.room, r.d);
  } catch (e) {
    return request;
  }
}

async function evaluate(request, now) {
  var uri = normalize(request.uri);
  var room = await findRoom(uri, hostOf(request));
  var d = room ? await decide(request, uri, room, now) : { pass: true };
  // An invite code (?urr-invite=) on a held request: a forged or expired one
  // is refused here, at no origin cost; a good one goes to the waiting page,
  // which redeems it at the queue (single use is the queue's to enforce).
  var q = request.querystring && request.querystring['urr-invite'];
  if (!d.pass && q) {
    var v = await checkToken(q.value, room, now, 'i1');
    d = { pass: false, serving: d.serving, reason: v.ok ? 'invite' : 'invite-' + v.reason, invite: v.ok && q.value };
  }
  return { uri: uri, room: room, d: d };
}

// RFC 3986: decode %XX of unreserved chars only (a decoded / or % would
// change the path), collapse //, remove dot segments (5.2.4), as origins do.
function normalize(uri) {
  var segs = uri.replace(/%([0-9A-Fa-f]{2})/g, function (m, h) {
    var c = String.fromCharCode(parseInt(h, 16));
    return /[A-Za-z0-9._~-]/.test(c) ? c : m;
  }).replace(/\/\/+/g, '/').split('/');
  var out = [];
  for (var i = 1; i < segs.length; i++) {
    var s = segs[i], dots = s === '.' || s === '..';
    if (s === '..') out.pop();
    if (!dots || i === segs.length - 1) out.push(dots ? '' : s);
  }
  return '/' + out.join('/');
}

// The Host as rooms name it: lowercase, no port, no final dot ([::1] keeps
// its colons: it ends in ]). '' without one: only rooms on every host.
function hostOf(request) {
  var h = request.headers.host;
  return h ? lower(h.value).replace(/:[0-9]*$/, '').replace(/\.$/, '') : '';
}

// ASCII only: a Unicode lowercase can change a string's length.
function lower(s) {
  return s.replace(/[A-Z]+/g, function (m) { return m.toLowerCase(); });
}

// On a segment boundary: /a covers /a and /a/x, not /aX; /a/ covers /a/x.
function under(uri, prefix, ci) {
  if (ci) uri = lower(uri), prefix = lower(prefix);
  return uri.indexOf(prefix) === 0 && (prefix.slice(-1) === '/' || uri.length === prefix.length || uri.charAt(prefix.length) === '/');
}

function underAny(uri, prefixes, ci) {
  return prefixes.some(function (p) { return under(uri, p, ci); });
}

// An index route is a prefix (every host) or host + prefix (spec.paths.hosts).
// The longest prefix on this host or every host covering uri by its room's
// rule (ignoring case only if the room is caseInsensitive); ties: on the
// host first, then exact case, then index order.
async function findRoom(uri, host) {
  // wr/p/ names the shards that exist: no read of a missing key (slow: throws).
  var root = await readJson('wr/p/');
  if (!root) return null;
  var rooms = root.rooms;
  var segment = lower(uri.split('/')[1]);
  for (var i = 0; segment && root.segments && i < root.segments.length; i++) {
    if (lower(root.segments[i]) === segment) {
      var shard = await readJson('wr/p/' + root.segments[i]);
      rooms = rooms.concat((shard && shard.rooms) || []);
    }
  }
  var found = [];
  for (i = 0; i < rooms.length; i++) {
    var r = rooms[i][0], s = r.indexOf('/'), h = s < 0 ? r : r.slice(0, s), p = s < 0 ? '/' : r.slice(s);
    if ((!h || h === host) && under(uri, p, true)) {
      found.push({ p: p, h: h ? 1 : 0, key: rooms[i][1], exact: under(uri, p), i: i });
    }
  }
  found.sort(function (a, b) {
    return b.p.length - a.p.length || b.h - a.h || b.exact - a.exact || a.i - b.i;
  });
  for (i = 0; i < found.length; i++) {
    var room = usable(await readJson(found[i].key));
    if (found[i].exact || (room && room.caseInsensitive)) return room;
  }
  return null;
}

async function readJson(key) {
  try {
    return JSON.parse(await kvs.get(key));
  } catch (e) {
    return null;
  }
}

// The entry if it has EdgeEntry's shape (as the Rust twin's serde), else null.
function usable(r) {
  var s = r && r.serving, ci = r && r.caseInsensitive, so = r && r.soldOut;
  return r && r.v === 1 && s && typeof r.room + typeof r.waitingPage === 'stringstring' && r.active === !!r.active &&
    (ci === undefined || ci === !!ci) && (so === undefined || so === !!so) &&
    (r.method === undefined || r.method === 'passthrough' || r.method === 'reject') &&
    (s.pausedAt === undefined || int(s.pausedAt)) && int(r.enforceFrom) && int(s.epoch) && nat(s.start) && nat(s.perInterval) &&
    nat(s.intervalSeconds) && [r.protected, r.bypass, r.kids, r.hosts === undefined ? [] : r.hosts].every(function (a) {
      return Array.isArray(a) && a.every(function (x) { return typeof x === 'string'; });
    }) ? r : null;
}

function int(x) {
  return typeof x === 'number' && Math.floor(x) === x;
}

function nat(x) {
  return int(x) && x >= 0;
}

async function decide(request, uri, room, now) {
  var ci = room.caseInsensitive;
  if (!room.active || now < room.enforceFrom || !underAny(uri, room.protected, ci)) return { pass: true };
  if (underAny(uri, room.bypass, ci) || isWaitingTraffic(uri, room.waitingPage, ci)) return { pass: true };
  // spec.queueing.method: passthrough lets all on, reject all but the served.
  if (room.method === 'passthrough') return { pass: true };
  var closed = room.method === 'reject';
  var serving = servingAt(room.serving, now);
  var cookie = request.cookies[COOKIE];
  if (!cookie) return { pass: false, serving: serving, reason: closed ? 'closed' : 'no-token' };
  var c = await checkToken(cookie.value, room, now);
  if (c.ok && c.number <= serving) return { pass: true, serving: serving, number: c.number };
  if (closed) return { pass: false, serving: serving, reason: 'closed' };
  if (!c.ok) return { pass: false, serving: serving, reason: c.reason };
  return { pass: false, serving: serving, number: c.number, reason: 'not-served' };
}

// The waiting page, its directory and the queue API always pass: a room on
// "/" must not hold back what lets a visitor wait. Fixed: no entry bytes.
var QUEUE_API = /^\/v1\/(rooms\/[^\/]+\/|events\/[^\/]+\/queue(\/|$))/;

function isWaitingTraffic(uri, page, ci) {
  var dir = page.substring(0, page.lastIndexOf('/') + 1);
  return under(uri, page, ci) || (dir.length > 1 && under(uri, dir, ci)) || QUEUE_API.test(ci ? lower(uri) : uri);
}

// Paused (spec.control.paused): the counter stands still from pausedAt.
function servingAt(p, now) {
  if (p.pausedAt !== undefined && now > p.pausedAt) now = p.pausedAt;
  if (now < p.epoch || p.intervalSeconds <= 0) return p.start;
  return p.start + p.perInterval * Math.floor((now - p.epoch) / p.intervalSeconds);
}

// room: the entry. kind: 'v1' a pass (v1|kid|room|number|exp), 'i1' an
// invite code (i1|kid|room|codeId|mode|exp); the same HMAC, never the other.
async function checkToken(token, room, now, kind) {
  kind = kind || 'v1';
  var dot = token.indexOf('.');
  if (dot < 1 || token.indexOf('.', dot + 1) !== -1) return no('malformed');
  var payload;
  try {
    payload = Buffer.from(token.substring(0, dot), 'base64url').toString('utf8');
  } catch (e) {
    return no('malformed');
  }
  var fields = payload.split('|'), inv = kind === 'i1', exp = fields[inv ? 5 : 4];
  if (fields.length !== (inv ? 6 : 5) || fields[0] !== kind || !/^-?[0-9]+$/.test(exp) ||
    !(inv ? /^[A-Za-z0-9_-]{1,32}$/.test(fields[3]) && /^(skip|priority)$/.test(fields[4]) : /^[0-9]+$/.test(fields[3]))) {
    return no('malformed');
  }
  // Only the room's own keys; a kid it does not list is refused unread.
  var hex, key;
  try {
    if (room.kids.indexOf(fields[1]) < 0) throw 0;
    hex = await kvs.get('key/' + room.room + '/' + fields[1]);
    key = Buffer.from(hex, 'hex');
  } catch (e) {
    return no('unknown-key');
  }
  // Empty or not hex: an empty HMAC key is one anyone has.
  if (!key.length || key.length * 2 !== hex.length) return no('unknown-key');
  var expected = crypto.createHmac('sha256', key).update(payload).digest('base64url');
  if (!constantTimeEqual(expected, token.substring(dot + 1))) return no('bad-signature');
  if (now >= Number(exp)) return no('expired');
  if (fields[2] !== room.room) return no('wrong-room');
  return { ok: true, number: Number(fields[3]), expiresAt: Number(fields[4]) };
}

function no(reason) {
  return { ok: false, reason: reason };
}

// No early exit: the time taken does not tell how much of a forgery was right.
function constantTimeEqual(a, b) {
  var diff = a.length ^ b.length;
  for (var i = 0; i < a.length; i++) {
    diff |= a.charCodeAt(i) ^ b.charCodeAt(i % (b.length || 1));
  }
  return diff === 0;
}

function wantsJson(request) {
  var accept = request.headers.accept ? request.headers.accept.value : '';
  return accept.indexOf('application/json') !== -1 && accept.indexOf('text/html') === -1;
}

function waitResponse(request, uri, room, decision) {
  var p = room.serving;
  var ahead = decision.number ? decision.number - decision.serving : null;
  var retry = ahead ? Math.ceil(ahead / Math.max(p.perInterval, 1)) * p.intervalSeconds : p.intervalSeconds;
  retry = Math.max(1, Math.min(retry, 3600));
  var headers = securityHeaders();
  var refused = decision.reason.indexOf('invite-') === 0;
  if (wantsJson(request)) {
    var closed = decision.reason === 'closed', status = closed || refused ? 403 : 429;
    headers['content-type'] = { value: 'application/problem+json' };
    if (status === 429) headers['retry-after'] = { value: String(retry) };
    var body = refused ? { type: 'invite-invalid', title: 'The invite code is not valid', reason: decision.reason.slice(7) } :
      closed ? { type: 'sale-closed', title: 'The sale is closed', detail: 'This sale is not taking anyone in line.' } : {
      type: 'waiting-room', title: 'Waiting room active',
      detail: 'The waiting room is holding requests; take a number at ' + room.waitingPage,
      serving: decision.serving, yourNumber: decision.number || null, aheadOfYou: ahead, retryAfterSeconds: retry
    };
    body.type = 'https://urr.dev/problems/' + body.type;
    body.status = status;
    // soldOut: no places left, waiting may be for nothing.
    body.admission = closed ? 'closed' : room.soldOut ? 'soldOut' : 'open';
    return { statusCode: status, statusDescription: closed ? 'Forbidden' : 'Too Many Requests', headers: headers, body: JSON.stringify(body) };
  }
  var back = uri + (request.querystring && Object.keys(request.querystring).length ? '?' + query(request.querystring) : '');
  // The page redeems a good code, and shows why a refused one was.
  var pre = decision.invite ? 'urr-invite=' + encodeURIComponent(decision.invite) + '&' : refused ? 'urr-invite-refused=' + decision.reason.slice(7) + '&' : '';
  headers.location = { value: room.waitingPage + '?' + pre + 'return=' + encodeURIComponent(back) };
  return { statusCode: 302, statusDescription: 'Found', headers: headers };
}

function query(qs) {
  return Object.keys(qs).map(function (n) { return encodeURIComponent(n) + '=' + encodeURIComponent(qs[n].value); }).join('&');
}
