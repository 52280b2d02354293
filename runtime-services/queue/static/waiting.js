// URR waiting page. No framework, no build step: served by the queue service
// at /waiting/{room} and uploadable as-is to S3 behind CloudFront.
//
// Tier 1 (default): take an anonymous number (the server sets an HttpOnly
// urr-vwr-token cookie) and watch the serving counter until it reaches it.
// Tier 2 (?event=<id> and a user token in sessionStorage['urr.userToken']):
// join the event's queue and poll the place at the interval the server gives,
// with heartbeats, until admitted; the entry token goes to sessionStorage.
// Then continue to ?return=<same-origin path>.
'use strict';
(function () {
  var MIN_POLL_MS = 1000;
  var MAX_BACKOFF_MS = 30000;
  var HEARTBEAT_MS = 20000;

  var params = new URLSearchParams(window.location.search);
  var room = decodeURIComponent(window.location.pathname.replace(/\/+$/, '').split('/').pop() || '');
  var eventId = params.get('event');
  var userToken = null;
  try { userToken = window.sessionStorage.getItem('urr.userToken'); } catch (e) { /* storage blocked */ }
  var failures = 0;
  var timer = null;

  function $(id) { return document.getElementById(id); }
  function setText(id, text) { $(id).textContent = text; }
  function status(text, ok) {
    var el = $('status');
    el.textContent = text;
    el.className = ok ? 'status ok' : 'status';
  }

  // Only a same-origin path: never `//host`, `/\host` or a scheme (no open redirect).
  function safeReturn() {
    var target = params.get('return') || '/';
    if (target.charAt(0) !== '/' || target.charAt(1) === '/' || target.charAt(1) === '\\') return '/';
    return target;
  }

  function jitter(ms) { return Math.round(ms * (0.8 + Math.random() * 0.4)); }
  function later(fn, ms) {
    window.clearTimeout(timer);
    timer = window.setTimeout(fn, Math.max(MIN_POLL_MS, ms));
  }
  function backoff(fn, retryAfterSeconds) {
    failures += 1;
    var ms = retryAfterSeconds ? retryAfterSeconds * 1000 : Math.min(MAX_BACKOFF_MS, 1000 * Math.pow(2, failures));
    status(retryAfterSeconds ? 'Busy — trying again in ' + Math.ceil(ms / 1000) + ' s…' : 'Reconnecting…');
    later(fn, jitter(ms));
  }

  function describeWait(low, high) {
    function words(s) {
      if (s < 60) return s <= 1 ? 'a moment' : s + ' seconds';
      var m = Math.round(s / 60);
      return m < 60 ? m + (m === 1 ? ' minute' : ' minutes') : Math.round(m / 6) / 10 + ' hours';
    }
    if (high <= 1) return 'any moment';
    return low === high || words(low) === words(high) ? 'about ' + words(high) : words(low) + ' – ' + words(high);
  }

  function request(method, url, auth) {
    var headers = { 'Accept': 'application/json' };
    if (auth) headers.Authorization = 'Bearer ' + auth;
    return window.fetch(url, { method: method, headers: headers, credentials: 'same-origin', cache: 'no-store' })
      .then(function (response) {
        return response.text().then(function (text) {
          var body = null;
          try { body = text ? JSON.parse(text) : null; } catch (e) { body = null; }
          return { status: response.status, retryAfter: Number(response.headers.get('Retry-After')) || 0, body: body };
        });
      });
  }

  function admitted() {
    window.clearTimeout(timer);
    $('progress').value = 1;
    $('progress').textContent = '100%';
    setText('title', "It's your turn");
    setText('ahead', '0');
    setText('eta', 'now');
    status("It's your turn — taking you there…", true);
    var target = safeReturn();
    $('continue-link').setAttribute('href', target);
    $('continue').hidden = false;
    window.setTimeout(function () { window.location.assign(target); }, 1000);
  }

  // ---- tier 1 ---------------------------------------------------------------
  var storageKey = 'urr.vwr.' + room;
  var ticket = null;
  try { ticket = JSON.parse(window.sessionStorage.getItem(storageKey) || 'null'); } catch (e) { ticket = null; }

  function takeNumber() {
    request('POST', '/v1/rooms/' + encodeURIComponent(room) + '/numbers').then(function (r) {
      if (r.status === 201 && r.body) {
        failures = 0;
        if (!ticket || ticket.number !== r.body.number) ticket = { number: r.body.number, firstServing: r.body.serving };
        try { window.sessionStorage.setItem(storageKey, JSON.stringify(ticket)); } catch (e) { /* ignore */ }
        showTier1(r.body.serving, r.body.etaSeconds);
        if (r.body.serving >= ticket.number) return admitted();
        return later(watchCounter, jitter(r.body.pollAfterMs || 5000));
      }
      if (r.status === 429) return backoff(takeNumber, r.retryAfter || 5);
      if (r.status === 404) return status('This waiting room is not open. Please check the link.');
      backoff(takeNumber);
    }, function () { backoff(takeNumber); });
  }

  function showTier1(serving, eta) {
    var ahead = Math.max(0, ticket.number - serving);
    setText('figure-label', 'Your number');
    setText('figure', ticket.number.toLocaleString());
    setText('ahead', ahead.toLocaleString());
    setText('eta', eta ? describeWait(eta.low, eta.high) : '…');
    var span = Math.max(1, ticket.number - ticket.firstServing);
    var done = Math.min(1, Math.max(0, (serving - ticket.firstServing) / span));
    $('progress').value = done;
    $('progress').textContent = Math.round(done * 100) + '%';
    status('Now serving number ' + serving.toLocaleString() + '.');
  }

  function watchCounter() {
    request('GET', '/v1/rooms/' + encodeURIComponent(room) + '/serving').then(function (r) {
      if (r.status !== 200 || !r.body) return backoff(watchCounter, r.retryAfter);
      failures = 0;
      var p = r.body;
      if (p.serving >= ticket.number) return admitted();
      var ahead = ticket.number - p.serving;
      var perInterval = Math.max(1, p.perInterval);
      var seconds = Math.ceil(ahead / perInterval) * p.intervalSeconds;
      showTier1(p.serving, { low: Math.max(0, seconds - p.intervalSeconds), high: seconds });
      // Far back: every 15 s; within ten intervals: 5 s; within one: 2 s.
      var next = ahead > 10 * perInterval ? 15000 : ahead > perInterval ? 5000 : 2000;
      later(watchCounter, jitter(next));
    }, function () { backoff(watchCounter); });
  }

  // ---- tier 2 ---------------------------------------------------------------
  var queueUrl = '/v1/events/' + encodeURIComponent(eventId || '') + '/queue';
  var heartbeatTimer = null;

  function showPlace(body) {
    setText('figure-label', 'Your place');
    setText('figure', body.position ? body.position.toLocaleString() : 'drawn at open');
    setText('ahead', body.position ? (body.position - 1).toLocaleString() : '—');
    setText('eta', body.etaSeconds ? describeWait(body.etaSeconds.low, body.etaSeconds.high) : 'after the draw');
    var total = Math.max(body.total || 1, body.position || 1);
    var done = body.position ? 1 - (body.position - 1) / total : 0;
    $('progress').value = done;
    $('progress').textContent = Math.round(done * 100) + '%';
    status(body.preQueue
      ? 'You are in the pre-queue. Everyone in it gets a random place when the sale opens.'
      : (body.total || 0).toLocaleString() + ' people in line.');
  }

  function handlePlace(r, retry) {
    if (r.status === 200 && r.body && r.body.status === 'admitted') {
      try { window.sessionStorage.setItem('urr.entryToken.' + eventId, r.body.entryToken); } catch (e) { /* ignore */ }
      window.clearInterval(heartbeatTimer);
      return admitted();
    }
    if (r.status === 200 && r.body) {
      failures = 0;
      showPlace(r.body);
      return later(poll, jitter(r.body.pollAfterMs || 5000));
    }
    if (r.status === 401) return status('Your sign-in has expired. Please sign in again to keep your place.');
    if (r.status === 404 && retry === poll) return later(join, 0);
    if (r.status === 404) return status('This event has no waiting line here. Please check the link.');
    if (r.status === 429 || r.status === 503 || r.status === 403) return backoff(retry, r.retryAfter || 5);
    backoff(retry);
  }

  function join() {
    request('POST', queueUrl, userToken).then(function (r) { handlePlace(r, join); }, function () { backoff(join); });
  }
  function poll() {
    request('GET', queueUrl + '/me', userToken).then(function (r) { handlePlace(r, poll); }, function () { backoff(poll); });
  }

  // ---- start ------------------------------------------------------------------
  setText('room', room ? 'Waiting room · ' + room : 'Waiting room');
  if (eventId && userToken) {
    join();
    heartbeatTimer = window.setInterval(function () {
      request('POST', queueUrl + '/heartbeat', userToken).then(null, function () { /* next poll retries */ });
    }, HEARTBEAT_MS);
    document.addEventListener('visibilitychange', function () {
      if (document.visibilityState === 'visible') later(poll, 0);
    });
  } else {
    takeNumber();
  }
})();
