// URR waiting-room gate: a CloudFront Function (cloudfront-js-2.0) on
// viewer-request. It decides, at the edge, whether a viewer may reach the
// origin, so no origin request is spent on a viewer who must wait.
//
// KeyValueStore entries (written by the URR operator, never by this function):
//   wr/p/<segment>   {"v":1,"rooms":[["/events/aurora","wr/urr-demo/aurora"], ...]}
//                    path prefix -> room key for the prefixes under one first path
//                    segment (`wr/p/` for prefixes at `/`): an index sharded so that
//                    no value outgrows KVS's 1 KB; the longest matching prefix wins.
//                    The root shard `wr/p/` also lists in "segments" which shards exist.
//   wr/<ns>/<name>   {"v":1,"room":"<ns>/<name>","active":true,"enforceFrom":<unix s>,
//                     "protected":[...],"bypass":[...],"waitingPage":"/waiting/<name>",
//                     "serving":{"start":0,"perInterval":500,"intervalSeconds":10,"epoch":<unix s>},
//                     "kid":"2026-11"}
//   key/<kid>        hex HMAC-SHA256 key of the urr-vwr-token (current and previous kid)
//
// Fail-open: a missing, malformed or unreadable entry lets the viewer through.
// A broken waiting room must never close the sale.
//
// Token: base64url(payload) "." base64url(HMAC-SHA256(key, payload)),
// payload = "v1|" kid "|" room "|" number "|" expiresAt. The Rust signer in
// runtime-services/common and this verifier share test vectors.
import cf from 'cloudfront';
import crypto from 'crypto';

var kvs = cf.kvs();
var COOKIE = 'urr-vwr-token';
var SECURITY_HEADERS = {
  'strict-transport-security': { value: 'max-age=63072000; includeSubDomains; preload' },
  'x-content-type-options': { value: 'nosniff' },
  'x-frame-options': { value: 'DENY' },
  'referrer-policy': { value: 'strict-origin-when-cross-origin' },
  'cache-control': { value: 'no-store' }
};

async function handler(event) {
  var request = event.request;
  var room;
  try {
    room = await findRoom(request.uri);
  } catch (e) {
    return request;
  }
  if (!room) {
    return request;
  }
  var now = Math.floor(Date.now() / 1000);
  var decision = await decide(request, room, now);
  return decision.pass ? request : waitResponse(request, room, decision, now);
}

async function findRoom(uri) {
  // The root shard always exists while any room does; it also names the
  // segments that have a shard, so a request never reads a missing key
  // (a KVS miss throws, and throwing is the slow path).
  var root = await readJson('wr/p/');
  if (!root) {
    return null;
  }
  var best = bestIn(root, uri, null);
  var segment = uri.split('/')[1] || '';
  if (segment && root.segments && root.segments.indexOf(segment) !== -1) {
    best = bestIn(await readJson('wr/p/' + segment), uri, best);
  }
  if (!best) {
    return null;
  }
  var room = await readJson(best[1]);
  return room && room.v === 1 ? room : null;
}

async function readJson(key) {
  try {
    return JSON.parse(await kvs.get(key));
  } catch (e) {
    return null;
  }
}

// The longest prefix of `uri` among a shard's rooms, or `best`.
function bestIn(shard, uri, best) {
  for (var i = 0; shard && shard.rooms && i < shard.rooms.length; i++) {
    var prefix = shard.rooms[i][0];
    if (uri.indexOf(prefix) === 0 && (!best || prefix.length > best[0].length)) {
      best = shard.rooms[i];
    }
  }
  return best;
}

async function decide(request, room, now) {
  if (!room.active || now < room.enforceFrom || !startsWithAny(request.uri, room.protected)) {
    return { pass: true };
  }
  if (startsWithAny(request.uri, room.bypass) || isWaitingTraffic(request.uri, room.waitingPage)) {
    return { pass: true };
  }
  var serving = servingAt(room.serving, now);
  var cookie = request.cookies[COOKIE];
  if (!cookie) {
    return { pass: false, serving: serving };
  }
  var claims = await verifyToken(cookie.value, room.room, now);
  if (!claims) {
    return { pass: false, serving: serving };
  }
  return { pass: claims.number <= serving, serving: serving, number: claims.number };
}

// The waiting page, its assets (its directory) and the queue API it calls
// always pass: a room protecting "/" must not hold back the very requests
// that let a visitor wait. Fixed here, not in KVS, so they cost no entry bytes.
var QUEUE_API = /^\/v1\/(rooms\/[^\/]+\/|events\/[^\/]+\/queue(\/|$))/;

function isWaitingTraffic(uri, waitingPage) {
  var dir = waitingPage.substring(0, waitingPage.lastIndexOf('/') + 1);
  return uri.indexOf(waitingPage) === 0 || (dir.length > 1 && uri.indexOf(dir) === 0) || QUEUE_API.test(uri);
}

function startsWithAny(uri, prefixes) {
  for (var i = 0; prefixes && i < prefixes.length; i++) {
    if (uri.indexOf(prefixes[i]) === 0) {
      return true;
    }
  }
  return false;
}

// serving(now) = start + perInterval * floor((now - epoch) / intervalSeconds), never stored.
function servingAt(p, now) {
  if (now < p.epoch || p.intervalSeconds <= 0) {
    return p.start;
  }
  return p.start + p.perInterval * Math.floor((now - p.epoch) / p.intervalSeconds);
}

// Returns {number, expiresAt} or null; the reason is only for tests.
async function verifyToken(token, room, now) {
  var result = await checkToken(token, room, now);
  return result.ok ? result : null;
}

async function checkToken(token, room, now) {
  var dot = token.indexOf('.');
  if (dot < 1 || token.indexOf('.', dot + 1) !== -1) {
    return { ok: false, reason: 'malformed' };
  }
  var payload;
  try {
    payload = Buffer.from(token.substring(0, dot), 'base64url').toString('utf8');
  } catch (e) {
    return { ok: false, reason: 'malformed' };
  }
  var fields = payload.split('|');
  if (fields.length !== 5 || fields[0] !== 'v1' || !/^[0-9]+$/.test(fields[3]) || !/^-?[0-9]+$/.test(fields[4])) {
    return { ok: false, reason: 'malformed' };
  }
  var key;
  try {
    key = await kvs.get('key/' + fields[1]);
  } catch (e) {
    return { ok: false, reason: 'unknown-key' };
  }
  var expected = crypto.createHmac('sha256', Buffer.from(key, 'hex')).update(payload).digest('base64url');
  if (!constantTimeEqual(expected, token.substring(dot + 1))) {
    return { ok: false, reason: 'bad-signature' };
  }
  if (now >= Number(fields[4])) {
    return { ok: false, reason: 'expired' };
  }
  if (fields[2] !== room) {
    return { ok: false, reason: 'wrong-room' };
  }
  return { ok: true, number: Number(fields[3]), expiresAt: Number(fields[4]) };
}

// No early exit on the first differing character: the time taken does not
// tell an attacker how much of a forged signature was right.
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

function waitResponse(request, room, decision, now) {
  var p = room.serving;
  var ahead = decision.number ? decision.number - decision.serving : null;
  var retry = ahead ? Math.ceil(ahead / Math.max(p.perInterval, 1)) * p.intervalSeconds : p.intervalSeconds;
  retry = Math.max(1, Math.min(retry, 3600));
  var headers = {};
  for (var name in SECURITY_HEADERS) {
    headers[name] = SECURITY_HEADERS[name];
  }
  if (wantsJson(request)) {
    headers['content-type'] = { value: 'application/problem+json' };
    headers['retry-after'] = { value: String(retry) };
    return {
      statusCode: 429,
      statusDescription: 'Too Many Requests',
      headers: headers,
      body: JSON.stringify({
        type: 'https://urr.dev/problems/waiting-room',
        title: 'Waiting room active',
        status: 429,
        detail: 'The waiting room is holding requests; take a number at ' + room.waitingPage,
        serving: decision.serving,
        yourNumber: decision.number || null,
        aheadOfYou: ahead,
        retryAfterSeconds: retry
      })
    };
  }
  var back = request.uri + (request.querystring && Object.keys(request.querystring).length ? '?' + query(request.querystring) : '');
  headers.location = { value: room.waitingPage + '?return=' + encodeURIComponent(back) };
  return { statusCode: 302, statusDescription: 'Found', headers: headers };
}

function query(qs) {
  var parts = [];
  for (var name in qs) {
    parts.push(encodeURIComponent(name) + '=' + encodeURIComponent(qs[name].value));
  }
  return parts.join('&');
}
