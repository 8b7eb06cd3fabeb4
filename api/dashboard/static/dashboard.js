/*
 * Kairos dashboard: plain JavaScript, no framework, no third party, no
 * build step. It reads the HTTP API of the server that serves it with the
 * secret key, which it keeps in sessionStorage (this tab only) and sends
 * only in the Authorization header. Every value from the API reaches the
 * DOM through textContent or SVG attributes, never as HTML.
 *
 * Polls: GET /v1/dashboard/summary every 2 s (counters, top items,
 * offers, the model and its retrains); GET /v1/experiments and each experiment's results every 5 s;
 * GET /v1/holdout/results every 5 s (the personalization lift);
 * GET /v1/pages/attention for the chosen page every 5 s. Panels are
 * rebuilt only when their data changed, in one synchronous step, so
 * refreshes do not flicker.
 */
(function () {
  'use strict';

  var KEY = 'kairos.dashboard.key'; // sessionStorage
  var PAGE = 'kairos.dashboard.page'; // localStorage: last heat-map page (not a secret)
  var PAGES = 'kairos.dashboard.pages'; // localStorage: recent pages
  var SVGNS = 'http://www.w3.org/2000/svg';
  var SNAPSHOT_WIDTH = 1280; // the page snapshot is laid out at this width, then scaled
  var COLORS = ['#2f6fed', '#e8762c', '#1a8f5a', '#9b51e0', '#c8382c', '#0f9bb5'];
  var STATUS_ORDER = { running: 0, scheduled: 1, stopped: 2 };

  var $ = function (id) { return document.getElementById(id); };
  var fmtInt = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

  var running = false;
  var session = 0; // counts sign-ins
  var timers = {};
  var samples = []; // {t, received, accepted, rejected, applied}
  var sigs = {}; // panel → signature of the data last rendered
  var cards = {}; // experiment id → {el, sig}
  var heat = { page: '', sameOrigin: false, data: null, found: null, seq: 0, snapshotFor: '', snapshotError: '' };

  // ---- helpers ----

  function el(tag, props, children) {
    var e = document.createElement(tag);
    setProps(e, props);
    append(e, children);
    return e;
  }

  function svg(tag, attrs, children) {
    var e = document.createElementNS(SVGNS, tag);
    for (var k in attrs) {
      if (attrs[k] !== undefined && attrs[k] !== null) e.setAttribute(k, String(attrs[k]));
    }
    append(e, children);
    return e;
  }

  function setProps(e, props) {
    for (var k in props || {}) {
      var v = props[k];
      if (v === undefined || v === null) continue;
      if (k === 'text') e.textContent = String(v);
      else if (k === 'className') e.className = v;
      else if (k === 'hidden') e.hidden = !!v;
      else e.setAttribute(k, String(v));
    }
  }

  function append(e, children) {
    (children || []).forEach(function (c) {
      if (c === null || c === undefined || c === false) return;
      e.appendChild(typeof c === 'string' ? document.createTextNode(c) : c);
    });
  }

  // setText and setHidden change an element only when needed (a change
  // is a repaint, and what observers see).
  function setText(e, text) {
    if (e.textContent !== text) e.textContent = text;
  }

  function setHidden(e, hidden) {
    if (e.hidden !== hidden) e.hidden = hidden;
  }

  function num(x) { return typeof x === 'number' && isFinite(x); }

  function pct(x, digits) {
    return num(x) ? (x * 100).toFixed(digits === undefined ? 1 : digits) + ' %' : '–';
  }

  function signedPct(x) {
    if (!num(x)) return '–';
    return (x >= 0 ? '+' : '-') + Math.abs(x * 100).toFixed(1) + ' %';
  }

  // bare formats a share as a percentage without the unit (in intervals).
  function bare(x) { return num(x) ? (x * 100).toFixed(1) : '–'; }

  function fmtRate(r) {
    if (!num(r)) return '–';
    return r < 10 ? r.toFixed(1) : fmtInt.format(r);
  }

  function fmtScore(x) { return num(x) ? (x < 100 ? x.toFixed(1) : fmtInt.format(x)) : '–'; }

  function fmtTime(t, withDate) {
    var d = new Date(t);
    var hm = d.toLocaleTimeString('en-GB', { hour: '2-digit', minute: '2-digit', second: withDate ? undefined : '2-digit' });
    return withDate ? d.toLocaleDateString('en-GB', { day: 'numeric', month: 'short' }) + ' ' + hm : hm;
  }

  // changed records data's signature for a panel; it says whether the
  // panel needs rebuilding.
  function changed(panel, data) {
    var s = JSON.stringify(data);
    if (sigs[panel] === s) return false;
    sigs[panel] = s;
    return true;
  }

  function ApiError(status, code, message) {
    this.status = status;
    this.code = code;
    this.message = message;
  }
  ApiError.prototype = Object.create(Error.prototype);

  // api GETs path with the secret key and returns the decoded JSON; errors
  // carry the status and the API's message.
  function api(path) {
    var key = sessionStorage.getItem(KEY);
    if (!key) return Promise.reject(new ApiError(401, 'unauthorized', 'signed out'));
    return fetch(path, {
      headers: { Authorization: 'Bearer ' + key, Accept: 'application/json' },
      cache: 'no-store', credentials: 'omit', redirect: 'error'
    }).then(function (r) {
      return r.text().then(function (text) {
        var body = null;
        try { body = text ? JSON.parse(text) : null; } catch (e) { body = null; }
        if (!r.ok) {
          var err = body && body.error;
          throw new ApiError(r.status, err ? err.code : '', err ? err.message : 'HTTP ' + r.status);
        }
        return body;
      });
    }, function (e) {
      throw new ApiError(0, 'network', 'the server cannot be reached (' + e.message + ')');
    });
  }

  function setStatus(ok, text) {
    $('status-dot').className = 'dot ' + (ok ? 'ok' : 'err');
    $('status-text').textContent = text;
  }

  // ---- sign in and out ----

  function showLogin(message) {
    $('app').hidden = true;
    $('signout').hidden = true;
    $('status').hidden = true;
    $('login').hidden = false;
    var err = $('login-error');
    err.hidden = !message;
    err.textContent = message || '';
    $('key').value = '';
    $('key').focus();
  }

  function loginMessage(e) {
    if (e.status === 401) return 'The server does not know this key.';
    if (e.status === 403) return 'This is not the secret key: the publishable key (pk_…) cannot read the dashboard.';
    return 'Cannot sign in: ' + e.message;
  }

  function onLogin(ev) {
    ev.preventDefault();
    var key = $('key').value.trim();
    if (!key) return;
    if (key.indexOf('pk_') === 0) {
      showLogin('This is the publishable key (pk_…): the dashboard needs the secret key (sk_…).');
      return;
    }
    var button = $('login-button');
    button.disabled = true;
    sessionStorage.setItem(KEY, key);
    api('/v1/dashboard/summary?n=10').then(function (s) {
      $('key').value = '';
      start(s);
    }, function (e) {
      sessionStorage.removeItem(KEY);
      showLogin(loginMessage(e));
    }).then(function () { button.disabled = false; });
  }

  function signOut(message) {
    running = false;
    Object.keys(timers).forEach(function (k) { clearTimeout(timers[k]); });
    timers = {};
    sessionStorage.removeItem(KEY);
    samples = [];
    sigs = {};
    cards = {};
    $('experiments').replaceChildren();
    $('holdout').replaceChildren();
    holdoutSig = '';
    holdoutOn = undefined;
    $('top-items').tBodies[0].replaceChildren();
    $('offers').tBodies[0].replaceChildren();
    $('retrains').tBodies[0].replaceChildren();
    $('heat-list').replaceChildren();
    $('heat-frame').removeAttribute('srcdoc');
    heat = { page: '', sameOrigin: false, data: null, found: null, seq: heat.seq + 1, snapshotFor: '', snapshotError: '' };
    showLogin(message);
  }

  // ---- polling ----

  function start(first) {
    running = true;
    session++;
    $('login').hidden = true;
    $('app').hidden = false;
    $('signout').hidden = false;
    $('status').hidden = false;
    setStatus(true, 'connecting…');
    if (first) onSummary(first);
    loop('summary', 2000, pollSummary, !!first);
    loop('experiments', 5000, pollExperiments, false);
    loop('holdout', 5000, pollHoldout, false);
    initHeat();
    loop('heat', 5000, pollHeat, true);
  }

  // loop runs fn every period ms, one call at a time (the next is
  // scheduled when the previous has finished).
  function loop(name, period, fn, delayFirst) {
    var gen = session; // a poll of an earlier session ends with it
    var live = function () { return running && gen === session; };
    var tick = function () {
      if (!live()) return;
      Promise.resolve().then(fn).catch(function (e) { if (live()) onError(name, e); }).then(function () {
        if (live()) timers[name] = setTimeout(tick, period);
      });
    };
    timers[name] = setTimeout(tick, delayFirst ? period : 0);
  }

  function onError(name, e) {
    if (!running) return;
    if (e && e.status === 401) {
      signOut('The server refused the key (was it rotated?): sign in again.');
      return;
    }
    var msg = e && e.message ? e.message : String(e);
    if (name === 'summary') setStatus(false, 'offline: ' + msg + ' · retrying');
    var box = $({ experiments: 'p-experiments', holdout: 'p-holdout', heat: 'p-heat', summary: 'p-live' }[name]);
    var p = box.querySelector('.panel-error');
    if (!p) {
      p = el('p', { className: 'panel-error', role: 'alert' });
      box.appendChild(p);
    }
    p.textContent = msg;
  }

  function clearError(panel) {
    var p = $(panel).querySelector('.panel-error');
    if (p) p.remove();
  }

  // ---- live events, top items, offers ----

  function pollSummary() {
    return api('/v1/dashboard/summary?n=10').then(onSummary);
  }

  function onSummary(s) {
    var t = Date.parse(s.time);
    var ev = s.events || {};
    var last = samples[samples.length - 1];
    if (last && (ev.accepted < last.accepted || t <= last.t)) samples = []; // a restarted server
    samples.push({ t: t, received: ev.received, accepted: ev.accepted, rejected: ev.rejected, applied: ev.applied });
    if (samples.length > 151) samples.shift(); // five minutes at 2 s
    renderLive();
    renderTopItems(s.top_items || []);
    renderOffers(s.offers || [], s.offers_count || 0);
    renderModel(s.model);
    holdoutOn = !!s.holdout;
    clearError('p-live');
    setStatus(true, 'live · updated ' + fmtTime(t));
  }

  function rate(a, b, field) {
    if (!a || !b || !num(a[field]) || !num(b[field]) || b.t <= a.t) return null;
    return Math.max(0, (b[field] - a[field]) / ((b.t - a.t) / 1000));
  }

  function renderLive() {
    var n = samples.length, last = samples[n - 1], prev = samples[n - 2];
    var r = rate(prev, last, 'accepted');
    var big = $('live-rate');
    big.textContent = fmtRate(r);
    big.setAttribute('data-rate', num(r) ? String(r) : '');
    $('live-sub').textContent = prev
      ? 'accepted by the collector, over the last ' + ((last.t - prev.t) / 1000).toFixed(1) + ' s'
      : 'accepted by the collector (the rate shows from the second reading)';

    var kv = [
      ['accepted', fmtInt.format(last.accepted) + ' in total'],
      ['received', fmtRate(rate(prev, last, 'received')) + '/s · ' + fmtInt.format(last.received)],
      ['rejected', fmtRate(rate(prev, last, 'rejected')) + '/s · ' + fmtInt.format(last.rejected)],
      ['applied by the engine', num(last.applied) ? fmtRate(rate(prev, last, 'applied')) + '/s · ' + fmtInt.format(last.applied) : 'not in this process']
    ];
    var dl = $('live-kv');
    dl.replaceChildren();
    kv.forEach(function (p) { append(dl, [el('dt', { text: p[0] }), el('dd', { text: p[1] })]); });

    // Sparkline: accepted events/s over the last five minutes.
    var spark = $('live-spark');
    var pts = [];
    for (var i = 1; i < n; i++) pts.push({ t: samples[i].t, r: rate(samples[i - 1], samples[i], 'accepted') });
    spark.replaceChildren();
    if (pts.length < 1) return;
    var t1 = last.t, t0 = Math.max(t1 - 300000, pts[0].t); // up to five minutes, filled from the start
    var ymax = 1;
    pts.forEach(function (p) { ymax = Math.max(ymax, p.r); });
    ymax *= 1.15;
    var x = function (t) { return (300 * (t - t0) / (t1 - t0)).toFixed(1); };
    var y = function (r) { return (58 - 54 * r / ymax).toFixed(1); };
    var line = pts.map(function (p, i) { return (i ? 'L' : 'M') + x(p.t) + ' ' + y(p.r); }).join(' ');
    if (pts.length === 1) line = 'M0 ' + y(pts[0].r) + ' L300 ' + y(pts[0].r);
    var area = line + (pts.length === 1 ? ' L300 60 L0 60 Z' : ' L' + x(pts[pts.length - 1].t) + ' 60 L' + x(pts[0].t) + ' 60 Z');
    append(spark, [svg('path', { 'class': 'area', d: area }), svg('path', { 'class': 'line', d: line })]);
  }

  function meter(value, max, label) {
    var w = max > 0 && num(value) ? Math.max(1, Math.round(60 * value / max)) : 0;
    var bar = el('i');
    bar.style.width = w + 'px';
    return el('span', { className: 'meter' }, [el('span', { className: 'track' }, [bar]), label]);
  }

  function nameCell(title, id) {
    return el('td', null, [el('span', { className: 'title', text: title || id, title: title || id }), title ? el('span', { className: 'id', text: id }) : null]);
  }

  function renderTopItems(items) {
    if (!changed('items', items)) return;
    var max = 0;
    items.forEach(function (it) { max = Math.max(max, it.score); });
    var rows = items.map(function (it, i) {
      return el('tr', { 'data-item': it.item }, [
        el('td', { className: 'num', text: i + 1 }),
        nameCell(it.title, it.item),
        el('td', { text: it.category || '' }),
        el('td', { className: 'num' }, [meter(it.score, max, fmtScore(it.score))])
      ]);
    });
    $('top-items').tBodies[0].replaceChildren.apply($('top-items').tBodies[0], rows);
    setHidden($('top-items'), rows.length === 0);
    setHidden($('top-items-empty'), rows.length > 0);
  }

  function renderOffers(offers, count) {
    if (!changed('offers', [offers, count])) return;
    var max = 0;
    offers.forEach(function (o) { if (num(o.ctr)) max = Math.max(max, o.ctr); });
    var rows = offers.map(function (o) {
      return el('tr', { 'data-offer': o.id, className: o.active ? '' : 'inactive', title: o.active ? null : 'inactive' }, [
        nameCell(o.title, o.id),
        el('td', { text: o.slot }),
        el('td', { className: 'num', text: fmtInt.format(o.impressions) }),
        el('td', { className: 'num', text: fmtInt.format(o.clicks) }),
        el('td', { className: 'ctr' }, [meter(o.ctr, max, pct(o.ctr))]),
        el('td', { className: 'num', text: fmtInt.format(o.conversions) })
      ]);
    });
    if (count > offers.length) {
      rows.push(el('tr', null, [el('td', { colspan: 6, className: 'id', text: '… ' + (count - offers.length) + ' more offers with fewer impressions' })]));
    }
    var body = $('offers').tBodies[0];
    body.replaceChildren.apply(body, rows);
    setHidden($('offers'), offers.length === 0);
    setHidden($('offers-empty'), offers.length > 0);
  }

  // ---- model and retrains ----

  function fmtParams(p, b) {
    if (!p) return '–';
    var s = 'k=' + p.factors + ' λ=' + (+p.lambda).toPrecision(3) + ' α=' + (+p.alpha).toPrecision(3) +
      ' half-life=' + (p.half_life === '0s' ? 'none' : p.half_life) + ' it=' + p.iterations;
    if (p.item_lambda_exponent) s += ' ν=' + p.item_lambda_exponent;
    if (b) s += ' · ρ=' + b.prior + ' κ=' + b.kappa;
    if (b && b.neighbours) s += ' η=' + b.neighbours;
    return s;
  }

  function fmtT(t) { return num(t) ? (t >= 0 ? '+' : '') + t.toFixed(2) : '–'; }

  function decisionClass(label) {
    if (label === 'published') return 'published';
    if (label === 'failed') return 'failed';
    if (label === 'dry_run') return '';
    return 'refused';
  }

  function figuresCell(figs) {
    var max = 0, by = {};
    figs.forEach(function (f) { max = Math.max(max, f.ndcg10); by[f.model] = f; });
    var box = el('div', { className: 'figs' });
    ['retrained', 'live', 'popularity'].forEach(function (name) {
      var f = by[name];
      if (!f) return;
      var bar = el('i');
      bar.style.width = (max > 0 ? Math.max(1, Math.round(100 * f.ndcg10 / max)) : 0) + '%';
      append(box, [el('span', { className: 'm', text: name }), el('span', { className: 'track ' + name }, [bar]), el('span', { className: 'v', text: f.ndcg10.toFixed(4) })]);
    });
    return el('td', null, [box]);
  }

  function renderModel(m) {
    if (!changed('model', m || null)) return;
    setHidden($('p-model'), !m);
    if (!m) return;
    var kv = [
      ['generation', String(m.generation) + (m.version ? ' · loaded ' + fmtTime(m.version / 1e6, true) : ' · learnt from events only')],
      ['live', fmtParams(m.params, m.blend)],
      ['retrains', m.retrain_every ? 'every ' + m.retrain_every : 'not scheduled (kairos retrain)'],
      ['refused', m.refusals + ' of the kept retrains']
    ];
    if (m.error) kv.push(['error', m.error]);
    var dl = $('model-kv');
    dl.replaceChildren();
    kv.forEach(function (p) { append(dl, [el('dt', { text: p[0] }), el('dd', { text: p[1] })]); });
    var runs = m.retrains || [];
    var rows = runs.map(function (r) {
      var by = {};
      (r.figures || []).forEach(function (f) { by[f.model] = f; });
      var pick = fmtParams(r.params, r.blend);
      if (r.tuned || r.trials) {
        pick += ' · tuned: ' + (r.trials || 0) + ' trials in ' + Math.round(r.search_s) + ' s';
        if (r.kept_base) pick += ', configured parameters kept';
      }
      var c = r.blend_confirm;
      if (c && c.skipped) pick += ' · prior confirmed on validation (t ' + fmtT(c.t) + ')';
      else if (c) pick += c.kept ? ' · prior confirmed (t ' + fmtT(c.t) + ')' : ' · prior refused on the next events (t ' + fmtT(c.t) + '): popularity-heavy';
      var why = r.error || r.reason || '';
      return el('tr', { 'data-decision': r.label }, [
        el('td', { className: 'when', text: fmtTime(r.time, true) }),
        el('td', null, [el('span', { className: 'pill ' + decisionClass(r.label), text: r.label.split('_').join(' ') })]),
        el('td', null, [el('span', { className: 'pick', text: pick }), why ? el('span', { className: 'why', text: why, title: why }) : null]),
        figuresCell(r.figures || []),
        el('td', { className: 'num', text: by.retrained ? pct(by.retrained.recall50) + (by.popularity ? ' / ' + pct(by.popularity.recall50) : '') : '–', title: 'retrained / popularity' }),
        el('td', { className: 'num', text: fmtT(r.t_live) }),
        el('td', { className: 'num', text: fmtT(r.t_popularity) }),
        el('td', { className: 'num', text: by.retrained ? fmtInt.format(by.retrained.users) : '–' })
      ]);
    });
    var body = $('retrains').tBodies[0];
    body.replaceChildren.apply(body, rows);
    setHidden($('retrains'), rows.length === 0);
    setHidden($('retrains-empty'), rows.length > 0);
  }

  // ---- experiments ----

  function pollExperiments() {
    return api('/v1/experiments').then(function (list) {
      var xs = (list.experiments || []).slice().sort(function (a, b) {
        var d = (STATUS_ORDER[a.status] || 9) - (STATUS_ORDER[b.status] || 9);
        return d || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
      }).slice(0, 20);
      return Promise.all(xs.map(function (x) {
        return api('/v1/experiments/' + encodeURIComponent(x.id) + '/results').then(function (r) {
          return { x: x, r: r };
        }, function (e) {
          if (e.status === 401) throw e;
          return { x: x, err: e.message };
        });
      }));
    }).then(function (entries) {
      renderExperiments(entries);
      clearError('p-experiments');
    }, function (e) {
      if (e.status === 404) {
        $('experiments').replaceChildren();
        setHidden($('experiments-empty'), false);
        setText($('experiments-empty'), 'Experiments are not enabled on this server.');
        return;
      }
      throw e;
    });
  }

  // ---- the personalization holdout ----

  var holdoutSig = '';
  var holdoutOn; // from the summary: undefined until the first one

  function pollHoldout() {
    if (holdoutOn === undefined) return;
    if (!holdoutOn) {
      holdoutSig = '';
      $('holdout').replaceChildren();
      setHidden($('holdout-empty'), false);
      return;
    }
    return api('/v1/holdout/results').then(function (r) {
      clearError('p-holdout');
      setHidden($('holdout-empty'), true);
      var sig = JSON.stringify([r.share, r.arms, r.verdict]);
      if (sig === holdoutSig) return;
      holdoutSig = sig;
      $('holdout').replaceChildren.apply($('holdout'), holdoutParts(r));
    }, function (e) {
      if (e.status === 404) {
        holdoutSig = '';
        $('holdout').replaceChildren();
        setHidden($('holdout-empty'), false);
        return;
      }
      throw e;
    });
  }

  // holdoutParts shows the share held out, the verdicts and, per metric,
  // the arms as an experiment's variants (the holdout is the control).
  function holdoutParts(r) {
    var arms = r.arms || [];
    var units = arms.map(function (a) { return a.arm + ' ' + fmtInt.format(a.units); }).join(' · ');
    var rpv = arms.map(function (a) { return a.arm + ' ' + (num(a.revenue_per_visitor) ? a.revenue_per_visitor.toFixed(2) : '–'); }).join(' · ');
    var parts = [el('div', { className: 'xp-head' }, [
      el('h3', { text: 'Held out: ' + pct(r.share, 0) + ' of visitors' }),
      el('span', { className: 'pill ' + (r.on ? 'running' : 'stopped'), text: r.on ? 'on' : 'off' }),
      el('span', { className: 'xp-meta', text: 'visitors: ' + units + ' · revenue per visitor: ' + rpv })
    ])];
    if ((r.conversion || {}).srm_flag) parts.push(srmWarning({ report: r.conversion, counts: arms.map(function (a) {
      return { variant: a.arm, units: a.units, expected_share: a.arm === 'holdout' ? r.share : 1 - r.share };
    }) }));
    [['conversion', r.conversion], ['revenue', r.revenue]].forEach(function (m) {
      parts.push(el('p', { className: 'verdict', text: (m[1] || {}).verdict || '' }));
      parts.push(el('div', { className: 'xp-table', 'data-metric': m[0] }, [variantsTable({ report: m[1], metric: m[0] })]));
    });
    return parts;
  }

  function renderExperiments(entries) {
    var box = $('experiments');
    var seen = {};
    entries.forEach(function (en) { seen[en.x.id] = true; });
    Object.keys(cards).forEach(function (id) {
      if (!seen[id]) {
        cards[id].el.remove();
        delete cards[id];
      }
    });
    entries.forEach(function (en, i) {
      var id = en.x.id;
      var r = en.r;
      var sig = JSON.stringify(en.err ? [en.x, en.err] : [r.status, r.counts, r.report, r.verdict, r.history, r.experiment, r.guardrails]);
      var card = cards[id];
      if (!card) {
        card = cards[id] = { el: el('article', { className: 'experiment', 'data-id': id }), sig: '' };
      }
      if (card.sig !== sig) {
        card.sig = sig;
        var parts = en.err ? experimentError(en.x, en.err) : experimentParts(r);
        card.el.replaceChildren.apply(card.el, parts);
      }
      if (box.children[i] !== card.el) box.insertBefore(card.el, box.children[i] || null); // the order of the list
    });
    setText($('experiments-empty'), 'No experiments yet (POST /v1/experiments).');
    setHidden($('experiments-empty'), entries.length > 0);
  }

  function targetText(t) {
    if (!t) return '';
    return t.surface + (t.slot ? ' / ' + t.slot : '') + (t.rule ? ' / rule ' + t.rule : '');
  }

  function head(x, status) {
    return el('div', { className: 'xp-head' }, [
      el('h3', { text: x.name || x.id }),
      el('span', { className: 'pill ' + status, text: status }),
      el('span', { className: 'xp-meta', text: [x.id, targetText(x.target), 'metric ' + x.metric, x.mode || 'fixed', (x.variants || []).length + ' variants'].join(' · ') })
    ]);
  }

  function experimentError(x, message) {
    return [head(x, x.status || ''), el('p', { className: 'panel-error', text: 'Results unavailable: ' + message })];
  }

  function experimentParts(r) {
    var x = r.experiment, rep = r.report || {};
    var parts = [head(x, r.status)];
    if (rep.srm_flag) parts.push(srmWarning(r));
    parts.push(el('p', { className: 'verdict', text: r.verdict || rep.verdict || '' }));
    parts.push(el('div', { className: 'xp-body' }, [el('div', { className: 'xp-table' }, [variantsTable(r)]), liftChart(r)]));
    return parts;
  }

  function srmWarning(r) {
    var rep = r.report, counts = r.counts || [];
    var total = 0;
    counts.forEach(function (c) { total += c.units; });
    var got = counts.map(function (c) { return c.variant + ' ' + pct(total ? c.units / total : NaN); }).join(', ');
    var want = counts.map(function (c) { return c.variant + ' ' + pct(c.expected_share); }).join(', ');
    var p = num(rep.srm_p_value) ? rep.srm_p_value.toExponential(1) : '–';
    return el('div', { className: 'srm-warning', role: 'alert' }, [
      el('b', { text: 'Sample ratio mismatch' }),
      ' (χ² test, p = ' + p + '): the variants got ' + got + ' of the units where their weights expect ' + want +
      '. Assignment or exposure logging is broken somewhere: do not trust this comparison until the cause is found.'
    ]);
  }

  var OUTCOME = { ctr: 'clicks', add_to_cart: 'carts', conversion: 'conv.', revenue: 'conv.' }; // the units with the outcome (revenue: with a conversion)

  function variantsTable(r) {
    var rep = r.report || {}, vs = rep.variants || [];
    var revenue = r.metric === 'revenue';
    var level = num(rep.alpha) && rep.alpha > 0 ? pct(1 - rep.alpha, 0) : '95 %';
    var hi = 0;
    vs.forEach(function (v) { if (num(v.wilson_high)) hi = Math.max(hi, v.wilson_high); });
    var rows = vs.map(function (v, i) {
      var rateCell;
      if (revenue) {
        rateCell = el('td', { className: 'num', text: num(v.mean) ? v.mean.toFixed(2) + ' /unit' : '–' });
      } else {
        var bar = el('div', { className: 'interval', title: 'Wilson interval' });
        if (hi > 0 && num(v.wilson_low) && num(v.wilson_high)) {
          var band = el('i'), dot = el('b');
          band.style.left = (100 * v.wilson_low / hi) + '%';
          band.style.width = Math.max(0.5, 100 * (v.wilson_high - v.wilson_low) / hi) + '%';
          dot.style.left = 'calc(' + (100 * (num(v.rate) ? v.rate : 0) / hi) + '% - 1px)';
          append(bar, [band, dot]);
        }
        rateCell = el('td', { className: 'rate' }, [
          el('span', { className: 'num', text: pct(v.rate) + ' [' + bare(v.wilson_low) + ', ' + bare(v.wilson_high) + ']' }), bar
        ]);
      }
      var lift = i === 0 ? el('td', { className: 'id', text: 'control' }) : el('td', {
        className: 'num ' + (num(v.lift) ? (v.lift >= 0 ? 'lift-pos' : 'lift-neg') : ''),
        text: signedPct(v.lift) + ' [' + signedPct(v.lift_low).replace(' %', '') + ', ' + signedPct(v.lift_high).replace(' %', '') + ']'
      });
      return el('tr', { 'data-variant': v.name }, [
        el('td', { text: v.name }),
        el('td', { className: 'num', text: fmtInt.format(v.users) }),
        el('td', { className: 'num', text: fmtInt.format(v.conversions) }),
        rateCell,
        lift,
        el('td', { className: 'num', text: pct(v.chance_to_win) })
      ]);
    });
    return el('table', { className: 'rows variants' }, [
      el('thead', null, [el('tr', null, ['variant', 'units', OUTCOME[r.metric] || 'conv.', revenue ? 'mean' : 'rate [Wilson ' + level + ']', 'lift [' + level + ']', 'P(win)'].map(function (h, i) {
        return el('th', { className: i === 1 || i === 2 || i === 5 ? 'num' : '', text: h });
      }))]),
      el('tbody', null, rows)
    ]);
  }

  // liftChart draws each variant's lift over the control through time
  // (one point per look, then the current counts) with its always-valid
  // confidence sequence as a band and its fixed-horizon interval dashed.
  function liftChart(r) {
    var box = el('div', { className: 'chart' });
    var hist = r.history || [];
    var names = ((r.report || {}).variants || []).map(function (v) { return v.name; });
    if (hist.length === 0 || names.length < 2) {
      box.appendChild(el('p', { className: 'empty', text: 'No data yet: the chart starts with the first exposures.' }));
      return box;
    }
    var series = names.slice(1).map(function (name) {
      return {
        name: name,
        pts: hist.map(function (h) {
          var v = (h.variants || []).filter(function (x) { return x.name === name; })[0] || {};
          return { t: Date.parse(h.at), lift: v.lift, lo: v.seq_lift_low, hi: v.seq_lift_high, ciLo: v.lift_low, ciHi: v.lift_high };
        })
      };
    });
    // The y range holds the lifts and their fixed-horizon intervals (the
    // confidence sequence, much wider early on, is clipped to it), within
    // −100 % and +300 %.
    var t0 = Infinity, t1 = -Infinity, y0 = 0, y1 = 0;
    series.forEach(function (s) {
      s.pts.forEach(function (p) {
        t0 = Math.min(t0, p.t);
        t1 = Math.max(t1, p.t);
        [p.lift, p.ciLo, p.ciHi].forEach(function (v) {
          if (num(v)) { y0 = Math.min(y0, v); y1 = Math.max(y1, v); }
        });
      });
    });
    if (t1 <= t0) { t0 -= 60000; t1 += 60000; }
    y0 = Math.max(y0, -1);
    y1 = Math.min(y1, 3);
    var pad = (y1 - y0) * 0.08 || 0.05;
    y0 -= pad;
    y1 += pad;
    var W = 560, H = 190, L = 46, R = 10, T = 10, B = 24;
    var X = function (t) { return L + (W - L - R) * (t - t0) / (t1 - t0); };
    var Y = function (v) { return T + (H - T - B) * (y1 - Math.max(y0, Math.min(y1, v))) / (y1 - y0); };
    var f = function (v) { return v.toFixed(1); };
    var g = svg('svg', { 'class': 'lift-chart', viewBox: '0 0 ' + W + ' ' + H, role: 'img', 'aria-label': 'lift and its confidence sequence over time' });

    ticks(y0, y1, 4).forEach(function (v) {
      append(g, [svg('line', { 'class': 'grid-line', x1: L, x2: W - R, y1: f(Y(v)), y2: f(Y(v)) }),
        svg('text', { x: L - 6, y: f(Y(v) + 3), 'text-anchor': 'end' }, [signedPct(v).replace('.0 %', ' %')])]);
    });
    append(g, [svg('line', { 'class': 'zero', x1: L, x2: W - R, y1: f(Y(0)), y2: f(Y(0)) }),
      svg('line', { 'class': 'axis', x1: L, x2: L, y1: T, y2: H - B })]);
    var withDate = t1 - t0 > 86400000 || new Date(t0).toDateString() !== new Date().toDateString();
    append(g, [svg('text', { x: L, y: H - 6 }, [fmtTime(t0, withDate)]),
      svg('text', { x: W - R, y: H - 6, 'text-anchor': 'end' }, [fmtTime(t1, withDate)])]);

    series.forEach(function (s, i) {
      var color = COLORS[i % COLORS.length];
      segments(s.pts, function (p) { return num(p.lo) && num(p.hi); }).forEach(function (seg) {
        var up = seg.map(function (p, j) { return (j ? 'L' : 'M') + f(X(p.t)) + ' ' + f(Y(p.hi)); }).join(' ');
        var down = seg.slice().reverse().map(function (p) { return 'L' + f(X(p.t)) + ' ' + f(Y(p.lo)); }).join(' ');
        if (seg.length === 1) { // one look: a bar
          var x = X(seg[0].t);
          up = 'M' + f(x - 3) + ' ' + f(Y(seg[0].hi)) + ' L' + f(x + 3) + ' ' + f(Y(seg[0].hi));
          down = 'L' + f(x + 3) + ' ' + f(Y(seg[0].lo)) + ' L' + f(x - 3) + ' ' + f(Y(seg[0].lo));
        }
        var band = svg('path', { 'class': 'band seq-band', d: up + ' ' + down + ' Z', fill: color, 'fill-opacity': 0.15 });
        g.appendChild(band);
      });
      ['ciLo', 'ciHi'].forEach(function (k) {
        segments(s.pts, function (p) { return num(p[k]); }).forEach(function (seg) {
          if (seg.length < 2) return;
          g.appendChild(svg('path', { 'class': 'ci', stroke: color, d: seg.map(function (p, j) { return (j ? 'L' : 'M') + f(X(p.t)) + ' ' + f(Y(p[k])); }).join(' ') }));
        });
      });
      segments(s.pts, function (p) { return num(p.lift); }).forEach(function (seg) {
        var d = seg.map(function (p, j) { return (j ? 'L' : 'M') + f(X(p.t)) + ' ' + f(Y(p.lift)); }).join(' ');
        g.appendChild(svg('path', { 'class': 'lift-line', stroke: color, d: d, 'data-variant': s.name }));
      });
      s.pts.forEach(function (p) {
        if (num(p.lift)) {
          g.appendChild(svg('circle', { cx: f(X(p.t)), cy: f(Y(p.lift)), r: 2.5, fill: color }, [
            svg('title', null, [fmtTime(p.t, true) + ': lift ' + signedPct(p.lift) + ', confidence sequence [' + signedPct(p.lo) + ', ' + signedPct(p.hi) + ']'])
          ]));
        }
      });
    });
    box.appendChild(g);
    var legend = el('div', { className: 'legend' });
    series.forEach(function (s, i) {
      var item = el('span', { text: 'lift of ' + s.name + ' over ' + names[0] });
      item.style.setProperty('--sw', COLORS[i % COLORS.length]);
      legend.appendChild(item);
    });
    var seq = el('span', { text: 'confidence sequence (always valid)' });
    seq.style.setProperty('--sw', 'rgba(47, 111, 237, .18)');
    legend.appendChild(seq);
    legend.appendChild(el('span', { className: 'dashed', text: '- - fixed-horizon interval' }));
    box.appendChild(legend);
    return box;
  }

  // segments splits pts into runs of consecutive points that satisfy ok.
  function segments(pts, ok) {
    var out = [], cur = [];
    pts.forEach(function (p) {
      if (ok(p)) cur.push(p);
      else if (cur.length) { out.push(cur); cur = []; }
    });
    if (cur.length) out.push(cur);
    return out;
  }

  // ticks returns about n round values in [a, b].
  function ticks(a, b, n) {
    var span = b - a;
    if (!(span > 0)) return [a];
    var step = Math.pow(10, Math.floor(Math.log10(span / n)));
    var err = span / n / step;
    if (err >= 5) step *= 5;
    else if (err >= 2) step *= 2;
    var out = [];
    for (var v = Math.ceil(a / step) * step; v <= b + 1e-12; v += step) out.push(Math.abs(v) < 1e-12 ? 0 : v);
    return out;
  }

  // ---- attention heat ----

  function recentPages() {
    try { return JSON.parse(localStorage.getItem(PAGES) || '[]'); } catch (e) { return []; }
  }

  function rememberPage(url) {
    var list = recentPages().filter(function (p) { return p !== url; });
    list.unshift(url);
    try {
      localStorage.setItem(PAGES, JSON.stringify(list.slice(0, 10)));
      localStorage.setItem(PAGE, url);
    } catch (e) { /* storage full or disabled: not needed */ }
    fillDatalist();
  }

  function fillDatalist() {
    var pages = recentPages();
    var home = location.origin + '/';
    if (pages.indexOf(home) < 0) pages.push(home);
    $('heat-pages').replaceChildren.apply($('heat-pages'), pages.map(function (p) { return el('option', { value: p }); }));
  }

  function initHeat() {
    var input = $('heat-page');
    if (!input.value) input.value = localStorage.getItem(PAGE) || location.origin + '/';
    fillDatalist();
    showPage(input.value.trim()).catch(function (e) { onError('heat', e); });
  }

  function onHeatSubmit(ev) {
    ev.preventDefault();
    if (running) showPage($('heat-page').value.trim()).catch(function (e) { onError('heat', e); });
  }

  function showPage(raw) {
    var u;
    try { u = new URL(raw, location.href); } catch (e) { u = null; }
    if (!u || (u.protocol !== 'http:' && u.protocol !== 'https:')) {
      $('heat-sub').textContent = 'Not a page URL: ' + raw;
      return Promise.resolve();
    }
    heat.page = u.href;
    heat.sameOrigin = u.origin === location.origin;
    heat.data = null;
    heat.found = null;
    heat.snapshotFor = '';
    heat.snapshotError = '';
    heat.seq++;
    sigs.heat = null;
    $('heat-list').replaceChildren();
    $('heat-view').hidden = true;
    $('heat-frame').removeAttribute('srcdoc');
    rememberPage(u.href);
    return pollHeat();
  }

  function pollHeat() {
    if (!heat.page) return Promise.resolve();
    var page = heat.page;
    return api('/v1/pages/attention?n=50&page=' + encodeURIComponent(page)).then(function (h) {
      if (page !== heat.page) return;
      heat.data = h;
      // The snapshot is fetched once there is heat to draw on it.
      if (heat.sameOrigin && h.elements.length > 0 && heat.snapshotFor !== page) {
        heat.snapshotFor = page;
        loadSnapshot();
      }
      drawOverlay();
      renderHeatList();
      clearError('p-heat');
    });
  }

  // loadSnapshot loads a same-origin page into the sandboxed frame as a
  // static snapshot: its HTML without scripts (nothing runs: the page's
  // tracker sends no events for the dashboard's viewer), its stylesheets
  // and images, laid out at SNAPSHOT_WIDTH and scaled to the panel.
  function loadSnapshot() {
    var seq = ++heat.seq;
    var view = $('heat-view'), frame = $('heat-frame');
    frame.onload = null;
    view.hidden = false;
    fetch(heat.page, { credentials: 'omit', cache: 'no-store' }).then(function (r) {
      if (!r.ok) throw new Error('the page answered HTTP ' + r.status);
      return r.text();
    }).then(function (html) {
      if (seq !== heat.seq) return;
      frame.onload = function () {
        if (seq !== heat.seq) return;
        fitFrame();
        drawOverlay();
        renderHeatList();
        var doc = frame.contentDocument;
        // Images that finish later may move elements: draw again.
        if (doc) doc.addEventListener('load', function () { if (seq === heat.seq) { fitFrame(); drawOverlay(); } }, true);
      };
      frame.srcdoc = snapshotHTML(html, heat.page);
    }).catch(function (e) {
      if (seq !== heat.seq) return;
      view.hidden = true;
      heat.snapshotError = e.message;
      renderHeatList();
    });
  }

  // snapshotHTML returns the page's HTML made static: no scripts, no
  // event handler attributes, no frames, nothing from other origins (the
  // dashboard's Content-Security-Policy, which the snapshot inherits,
  // would refuse it), and a <base> for its relative URLs.
  function snapshotHTML(html, base) {
    var doc = new DOMParser().parseFromString(html, 'text/html');
    doc.querySelectorAll('script, noscript, iframe, frame, object, embed, base, meta[http-equiv], link:not([rel~="stylesheet"])').forEach(function (n) { n.remove(); });
    doc.querySelectorAll('*').forEach(function (n) {
      for (var i = n.attributes.length - 1; i >= 0; i--) {
        var a = n.attributes[i].name;
        if (/^on/i.test(a)) n.removeAttribute(a);
      }
      if (n.tagName === 'IMG' && n.getAttribute('loading') === 'lazy') n.setAttribute('loading', 'eager');
      ['href', 'src'].forEach(function (a) {
        if ((n.tagName === 'LINK' || n.tagName === 'IMG' || n.tagName === 'SOURCE') && n.hasAttribute(a) && !sameOrigin(n.getAttribute(a), base)) n.removeAttribute(a);
      });
      if (n.hasAttribute('srcset') && n.getAttribute('srcset').split(',').some(function (c) { return !sameOrigin(c.trim().split(/\s+/)[0], base); })) n.removeAttribute('srcset');
    });
    var b = doc.createElement('base');
    b.setAttribute('href', base);
    doc.head.insertBefore(b, doc.head.firstChild);
    return '<!doctype html>' + doc.documentElement.outerHTML;
  }

  function sameOrigin(ref, base) {
    try {
      var u = new URL(ref, base);
      return u.origin === location.origin || u.protocol === 'data:';
    } catch (e) {
      return false;
    }
  }

  function fitFrame() {
    var frame = $('heat-frame'), view = $('heat-view'), sizer = $('heat-sizer');
    var doc = frame.contentDocument;
    if (!doc || !doc.documentElement || view.hidden) return;
    frame.style.width = SNAPSHOT_WIDTH + 'px';
    if (!frame.style.height) frame.style.height = '800px';
    var h = Math.max(doc.documentElement.scrollHeight, doc.body ? doc.body.scrollHeight : 0, 300);
    h = Math.min(h, 8000);
    frame.style.height = h + 'px';
    var k = Math.min(1, Math.max(0.2, (view.clientWidth - 2) / SNAPSHOT_WIDTH));
    frame.style.transform = 'scale(' + k + ')';
    sizer.style.width = Math.floor(SNAPSHOT_WIDTH * k) + 'px';
    sizer.style.height = Math.ceil(h * k) + 'px';
  }

  // selectorsOf returns the CSS selectors of the page elements that the
  // tracker reports as element (see signals/tracker: data-kairos-element,
  // else "offer:<data-kairos-offer>", else "item:<data-kairos-item>").
  function selectorsOf(element) {
    var esc = function (s) { return '"' + CSS.escape(s) + '"'; };
    var out = ['[data-kairos-element=' + esc(element) + ']'];
    var m = /^(item|offer):(.+)$/.exec(element);
    if (m && m[1] === 'offer') out.push('[data-kairos-offer=' + esc(m[2]) + ']:not([data-kairos-element])');
    if (m && m[1] === 'item') out.push('[data-kairos-item=' + esc(m[2]) + ']:not([data-kairos-offer]):not([data-kairos-element])');
    return out.join(', ');
  }

  function heatColor(rel, alpha) {
    return 'hsla(' + Math.round(48 - 48 * rel) + ', 95%, ' + Math.round(52 - 10 * rel) + '%, ' + alpha + ')';
  }

  // drawOverlay draws, inside the snapshot, a box over every element of
  // the page's heat, labelled "6.7 % — #1".
  function drawOverlay() {
    var frame = $('heat-frame');
    var doc = heat.sameOrigin && !$('heat-view').hidden ? frame.contentDocument : null;
    var h = heat.data;
    if (!doc || !doc.body || !h || !frame.getAttribute('srcdoc')) return;
    var layer = doc.getElementById('kairos-heat-layer');
    if (!layer) {
      layer = doc.createElement('div');
      layer.id = 'kairos-heat-layer';
      var ls = layer.style;
      ls.position = 'absolute';
      ls.left = '0';
      ls.top = '0';
      ls.width = '0';
      ls.height = '0';
      ls.zIndex = '2147483647';
      ls.pointerEvents = 'none';
      doc.body.appendChild(layer);
    }
    var win = frame.contentWindow;
    var sx = win.scrollX || 0, sy = win.scrollY || 0;
    var max = 0;
    h.elements.forEach(function (e) { max = Math.max(max, e.share); });
    var found = {};
    var boxes = [];
    h.elements.forEach(function (e) {
      var nodes = [];
      try { nodes = doc.querySelectorAll(selectorsOf(e.element)); } catch (err) { nodes = []; }
      var n = 0;
      var rel = max > 0 ? e.share / max : 0;
      Array.prototype.forEach.call(nodes, function (node) {
        var r = node.getBoundingClientRect();
        if (r.width < 2 || r.height < 2) return;
        n++;
        var box = doc.createElement('div');
        box.className = 'kairos-heat-box';
        box.setAttribute('data-element', e.element);
        box.setAttribute('data-share', String(e.share));
        box.setAttribute('data-rank', String(e.rank));
        var s = box.style;
        s.position = 'absolute';
        s.left = (r.left + sx) + 'px';
        s.top = (r.top + sy) + 'px';
        s.width = r.width + 'px';
        s.height = r.height + 'px';
        s.boxSizing = 'border-box';
        s.background = heatColor(rel, (0.16 + 0.34 * rel).toFixed(2));
        s.border = '3px solid ' + heatColor(rel, 0.95);
        s.borderRadius = '6px';
        var label = doc.createElement('span');
        label.className = 'kairos-heat-label';
        label.textContent = pct(e.share) + ' — #' + e.rank;
        var t = label.style;
        t.position = 'absolute';
        t.left = '6px';
        t.top = '6px';
        t.padding = '3px 9px';
        t.borderRadius = '5px';
        t.background = 'rgba(17, 20, 28, .86)';
        t.color = '#fff';
        t.font = '700 22px/1.2 system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif';
        t.whiteSpace = 'nowrap';
        box.appendChild(label);
        boxes.push(box);
      });
      found[e.element] = n;
    });
    layer.replaceChildren.apply(layer, boxes);
    heat.found = found;
  }

  function renderHeatList() {
    var h = heat.data;
    var sub = $('heat-sub');
    if (!h) {
      sub.textContent = 'Loading the heat of ' + heat.page + '…';
      return;
    }
    var where = '';
    if (!heat.sameOrigin) where = 'This page is on another origin: the dashboard cannot look into it, so it shows the ranking only.';
    else if (heat.snapshotError) where = 'No snapshot of the page (' + heat.snapshotError + '): the ranking only.';
    else if (!$('heat-view').hidden) where = 'Boxes over the page snapshot (scripts off): share of the page\'s cursor dwell — rank.';
    setText(sub, (h.total_ms > 0
      ? 'Page ' + h.page + ': ' + (h.total_ms / 1000).toFixed(1) + ' s of cursor dwell on ' + h.count + (h.count === 1 ? ' element. ' : ' elements. ')
      : 'Page ' + h.page + ': no dwell recorded yet (or it expired). ') + where);
    var max = 0;
    h.elements.forEach(function (e) { max = Math.max(max, e.share); });
    if (!changed('heat', [h.elements, heat.found])) return;
    var items = h.elements.map(function (e) {
      var bar = el('i');
      bar.style.width = (max > 0 ? 100 * e.share / max : 0) + '%';
      var missing = heat.found && heat.found[e.element] === 0;
      return el('li', { 'data-element': e.element, className: missing ? 'missing' : '' }, [
        el('span', { className: 'rank', text: '#' + e.rank }),
        el('span', { className: 'name', text: e.element, title: e.element }),
        el('span', { className: 'pct', text: pct(e.share) + ' · ' + (e.dwell_ms / 1000).toFixed(1) + ' s' }),
        el('span', { className: 'hbar' }, [bar])
      ]);
    });
    $('heat-list').replaceChildren.apply($('heat-list'), items);
  }

  var resizeTimer = 0;
  function onResize() {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(function () { fitFrame(); drawOverlay(); }, 150);
  }

  // ---- boot ----

  $('login-form').addEventListener('submit', onLogin);
  $('signout').addEventListener('click', function () { signOut(''); });
  $('heat-form').addEventListener('submit', onHeatSubmit);
  window.addEventListener('resize', onResize);

  if (sessionStorage.getItem(KEY)) {
    api('/v1/dashboard/summary?n=10').then(function (s) { start(s); }, function (e) {
      if (e.status === 401 || e.status === 403) signOut(loginMessage(e));
      else {
        start(null);
        onError('summary', e);
      }
    });
  } else {
    showLogin('');
  }
})();
