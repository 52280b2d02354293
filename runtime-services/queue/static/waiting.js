// URR waiting page (/waiting/{room}; also servable as-is from S3).
// Tier 1: an anonymous number (HttpOnly cookie) and the serving counter.
// Tier 2 (?event= and sessionStorage['urr.userToken']): the event queue.
// Then on to ?return=<same-origin path>.
'use strict';
(function () {
  var HEARTBEAT_MS = 20000, MIN_MS = 1000, MAX_BACKOFF_MS = 30000;
  var params = new URLSearchParams(location.search);
  var room = '';
  try { room = decodeURIComponent(location.pathname.replace(/\/+$/, '').split('/').pop() || ''); } catch (e) { room = ''; }
  var eventId = params.get('event');
  function load(key) { try { return sessionStorage.getItem(key); } catch (e) { return null; } }
  function save(key, value) { try { sessionStorage.setItem(key, value); } catch (e) { /* blocked */ } }
  var userToken = eventId ? load('urr.userToken') : null;
  var timer = 0, last = 0, failures = 0, done = false, busy = false, lastSaid = '';

  function $(id) { return document.getElementById(id); }
  function text(id, value) { $(id).textContent = value; }
  function fmt(n) { return typeof n === 'number' && isFinite(n) ? n.toLocaleString('en-US') : '—'; }
  function plural(n, one, many) { return fmt(n) + ' ' + (n === 1 ? one : many); }
  function jitter(ms) { return ms * (0.8 + Math.random() * 0.4); }
  // Never more than one request a second, whatever asks for it.
  function later(fn, ms) { clearTimeout(timer); timer = setTimeout(fn, Math.max(0, ms, MIN_MS - (Date.now() - last))); }

  function status(message, kind) { text('status-text', message); $('status').className = 'status ' + (kind || ''); }
  // Screen readers hear the summary only when its words change.
  function announce(message) { if (message !== lastSaid) text('announce', lastSaid = message); }
  function progress(fraction) {
    var f = Math.min(1, Math.max(0, fraction || 0)), pct = Math.round(f * 100) + '%';
    $('progress').value = f;
    text('progress', pct);
    text('pct', pct);
  }

  // "about 2–3 minutes" from a range in seconds.
  function wait(low, high) {
    low = Math.max(0, low || 0); high = Math.max(low, high || 0);
    if (high < 60) return high <= 5 ? 'any moment now' : 'less than a minute';
    if (low > 43200) return 'more than 12 hours';
    if (high < 5400) {
      var a = Math.max(1, Math.round(low / 60)), b = Math.max(a, Math.ceil(high / 60));
      return 'about ' + (a === b ? plural(a, 'minute', 'minutes') : a + '–' + b + ' minutes');
    }
    var x = Math.max(1, Math.round(low / 1800) / 2), y = Math.max(x, Math.round(high / 1800) / 2);
    return 'about ' + (x === y ? plural(x, 'hour', 'hours') : x + '–' + y + ' hours');
  }

  // Only a path on this site: never `//host`, `/\host`, a scheme, or anything
  // that resolves to another origin once the browser has cleaned it up.
  function target() {
    var raw = params.get('return') || '/';
    if (!/^\/(?![\/\\])/.test(raw) || /[\u0000-\u001f\\]/.test(raw)) return '/';
    try {
      var url = new URL(raw, location.origin);
      return url.origin === location.origin ? url.pathname + url.search + url.hash : '/';
    } catch (e) { return '/'; }
  }

  function request(method, path, auth) {
    var headers = { Accept: 'application/json' };
    if (auth) headers.Authorization = 'Bearer ' + auth;
    last = Date.now();
    return fetch(path, { method: method, headers: headers, credentials: 'same-origin', cache: 'no-store' })
      .then(function (res) {
        return res.text().then(function (body) {
          try { body = JSON.parse(body); } catch (e) { body = null; }
          return { status: res.status, retryAfter: Number(res.headers.get('Retry-After')) || 0, body: body };
        });
      });
  }

  // Network trouble or an overloaded server: keep what is shown, retry gently.
  function backoff(fn, retryAfter) {
    failures += 1;
    if (retryAfter > 0) status('The line is busy — trying again in ' + plural(retryAfter, 'second', 'seconds') + '…', 'warn');
    else status(failures > 1 ? 'Reconnecting… your place is safe.' : 'Reconnecting…', 'warn');
    later(fn, retryAfter > 0 ? retryAfter * 1000 * (1 + Math.random() * 0.2)
      : jitter(Math.min(MAX_BACKOFF_MS, 1000 * Math.pow(2, failures - 1))));
  }
  function ok() {
    failures = 0;
    status('Live — this page updates automatically.');
    text('checked', new Date().toLocaleTimeString('en-US', { hour: 'numeric', minute: '2-digit', second: '2-digit' }));
  }

  function stop(title, message, linkText) {
    done = true;
    clearTimeout(timer);
    text('title', title);
    text('lead', message);
    status(message, 'warn');
    announce(title + '. ' + message);
    $('card').className = 'card stopped';
    if (linkText) { $('continue-link').href = target(); text('continue-link', linkText); $('continue').hidden = false; }
  }

  function admitted() {
    if (done) return;
    done = true;
    clearTimeout(timer);
    var to = target();
    progress(1);
    text('title', "It's your turn");
    text('lead', 'Thanks for waiting. Taking you there now…');
    text('eta', 'now');
    text('ahead-text', "You're through!");
    status("It's your turn — taking you there…", 'ok');
    announce("It's your turn. Taking you there now.");
    document.title = "It's your turn";
    $('card').className = 'card admitted';
    if ($('figure').textContent === '—') $('ticket').hidden = true;
    $('continue-link').href = to;
    $('continue').hidden = false;
    setTimeout(function () { location.replace(to); }, 1000);
  }

  function show(number, mainLabel, sideLabel, side, ahead, eta, fraction) {
    text('figure-label', mainLabel);
    text('figure', fmt(number));
    text('side-label', sideLabel);
    text('side', side);
    text('eta', eta);
    text('ahead-text', ahead == null ? 'Your place is drawn when the sale opens'
      : ahead === 0 ? "You're next" : plural(ahead, 'person', 'people') + ' ahead of you');
    progress(fraction);
    document.title = (ahead ? fmt(ahead) + ' ahead · ' : '') + "You're in line";
    announce(ahead == null ? 'You are in the pre-queue. Your place is drawn when the sale opens.'
      : mainLabel + ' is ' + fmt(number) + '. ' + (ahead === 0 ? "You're next." : plural(ahead, 'person', 'people') + ' ahead of you. Estimated wait ' + eta + '.'));
  }

  // ---- tier 1: a number and the serving counter ----------------------------
  var key = 'urr.vwr.' + room, base = '/v1/rooms/' + encodeURIComponent(room), ticket = null;
  try { ticket = JSON.parse(load(key)); } catch (e) { /* none */ }
  if (!ticket || typeof ticket.number !== 'number') ticket = null;

  function showTier1(serving, etaLow, etaHigh) {
    var ahead = Math.max(0, ticket.number - serving);
    var span = ticket.number - ticket.firstServing;
    show(ticket.number, 'Your number', 'Now serving', fmt(serving), ahead,
      etaHigh == null ? 'waiting for the line to move' : wait(etaLow, etaHigh),
      span > 0 ? (serving - ticket.firstServing) / span : 0);
  }

  function takeNumber() {
    request('POST', base + '/numbers').then(function (r) {
      var b = r.body;
      if (r.status === 201 && b && typeof b.number === 'number') {
        ok();
        if (!ticket || ticket.number !== b.number) {
          ticket = { number: b.number, firstServing: Math.min(b.serving, b.number) };
          save(key, JSON.stringify(ticket));
        }
        var eta = b.etaSeconds || {};
        showTier1(b.serving, eta.low, eta.high);
        if (b.serving >= ticket.number) return served();
        // The server's interval, plus up to 10% so a crowd spreads out.
        return later(watch, (b.pollAfterMs || 5000) * (1 + Math.random() * 0.1));
      }
      if (r.status === 404) return stop('This waiting room is closed', 'There is no line to wait in right now. Please try the page again.', 'Try again');
      backoff(takeNumber, r.status === 429 || r.status === 503 ? r.retryAfter || 5 : 0);
    }, function () { backoff(takeNumber); });
  }

  function watch() {
    if (done) return;
    request('GET', base + '/serving').then(function (r) {
      var p = r.body;
      if (r.status !== 200 || !p || typeof p.serving !== 'number') return backoff(watch, r.status === 429 ? r.retryAfter || 5 : 0);
      ok();
      if (p.serving >= ticket.number) return served();
      var ahead = ticket.number - p.serving, per = p.perInterval, every = p.intervalSeconds || 10;
      if (!(per > 0)) {
        showTier1(p.serving, null, null);
        return later(watch, jitter(15000));
      }
      var high = Math.ceil(ahead / per) * every;
      showTier1(p.serving, Math.max(0, high - every), high);
      // Far back: every 15 s; closer: 5 s; within one interval: 2 s.
      var next = jitter(ahead > 10 * per ? 15000 : ahead > per ? 5000 : 2000);
      // The counter is a schedule: do not sleep past our turn (spread over 1.5 s).
      if (typeof p.now === 'number' && typeof p.epoch === 'number' && p.now >= p.epoch) {
        var due = (every - (p.now - p.epoch) % every + (Math.ceil(ahead / per) - 1) * every) * 1000;
        if (due < next) next = due + Math.random() * 1500;
      }
      later(watch, next);
    }, function () { backoff(watch); });
  }

  // Served at tier 1: sent on, or, for a signed-in buyer the queue sent to
  // tier 1 first (chained tiers, `pass-required`), on to join with the pass
  // (the HttpOnly cookie the number request set).
  var joinWhenServed = false;
  function served() {
    if (!joinWhenServed) return admitted();
    joinWhenServed = false;
    text('figure-label', 'Your place');
    text('side-label', 'In line');
    later(join, 0);
  }

  // ---- tier 2: the authenticated event queue --------------------------------
  var queue = '/v1/events/' + encodeURIComponent(eventId || '') + '/queue';
  var firstKey = 'urr.queue.' + eventId, first = Number(load(firstKey)) || 0, beat = 0;

  function place(r, retry) {
    busy = false;
    var b = r.body;
    if (done) return;
    if (r.status === 200 && b && b.status === 'admitted' && b.entryToken) {
      save('urr.entryToken.' + eventId, b.entryToken);
      clearInterval(beat);
      return admitted();
    }
    if (r.status === 200 && b && b.status === 'waiting') {
      ok();
      var pos = typeof b.position === 'number' ? b.position : null;
      if (pos && pos > first) { first = pos; save(firstKey, String(pos)); }
      var eta = b.etaSeconds ? wait(b.etaSeconds.low, b.etaSeconds.high) : 'after the draw';
      show(pos, 'Your place', 'In line', fmt(b.total || 0),
        pos == null ? null : pos - 1, eta, pos == null ? 0 : (first - pos) / first);
      // Honour the server's interval exactly, plus up to 10%.
      return later(poll, (b.pollAfterMs || 5000) * (1 + Math.random() * 0.1));
    }
    if (r.status === 401) {
      clearInterval(beat);
      return stop('Please sign in again', 'Your sign-in has expired. Sign in again to keep your place in line.', 'Sign in again');
    }
    if (r.status === 404 && retry === poll) return later(join, 0);
    if (r.status === 404) return stop('This line is not open', 'There is no waiting line for this event right now.', 'Back');
    var problem = r.status === 403 && b && typeof b.type === 'string' ? b.type.split('/').pop() : '';
    if (problem === 'pass-required') { // the room gates: a number first, then the line
      joinWhenServed = true;
      status('First, a number in the waiting room — you join the line when it is served.');
      return later(takeNumber, 0);
    }
    if (problem === 'pass-not-served') {
      status('Your number is nearly up — joining the line when it is served.');
      return later(retry, jitter(Math.min(r.retryAfter || 5, 60) * 1000));
    }
    if (r.status === 403) { // not open yet: join when it opens
      status("The line hasn't opened yet — you'll join automatically when it does.", 'warn');
      return later(retry, jitter(Math.min(r.retryAfter || 30, 60) * 1000));
    }
    backoff(retry, r.status === 429 || r.status === 503 ? r.retryAfter || 5 : 0);
  }

  function call(method, path, fn) {
    if (done) return;
    busy = true;
    request(method, path, userToken).then(function (r) { place(r, fn); }, function () { busy = false; backoff(fn); });
  }
  function join() { call('POST', queue, join); }
  function poll() { call('GET', queue + '/me', poll); }
  function heartbeat() {
    if (done) return;
    request('POST', queue + '/heartbeat', userToken).then(function (r) {
      if (r.status === 404 && !busy) later(join, 0);
      else if (r.status === 401 && !busy) poll();
    }, function () { /* the next poll reconnects */ });
  }

  // ---- start ------------------------------------------------------------------
  var tier2 = Boolean(eventId && userToken);
  text('room', room ? 'Waiting room · ' + room : 'Waiting room');
  if (tier2) {
    text('figure-label', 'Your place');
    text('side-label', 'In line');
    join();
    beat = setInterval(heartbeat, HEARTBEAT_MS);
  } else {
    if (ticket) text('figure', fmt(ticket.number));
    takeNumber();
  }
  // Back from a hidden tab (timers were throttled) or back online: check now.
  function check() { if (!done && !busy) later(tier2 && !joinWhenServed ? poll : ticket ? watch : takeNumber, 0); }
  document.addEventListener('visibilitychange', function () { if (document.visibilityState === 'visible') check(); });
  window.addEventListener('online', check);
})();
