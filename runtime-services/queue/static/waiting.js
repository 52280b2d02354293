// URR waiting page (/waiting/{room}; also servable as-is from S3).
// Tier 1: an anonymous number (HttpOnly cookie); the serving counter is
// computed here from the room's published parameters, fetched about once a
// minute (docs/waiting-page.md), so a waiter costs the origin next to nothing.
// Tier 2 (?event= and sessionStorage['urr.userToken']): the event queue.
// Then on to ?return=<same-origin path>. Words: waiting-text.js.
'use strict';
(function () {
  var T = window.URRText;
  var HEARTBEAT_MS = 20000, MIN_MS = 1000, MAX_BACKOFF_MS = 30000, OFFLINE_AFTER = 5;
  // The parameters change only when the operator changes the room (a new
  // rate, a pause): a minute (±15 %, so a crowd spreads out) is soon enough;
  // while paused or not open, every 30 s, so a resume shows sooner.
  var REFETCH_MS = 60000, REFETCH_HELD_MS = 30000;
  // Screens the room can leave again (places come back when holds lapse, the
  // operator re-opens): the page keeps looking, at the held pace.
  var HELD = { soldOut: ['soldout', 'soldOutTitle', 'soldOutLead'], closed: ['closed', 'saleClosedTitle', 'saleClosedLead'] };
  function held(admission) {
    var h = HELD[admission];
    if (!h) return false;
    Object.assign(view, { screen: h[0], title: h[1], lead: h[2], eta: null, link: { key: 'back', href: target() } });
    status(h[2], 'warn');
    return true;
  }
  // An opening further off than this is a counter held still, not a countdown.
  var COUNTDOWN_MAX_S = 86400;
  var params = new URLSearchParams(location.search);
  var room = '';
  try { room = decodeURIComponent(location.pathname.replace(/\/+$/, '').split('/').pop() || ''); } catch (e) { room = ''; }
  var eventId = params.get('event');
  // An invite code the edge let on (?urr-invite=), redeemed with the join;
  // one the edge or the queue refused is dropped, and the buyer told so
  // while they wait in the ordinary line.
  var invite = params.get('urr-invite'), inviteRefused = Boolean(params.get('urr-invite-refused'));
  function load(key) { try { return sessionStorage.getItem(key); } catch (e) { return null; } }
  function save(key, value) { try { sessionStorage.setItem(key, value); } catch (e) { /* blocked */ } }
  var userToken = eventId ? load('urr.userToken') : null;
  var timer = 0, tickTimer = 0, last = 0, failures = 0, done = false, busy = false, lastSaid = '', textReady = false;

  // What is shown, without words: render() puts it into the current language.
  var view = {
    screen: 'waiting', title: 'waitingTitle', lead: 'waitingLead', mainLabel: 'yourNumber', sideLabel: 'nowServing',
    number: null, side: null, ahead: undefined, aheadKey: null, eta: null, fraction: 0, opensAt: null,
    placesLeft: null, status: { key: 'statusJoining', kind: '' }, checked: null, link: null, hiddenTurn: false, offline: false,
  };

  // A branded template may leave out any element: what is missing is
  // updated off-page (a detached stand-in) instead of stopping the script.
  function $(id) { return document.getElementById(id) || document.createElement(id === 'progress' ? 'progress' : 'span'); }
  function text(id, value) { if ($(id).textContent !== value) $(id).textContent = value; }
  // The live slots of a template, {{position}} and {{eta}} (data-urr="...").
  function slots(name, value) {
    var nodes = document.querySelectorAll('[data-urr="' + name + '"]');
    for (var i = 0; i < nodes.length; i += 1) if (nodes[i].textContent !== value) nodes[i].textContent = value;
  }
  function jitter(ms) { return ms * (0.8 + Math.random() * 0.4); }
  // Never more than one request a second, whatever asks for it.
  function later(fn, ms) { clearTimeout(timer); timer = setTimeout(fn, Math.max(0, ms, MIN_MS - (Date.now() - last))); }
  function status(key, kind, vars) { view.status = { key: key, kind: kind || '', vars: vars }; }
  function hidden() { return document.visibilityState === 'hidden'; }
  function canAskToNotify() { return 'Notification' in window && Notification.permission === 'default'; }

  function aheadText() {
    if (view.aheadKey) return T.t(view.aheadKey);
    if (view.ahead === undefined) return T.t('finding');
    if (view.ahead === null) return T.t('drawnAtOpen');
    return view.ahead === 0 ? T.t('next') : T.t('ahead', { n: view.ahead });
  }
  function etaText() {
    var e = view.eta;
    if (e && typeof e === 'object') return T.wait(e.low, e.high);
    return e ? T.t({ draw: 'etaDraw', unknown: 'etaUnknown', now: 'etaNow', paused: 'etaPaused' }[e]) : '—';
  }
  // Screen readers hear the summary only when its words change.
  function said() {
    var s = view.screen, number = T.num(view.number), label = T.t(view.mainLabel);
    if (view.offline) return T.t('offlineTitle') + '. ' + T.t('offlineLead');
    if (s === 'turn') return T.t('sayTurn');
    if (s === 'before' && view.opensAt) return T.t('sayOpens', { at: T.time(view.opensAt, { zone: true }) });
    if (s === 'waiting' || s === 'before') {
      if (view.ahead === undefined) return '';
      if (view.ahead === null) return T.t('sayPreQueue');
      if (view.ahead === 0) return T.t('sayNext', { label: label, number: number });
      return T.t('sayPlace', { label: label, number: number, ahead: aheadText(), eta: etaText() });
    }
    return T.t(view.title) + '. ' + T.t(view.lead);
  }

  // `quiet`: a change the page's own clock made (the tier-1 counter moving
  // every interval); those are said at most every 30 s, so a fast counter
  // does not talk over everything else. Answers from the server and new
  // screens are said at once.
  var saidAt = 0, saidScreen = '';
  function render(quiet) {
    if (!textReady) return;
    var t = T.t, s = view.offline ? 'offline' : view.screen;
    text('room', room ? t('roomNamed', { room: room }) : t('room'));
    text('title', t(view.offline ? 'offlineTitle' : view.title));
    text('lead', t(view.offline ? 'offlineLead' : view.lead));
    var stopped = s === 'closed' || s === 'error' || s === 'soldout';
    $('card').className = 'card state-' + s + (stopped ? ' stopped' : s === 'turn' ? ' admitted' : '');
    text('figure-label', t(view.mainLabel));
    text('side-label', t(view.sideLabel));
    text('figure', T.num(view.number));
    text('side', T.num(view.side));
    $('ticket').hidden = s === 'turn' && view.number === null;
    text('ahead-text', aheadText());
    text('eta', etaText());
    slots('position', T.num(view.number));
    slots('eta', etaText());
    var f = Math.min(1, Math.max(0, view.fraction || 0)), pct = T.num(Math.round(f * 100)) + '%';
    $('progress').value = f;
    text('progress', pct);
    text('pct', pct);
    text('checked', view.checked ? T.time(view.checked, { seconds: true }) : '—');
    $('places-stat').hidden = typeof view.placesLeft !== 'number';
    text('places', T.num(view.placesLeft));
    var counting = s === 'before' && view.opensAt;
    $('countdown-box').hidden = !counting;
    if (counting) {
      text('countdown', T.clock((view.opensAt - Date.now()) / 1000));
      var far = view.opensAt - Date.now() > 12 * 3600 * 1000;
      text('opens-at', t('opensAt', { time: T.time(view.opensAt, { zone: true, date: far }) }));
    }
    text('status-text', view.offline ? t('statusReconnectingSafe') : t(view.status.key, view.status.vars));
    $('status').className = 'status ' + (view.offline ? 'warn' : view.status.kind);
    $('continue').hidden = !view.link;
    if (view.link) { $('continue-link').href = view.link.href; text('continue-link', t(view.link.key)); }
    $('notify').hidden = !(canAskToNotify() && (s === 'waiting' || s === 'before' || s === 'paused'));
    document.title = s === 'turn' ? t(view.hiddenTurn ? 'docTurnHidden' : 'turnTitle')
      : s === 'waiting' ? (view.ahead ? t('docAhead', { n: view.ahead }) : t('docWaiting')) : t(view.title);
    var words = said();
    var hold = quiet && saidScreen === s && Date.now() - saidAt < 30000;
    if (words && words !== lastSaid && !hold) {
      text('announce', lastSaid = words);
      saidAt = Date.now();
      saidScreen = s;
    }
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

  // `cache`: the serving parameters may come from the browser's or the edge's
  // cache (they are the same for everyone); everything else never does.
  function request(method, path, auth, cache, body) {
    var headers = { Accept: 'application/json' };
    if (auth) headers.Authorization = 'Bearer ' + auth;
    if (body) headers['Content-Type'] = 'application/json';
    var sent = last = Date.now();
    return fetch(path, { method: method, headers: headers, credentials: 'same-origin', cache: cache || 'no-store',
      body: body ? JSON.stringify(body) : undefined })
      .then(function (res) {
        return res.text().then(function (body) {
          try { body = JSON.parse(body); } catch (e) { body = null; }
          return { status: res.status, retryAfter: Number(res.headers.get('Retry-After')) || 0,
            age: Number(res.headers.get('Age')) || 0, sent: sent, received: Date.now(), body: body };
        });
      });
  }

  // Network trouble or an overloaded server: keep what is shown, retry gently.
  function backoff(fn, retryAfter) {
    failures += 1;
    if (retryAfter > 0) status('statusBusy', 'warn', { n: retryAfter });
    else status(failures > 1 ? 'statusReconnectingSafe' : 'statusReconnecting', 'warn');
    view.offline = failures >= OFFLINE_AFTER;
    render();
    later(fn, retryAfter > 0 ? retryAfter * 1000 * (1 + Math.random() * 0.2)
      : jitter(Math.min(MAX_BACKOFF_MS, 1000 * Math.pow(2, failures - 1))));
  }
  function ok(key) {
    failures = 0;
    view.offline = false;
    status(key || 'statusLive');
    view.checked = Date.now();
  }

  // A screen the page stays on: no more requests.
  function stop(screen, title, lead, linkKey) {
    done = true;
    clearTimeout(timer);
    clearTimeout(tickTimer);
    clearInterval(beat);
    view.screen = screen; view.title = title; view.lead = lead; view.offline = false;
    status(lead, 'warn');
    view.link = linkKey ? { key: linkKey, href: target() } : null;
    render();
  }

  // A refusal that means the same at either tier: a screen, and true.
  function refused(r) {
    var b = r.body, problem = r.status === 403 && b && typeof b.type === 'string' ? b.type.split('/').pop() : '';
    if (problem === 'sale-closed') stop('closed', 'saleClosedTitle', 'saleClosedLead', 'back');
    else if (problem === 'room-draining') stop('closed', 'drainingTitle', 'drainingLead', 'tryAgain');
    else if (problem === 'blocked') stop('error', 'blockedTitle', 'blockedLead', 'back');
    else return false;
    return true;
  }

  function go() { location.replace(view.link ? view.link.href : target()); }
  function admitted() {
    if (done) return;
    done = true;
    clearTimeout(timer);
    clearTimeout(tickTimer);
    clearInterval(beat);
    Object.assign(view, { screen: 'turn', title: 'turnTitle', lead: 'turnLead', eta: 'now', aheadKey: 'through', fraction: 1,
      offline: false, link: { key: 'continue', href: target() } });
    status('statusTurn', 'ok');
    // In a background tab: say so in its title (and a notification, if the
    // visitor allowed one), and go on when they come back to it.
    if (hidden()) {
      view.hiddenTurn = true;
      view.lead = 'turnLeadHidden';
      if ('Notification' in window && Notification.permission === 'granted') {
        // In the page's language, so once its catalogue is in.
        T.ready.then(function () {
          try { new Notification(T.t('turnTitle'), { body: T.t('notificationBody'), tag: 'urr-turn' }); } catch (e) { /* not shown */ }
        });
      }
    } else {
      setTimeout(go, 1000);
    }
    render();
  }

  // ---- tier 1: a number, and the counter computed from its parameters -------
  var key = 'urr.vwr.' + room, base = '/v1/rooms/' + encodeURIComponent(room), ticket = null;
  try { ticket = JSON.parse(load(key)); } catch (e) { /* none */ }
  if (!ticket || typeof ticket.number !== 'number') ticket = null;
  var counter = null, skew = 0, nextFetch = 0, fetching = false;

  // The formula of runtime-services/common/src/serving.rs and the edge gate;
  // a paused room's counter stays at its value at `pausedAt`.
  function servingAt(p, now) {
    var at = typeof p.pausedAt === 'number' && p.pausedAt < now ? p.pausedAt : now;
    if (at < p.epoch || !(p.intervalSeconds > 0)) return p.start;
    return p.start + p.perInterval * Math.floor((at - p.epoch) / p.intervalSeconds);
  }
  function serverNow() { return Date.now() / 1000 + skew; }

  function showTier1(serving, now) {
    var ahead = Math.max(0, ticket.number - serving), span = ticket.number - ticket.firstServing;
    var p = counter, paused = p && typeof p.pausedAt === 'number' && p.pausedAt <= now;
    Object.assign(view, { mainLabel: 'yourNumber', sideLabel: 'nowServing', number: ticket.number, side: serving, ahead: ahead,
      fraction: span > 0 ? (serving - ticket.firstServing) / span : 0, opensAt: null });
    if (!p) { view.eta = null; return; }
    var admission = p.admission || 'open';
    var untilEpoch = p.epoch - now;
    if (held(admission)) return undefined;
    view.link = null;
    view.screen = paused || admission === 'paused' ? 'paused'
      : untilEpoch > 0 && untilEpoch <= COUNTDOWN_MAX_S && ahead > 0 ? 'before' : 'waiting';
    view.title = view.screen + 'Title';
    view.lead = view.screen === 'waiting' && admission === 'draining' ? 'drainingNote' : view.screen + 'Lead';
    if (view.screen === 'before') view.opensAt = (p.epoch - skew) * 1000;
    if (view.screen === 'paused') { view.eta = 'paused'; return status('statusPaused', 'warn'); }
    if (view.status.key === 'statusPaused' || view.status.key === 'soldOutLead' || view.status.key === 'saleClosedLead') status('statusLive');
    if (!(p.perInterval > 0)) { view.eta = 'unknown'; return undefined; }
    // The schedule is exact once the counter moves; before that, its start
    // (when near) plus the intervals needed.
    var intervals = Math.ceil(ahead / p.perInterval), wait;
    if (untilEpoch > 0) wait = (untilEpoch <= COUNTDOWN_MAX_S ? untilEpoch : 0) + intervals * p.intervalSeconds;
    else wait = intervals * p.intervalSeconds - (now - p.epoch) % p.intervalSeconds;
    view.eta = { low: wait, high: wait };
    return undefined;
  }

  // Once a second, no request: the counter, the countdown; and the
  // parameters again when they are due or when our number should be served
  // (the answer confirms it, or shows the room changed).
  function tick() {
    clearTimeout(tickTimer);
    if (done) return;
    if (counter && ticket && !fetching) {
      var now = serverNow(), serving = servingAt(counter, now);
      showTier1(serving, now);
      render(true);
      // Sold out or closed, a number that comes up waits for the room to re-open.
      var due = serving >= ticket.number && !HELD[counter.admission];
      if ((due || Date.now() >= nextFetch) && !busy) later(fetchParams, 0);
    } else if (view.screen === 'before') {
      render();
    } else {
      return; // nothing moves by itself on this screen
    }
    tickTimer = setTimeout(tick, 1000 - (Date.now() % 1000) + 20);
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
        if (b.serving >= ticket.number) return served();
        showTier1(b.serving, serverNow());
        var eta = b.etaSeconds;
        if (eta && typeof eta.high === 'number') view.eta = { low: eta.low, high: eta.high };
        render();
        return later(fetchParams, 0);
      }
      if (r.status === 404) return stop('closed', 'closedTitle', 'closedLead', 'tryAgain');
      if (refused(r)) return undefined;
      backoff(takeNumber, r.status === 429 || r.status === 503 ? r.retryAfter || 5 : 0);
    }, function () { backoff(takeNumber); });
  }

  function fetchParams() {
    if (done) return;
    fetching = true;
    request('GET', base + '/serving', null, 'default').then(function (r) {
      fetching = false;
      var p = r.body;
      if (r.status === 404) return stop('closed', 'closedTitle', 'closedLead', 'tryAgain');
      if (r.status !== 200 || !p || typeof p.serving !== 'number') return backoff(fetchParams, r.status === 429 ? r.retryAfter || 5 : 0);
      ok();
      // Our clock against the server's: its `now` (whole seconds, so +0.5),
      // aged by any cache on the way, at the middle of the round trip.
      if (typeof p.now === 'number') skew = p.now + 0.5 + r.age - (r.sent + r.received) / 2000;
      var complete = typeof p.start === 'number' && typeof p.epoch === 'number' && typeof p.intervalSeconds === 'number';
      counter = complete ? { start: p.start, perInterval: p.perInterval || 0, intervalSeconds: p.intervalSeconds, epoch: p.epoch,
        pausedAt: typeof p.pausedAt === 'number' ? p.pausedAt : null, admission: p.admission || 'open' }
        : { start: p.serving, perInterval: 0, intervalSeconds: 0, epoch: 0, pausedAt: null, admission: p.admission || 'open' };
      var now = serverNow();
      if (servingAt(counter, now) >= ticket.number && !HELD[counter.admission]) return served();
      showTier1(servingAt(counter, now), now);
      render();
      var slow = counter.admission === 'open' || counter.admission === 'draining';
      if (counter.pausedAt !== null) slow = false;
      nextFetch = Date.now() + (slow ? REFETCH_MS : REFETCH_HELD_MS) * (0.85 + Math.random() * 0.3);
      tick();
    }, function () { fetching = false; backoff(fetchParams); });
  }

  // Served at tier 1: sent on, or, for a signed-in buyer the queue sent to
  // tier 1 first (chained tiers, `pass-required`), on to join with the pass
  // (the HttpOnly cookie the number request set).
  var joinWhenServed = false;
  function served() {
    if (!joinWhenServed) return admitted();
    joinWhenServed = false;
    counter = null;
    clearTimeout(tickTimer);
    Object.assign(view, { mainLabel: 'yourPlace', sideLabel: 'inLine', screen: 'waiting', title: 'waitingTitle', lead: 'waitingLead' });
    render();
    later(join, 0);
  }

  // ---- tier 2: the authenticated event queue --------------------------------
  var queue = '/v1/events/' + encodeURIComponent(eventId || '') + '/queue';
  var firstKey = 'urr.queue.' + eventId, first = Number(load(firstKey)) || 0, beat = 0;

  function waiting(b) {
    var admission = b.admission || 'open';
    var pos = typeof b.position === 'number' ? b.position : null;
    if (pos && pos > first) { first = pos; save(firstKey, String(pos)); }
    var screen = admission === 'paused' ? 'paused' : b.preQueue ? 'before' : 'waiting';
    ok(screen === 'paused' ? 'statusPaused' : inviteRefused ? 'statusInviteRefused' : null);
    if (inviteRefused) view.status.kind = 'warn';
    if (screen === 'paused') view.status.kind = 'warn';
    Object.assign(view, { screen: screen, title: screen + 'Title', link: null, mainLabel: 'yourPlace', sideLabel: 'inLine', number: pos,
      side: b.total || 0, ahead: pos === null ? null : pos - 1, fraction: pos === null ? 0 : (first - pos) / first,
      lead: screen === 'before' ? 'preQueueLead' : admission === 'draining' ? 'drainingNote' : screen + 'Lead',
      placesLeft: typeof b.placesLeft === 'number' ? b.placesLeft : null,
      eta: screen === 'paused' ? 'paused' : b.etaSeconds ? { low: b.etaSeconds.low, high: b.etaSeconds.high } : 'draw' });
    if (screen !== 'before') view.opensAt = null;
    held(admission);
    render();
    // Honour the server's interval exactly, plus up to 10%.
    return later(poll, (b.pollAfterMs || 5000) * (1 + Math.random() * 0.1));
  }

  function place(r, retry) {
    busy = false;
    var b = r.body;
    if (done) return undefined;
    if (r.status === 200 && b && b.status === 'admitted' && b.entryToken) {
      save('urr.entryToken.' + eventId, b.entryToken);
      return admitted();
    }
    if (r.status === 200 && b && b.status === 'waiting') return waiting(b);
    if (r.status === 401) return stop('error', 'signInTitle', 'signInLead', 'signInAgain');
    if (r.status === 404 && retry === poll) return later(join, 0);
    if (r.status === 404) return stop('closed', 'lineClosedTitle', 'lineClosedLead', 'back');
    if (refused(r)) return undefined;
    var problem = (r.status === 403 || r.status === 409) && b && typeof b.type === 'string' ? b.type.split('/').pop() : '';
    if (problem === 'invite-invalid' || problem === 'invite-used') { // the ordinary line, then
      invite = null;
      inviteRefused = true;
      status('statusInviteRefused', 'warn');
      render();
      return later(join, 0);
    }
    if (problem === 'pass-required') { // the room gates: a number first, then the line
      joinWhenServed = true;
      status('statusPassFirst');
      render();
      return later(takeNumber, 0);
    }
    if (problem === 'pass-not-served') {
      status('statusPassSoon');
      render();
      return later(retry, jitter(Math.min(r.retryAfter || 5, 60) * 1000));
    }
    if (r.status === 403) { // not open yet: count down, join when it opens
      status('statusNotOpen', 'warn');
      if (problem === 'queue-not-open' && r.retryAfter > 0) {
        Object.assign(view, { screen: 'before', title: 'beforeTitle', lead: 'beforeLead', opensAt: Date.now() + r.retryAfter * 1000 });
        tick();
      }
      render();
      return later(retry, jitter(Math.min(r.retryAfter || 30, 60) * 1000));
    }
    return backoff(retry, r.status === 429 || r.status === 503 ? r.retryAfter || 5 : 0);
  }

  function call(method, path, fn, body) {
    if (done) return;
    busy = true;
    request(method, path, userToken, undefined, body).then(function (r) { place(r, fn); }, function () { busy = false; backoff(fn); });
  }
  function join() { call('POST', queue, join, invite ? { inviteCode: invite } : null); }
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
  // The switcher shows the language in use: set once the catalogue is in,
  // not on every render (a choice still loading would flip back).
  T.ready.then(function () { textReady = true; $('lang').value = T.lang(); T.translateStatic(); render(); });
  $('lang').addEventListener('change', function () {
    T.use($('lang').value).then(function () { T.translateStatic(); render(); },
      function () { $('lang').value = T.lang(); render(); });
  });
  $('notify-button').addEventListener('click', function () {
    if (canAskToNotify()) Notification.requestPermission().then(render, render);
  });
  // `urr-operator page-preview`: one state with sample figures, no requests.
  var preview = document.getElementById('urr-preview');
  var PREVIEWS = {
    'before-open': { screen: 'before', title: 'beforeTitle', lead: 'beforeLead', number: 1234, side: 0, ahead: 1234, eta: { low: 900, high: 900 }, opensAt: Date.now() + 754000 },
    'waiting': { number: 1234, side: 1000, ahead: 234, fraction: 0.6, eta: { low: 120, high: 180 } },
    'your-turn': { screen: 'turn', title: 'turnTitle', lead: 'turnLead', number: 1234, side: 1234, eta: 'now', aheadKey: 'through', fraction: 1, link: { key: 'continue', href: '/' } },
    'paused': { screen: 'paused', title: 'pausedTitle', lead: 'pausedLead', number: 1234, side: 1000, ahead: 234, fraction: 0.6, eta: 'paused' },
    'sold-out': { screen: 'soldout', title: 'soldOutTitle', lead: 'soldOutLead', number: 1234, side: 1000, ahead: 234, eta: null, link: { key: 'back', href: '/' } },
    'closed': { screen: 'closed', title: 'saleClosedTitle', lead: 'saleClosedLead', number: 1234, side: 1000, ahead: 234, eta: null, link: { key: 'back', href: '/' } },
  };
  var STATUS = { 'your-turn': ['statusTurn', 'ok'], 'paused': ['statusPaused', 'warn'], 'sold-out': ['soldOutLead', 'warn'], 'closed': ['saleClosedLead', 'warn'] };
  var shown = preview && PREVIEWS[preview.getAttribute('data-state')];
  if (shown) {
    done = true;
    Object.assign(view, shown, { checked: Date.now() });
    var st = STATUS[preview.getAttribute('data-state')] || ['statusLive', ''];
    status(st[0], st[1]);
    if (view.screen === 'before') tickTimer = setInterval(function () { render(); }, 1000);
    render();
  } else if (tier2) {
    view.mainLabel = 'yourPlace';
    view.sideLabel = 'inLine';
    join();
    beat = setInterval(heartbeat, HEARTBEAT_MS);
  } else {
    if (ticket) view.number = ticket.number;
    takeNumber();
  }
  // Back from a hidden tab (timers were throttled) or back online: check now;
  // a turn that came while hidden goes on now that the visitor sees it.
  function check() {
    if (view.hiddenTurn) { view.hiddenTurn = false; view.lead = 'turnLead'; render(); setTimeout(go, 1000); return; }
    if (!done && !busy) later(tier2 && !joinWhenServed ? poll : ticket ? fetchParams : takeNumber, 0);
  }
  document.addEventListener('visibilitychange', function () { if (!hidden()) check(); });
  window.addEventListener('online', check);
}());
