// URR waiting page: the words and their formatting (window.URRText).
// One message catalogue per language (assets/i18n.{lang}.json, cached at the
// edge like the page); numbers and times through Intl, in the visitor's
// locale and the event's time zone (?tz=, default Asia/Seoul, the example
// sale's). waiting.js renders only through t() and the formatters, so a
// switch of language re-renders every text on the page.
'use strict';
(function () {
  var LANGS = ['en', 'ko', 'ja'], STORE = 'urr.lang', DEFAULT_TZ = 'Asia/Seoul';
  var params = new URLSearchParams(location.search);
  var catalogue = {}, lang = 'en', locale = 'en-US';

  // A page written by `urr-operator page-preview` carries its state, its
  // language and that language's catalogue in a data block (never in a
  // served page: templates may hold no script but the page's own), so it
  // works opened from a file, where fetch() is refused.
  var preview = document.getElementById('urr-preview');
  var previewCatalogue = null;
  if (preview) { try { previewCatalogue = JSON.parse(preview.textContent); } catch (e) { previewCatalogue = null; } }

  function stored() { try { return localStorage.getItem(STORE); } catch (e) { return null; } }
  function remember(l) { try { localStorage.setItem(STORE, l); } catch (e) { /* blocked: the choice lasts this page */ } }

  // The remembered choice, else the first of the browser's languages (what it
  // sends as Accept-Language) that has a catalogue, else English.
  function preferred() {
    if (preview && LANGS.indexOf(preview.getAttribute('data-lang')) >= 0) return preview.getAttribute('data-lang');
    var choice = stored();
    if (LANGS.indexOf(choice) >= 0) return choice;
    var wanted = navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language || 'en'];
    for (var i = 0; i < wanted.length; i += 1) {
      var base = String(wanted[i]).toLowerCase().split('-')[0];
      if (LANGS.indexOf(base) >= 0) return base;
    }
    return 'en';
  }

  // An unknown zone would make every Intl call throw: fall back to the default.
  var timeZone = (function () {
    var tz = params.get('tz') || DEFAULT_TZ;
    try { new Intl.DateTimeFormat('en', { timeZone: tz }); return tz; } catch (e) { return DEFAULT_TZ; }
  }());

  // The visitor's own regional variant when it is of this language (en-GB
  // keeps its 24-hour clock), else the catalogue's locale.
  function localeFor(l, fallback) {
    var wanted = navigator.languages || [];
    for (var i = 0; i < wanted.length; i += 1) {
      if (String(wanted[i]).toLowerCase().split('-')[0] === l) {
        try { return Intl.getCanonicalLocales(wanted[i])[0]; } catch (e) { break; }
      }
    }
    return fallback;
  }

  function load(l) {
    var bundled = previewCatalogue && preview.getAttribute('data-lang') === l ? Promise.resolve(previewCatalogue) : null;
    return (bundled || fetch('assets/i18n.' + l + '.json', { credentials: 'same-origin' }).then(function (res) {
      if (!res.ok) throw new Error('catalogue ' + l + ': HTTP ' + res.status);
      return res.json();
    })).then(function (c) {
      catalogue = c;
      lang = l;
      locale = localeFor(l, c.locale || l);
      document.documentElement.lang = l;
    });
  }

  // A catalogue that cannot be fetched (offline at the first visit): try
  // English, then keep trying; the page's HTML meanwhile shows English.
  function ready(l) {
    return load(l).catch(function () {
      return load('en').catch(function () {
        return new Promise(function (resolve) { setTimeout(resolve, 3000); }).then(function () { return ready(l); });
      });
    });
  }

  function num(n) { return typeof n === 'number' && isFinite(n) ? new Intl.NumberFormat(locale).format(n) : '—'; }

  // t('ahead', {n: 3}): `{name}` replaced (numbers formatted); an entry with
  // plural forms is picked by Intl.PluralRules on `n`.
  function t(key, vars) {
    vars = vars || {};
    var message = catalogue[key];
    if (message && typeof message === 'object') {
      message = message[new Intl.PluralRules(locale).select(vars.n)] || message.other;
    }
    if (typeof message !== 'string') return '';
    return message.replace(/\{(\w+)\}/g, function (all, name) {
      var v = vars[name];
      return v === undefined ? '' : typeof v === 'number' ? num(v) : String(v);
    });
  }

  function minutes(a, b) {
    var f = new Intl.NumberFormat(locale, { style: 'unit', unit: 'minute', unitDisplay: 'long' });
    return a === b ? f.format(a) : f.formatRange(a, b);
  }
  function hours(a, b) {
    var f = new Intl.NumberFormat(locale, { style: 'unit', unit: 'hour', unitDisplay: 'long', maximumFractionDigits: 1 });
    return a === b ? f.format(a) : f.formatRange(a, b);
  }

  // "about 2–3 minutes" from a range in seconds.
  function wait(low, high) {
    low = Math.max(0, low || 0); high = Math.max(low, high || 0);
    if (high < 60) return t(high <= 5 ? 'etaSoon' : 'etaUnderMinute');
    if (low > 43200) return t('etaOver12h');
    // An exact schedule (low = high) is one figure, not "83–84 minutes".
    if (high < 5400) {
      var a = Math.max(1, Math.round(low / 60)), b = low === high ? a : Math.max(a, Math.ceil(high / 60));
      return t('etaAbout', { d: minutes(a, b) });
    }
    var x = Math.max(1, Math.round(low / 1800) / 2), y = Math.max(x, Math.round(high / 1800) / 2);
    return t('etaAbout', { d: hours(x, y) });
  }

  // A time of day in the event's zone; `zone` adds its name ("KST", "GMT+9").
  function time(ms, options) {
    options = options || {};
    return new Intl.DateTimeFormat(locale, {
      hour: 'numeric', minute: '2-digit', second: options.seconds ? '2-digit' : undefined,
      month: options.date ? 'short' : undefined, day: options.date ? 'numeric' : undefined,
      timeZone: timeZone, timeZoneName: options.zone ? 'short' : undefined,
    }).format(new Date(ms));
  }

  // A countdown: "1:02:03" or "02:03" (digits read the same in every catalogue).
  function clock(seconds) {
    var s = Math.max(0, Math.ceil(seconds)), h = Math.floor(s / 3600), m = Math.floor(s / 60) % 60, r = s % 60;
    var two = function (v) { return (v < 10 ? '0' : '') + v; };
    return (h > 0 ? h + ':' + two(m) : two(m)) + ':' + two(r);
  }

  // Every element marked data-i18n (text) or data-i18n-aria-label.
  function translateStatic() {
    var nodes = document.querySelectorAll('[data-i18n]');
    for (var i = 0; i < nodes.length; i += 1) {
      var words = t(nodes[i].getAttribute('data-i18n'));
      if (words) nodes[i].textContent = words;
    }
    var labelled = document.querySelectorAll('[data-i18n-aria-label]');
    for (var j = 0; j < labelled.length; j += 1) {
      var label = t(labelled[j].getAttribute('data-i18n-aria-label'));
      if (label) labelled[j].setAttribute('aria-label', label);
    }
  }

  var first = preferred();
  window.URRText = {
    languages: LANGS,
    ready: ready(first),
    lang: function () { return lang; },
    timeZone: timeZone,
    t: t, num: num, wait: wait, time: time, clock: clock, translateStatic: translateStatic,
    /** Switches and remembers the language; resolves once the catalogue is in. */
    use: function (l) {
      if (LANGS.indexOf(l) < 0) return Promise.resolve();
      remember(l);
      return load(l);
    },
  };
}());
