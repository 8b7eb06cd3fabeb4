/*
 * Kairos browser tracker (readable source; tracker.min.js is generated from
 * this file by `go generate ./signals/tracker`, see the package doc).
 *
 *   <script src="https://kairos.example/tracker.js" data-key="pk_..." async></script>
 *
 * Collects page views, clicks, dwell (the gaze proxy: the mouse pointer's
 * rest, a finger's rest, or an element's visible time on touch screens),
 * scroll depth, exit intent, likes, impressions and identify events; sends them in batches
 * to ${endpoint}/v1/events; renders instant promotions pushed over
 * ${endpoint}/v1/promotions/stream. Honours Do-Not-Track, Global Privacy
 * Control and kairos.consent(false). Never throws into the page.
 */
(function (w, d) {
  'use strict';

  var existing = w.kairos;
  if (existing && existing.version) return; // already loaded: idempotent

  var VERSION = '1';
  var BATCH = 20; // events per request
  var FLUSH_MS = 700; // + at most IDLE_MS of idle wait: a batch leaves within 1 s
  var IDLE_MS = 250;
  var SESSION_GAP = 30 * 60 * 1000; // inactivity that starts a new session
  var SAMPLE_MS = 50; // pointer sampling period (20 Hz)
  var MIN_DWELL = 300; // shorter dwells are not reported
  var MAX_REST = 30000; // longest pointer rest counted as attention
  var MAX_DWELL = 3600000; // the schema's maximum dwell value
  var SCROLL_STOP = 150; // no scroll event for this long: the viewport is at rest
  var TOUCH_SLOP = 10; // a finger moving further (px) is scrolling, not resting
  var EXIT_EVERY = 10000; // at most one exit event per 10 s
  var REQUEST_TIMEOUT = 10000;
  var MAX_QUEUE = 500;
  var PREFIX = 'kairos_';
  var MARKED = '[data-kairos-item],[data-kairos-offer]';
  var YEAR = 365 * 24 * 3600;

  var nav = w.navigator || {};
  var now = function () { return Date.now(); };

  // safe wraps fn so that it never throws into the page.
  function safe(fn) {
    return function () {
      try {
        return fn.apply(this, arguments);
      } catch (e) {
        return undefined;
      }
    };
  }

  // ---- configuration from the script tag ----

  var script = d.currentScript;
  if (!script) {
    var tags = d.querySelectorAll('script[data-key]');
    for (var i = 0; i < tags.length; i++) {
      if (/tracker[\w.-]*\.js/.test(tags[i].src)) script = tags[i];
    }
  }
  function attr(name) {
    return (script && script.getAttribute('data-' + name)) || '';
  }
  var key = attr('key');
  var endpoint = attr('endpoint');
  if (!endpoint) {
    try {
      endpoint = new URL(script.src, location.href).origin;
    } catch (e) {
      endpoint = location.origin;
    }
  }
  endpoint = endpoint.replace(/\/+$/, '');
  var cookieDomain = attr('cookie-domain');
  var consentRequired = attr('consent') === 'required';
  var promotionsOn = attr('promotions') !== 'off';
  // data-flush-ms: how long a queued event waits for others to share its
  // request (default FLUSH_MS; 0 to 600000).
  var flushMs = parseInt(attr('flush-ms'), 10);
  if (flushMs >= 0 && flushMs <= 600000) FLUSH_MS = flushMs;

  // ---- storage: localStorage and first-party cookies, both optional ----

  function lsGet(k) {
    try {
      return w.localStorage.getItem(PREFIX + k);
    } catch (e) {
      return null;
    }
  }
  function lsSet(k, v) {
    try {
      w.localStorage.setItem(PREFIX + k, v);
    } catch (e) {}
  }
  function lsDel(k) {
    try {
      w.localStorage.removeItem(PREFIX + k);
    } catch (e) {}
  }
  function ckGet(k) {
    try {
      var m = d.cookie.match(new RegExp('(?:^|;\\s*)' + PREFIX + k + '=([^;]*)'));
      return m ? decodeURIComponent(m[1]) : null;
    } catch (e) {
      return null;
    }
  }
  function ckSet(k, v, maxAge) {
    try {
      d.cookie = PREFIX + k + '=' + encodeURIComponent(v) + '; path=/; max-age=' + maxAge +
        '; samesite=lax' + (cookieDomain ? '; domain=' + cookieDomain : '') +
        (location.protocol === 'https:' ? '; secure' : '');
    } catch (e) {}
  }
  function jsonGet(k) {
    try {
      return JSON.parse(lsGet(k) || 'null');
    } catch (e) {
      return null;
    }
  }

  // uuid returns a random RFC 4122 version 4 id.
  function uuid() {
    var c = w.crypto;
    try {
      if (c && c.randomUUID) return c.randomUUID();
    } catch (e) {}
    var b = new Uint8Array(16);
    try {
      c.getRandomValues(b);
    } catch (e) {
      for (var i = 0; i < 16; i++) b[i] = (Math.random() * 256) | 0;
    }
    b[6] = (b[6] & 15) | 64;
    b[8] = (b[8] & 63) | 128;
    var h = '';
    for (var j = 0; j < 16; j++) {
      h += (b[j] + 256).toString(16).slice(1);
      if (j === 3 || j === 5 || j === 7 || j === 9) h += '-';
    }
    return h;
  }

  function clip(s, n) {
    s = s == null ? '' : String(s);
    return s.length > (n || 2000) ? s.slice(0, n || 2000) : s;
  }

  // ---- privacy ----

  var dnt = nav.doNotTrack === '1' || nav.doNotTrack === 'yes' || w.doNotTrack === '1' ||
    nav.msDoNotTrack === '1' || nav.globalPrivacyControl === true;

  // consent: "1" granted, "0" refused, null: not asked (granted unless
  // data-consent="required").
  function consented() {
    var c = lsGet('consent') || ckGet('consent');
    return c === '1' || (c !== '0' && !consentRequired);
  }
  function allowed() {
    return !!key && !dnt && consented();
  }

  // forget removes the visitor's ids and everything queued.
  function forget() {
    ckSet('vid', '', 0);
    ['vid', 'sid', 'uid', 'uhash', 'q', 'seen'].forEach(lsDel);
    visitor = user = userHash = sess = null;
    queue = [];
    clearTimeout(flushTimer);
    clearTimeout(retryTimer);
    flushTimer = retryTimer = 0;
    closeStream();
  }

  // ---- identity and session ----

  var visitor = null; // anonymous visitor id (cookie + localStorage)
  var user = null; // known user id after identify
  var userHash = null; // its identity verification hash, from the site's back end
  var sess = null; // {id, last, utm}

  // ids loads (or creates) the visitor id and stores it in both places,
  // which also renews the cookie's lifetime once per page.
  function ids() {
    if (visitor) return;
    visitor = ckGet('vid') || lsGet('vid') || uuid();
    user = lsGet('uid');
    userHash = user && lsGet('uhash');
    ckSet('vid', visitor, YEAR);
    lsSet('vid', visitor);
  }

  function utm() {
    var p = {};
    var n = 0;
    try {
      new URLSearchParams(location.search).forEach(function (v, k) {
        if (k.indexOf('utm_') === 0 && n < 10 && !p[k]) {
          p[clip(k, 100)] = clip(v, 200);
          n++;
        }
      });
    } catch (e) {}
    return p;
  }

  // session returns the current session, starting a new one after
  // SESSION_GAP of inactivity (in any tab: the state is shared through
  // localStorage). The landing page's utm_* parameters stay with it.
  function session(t) {
    if (!sess || t - sess.last > SESSION_GAP) {
      var s = jsonGet('sid');
      sess = s && s.id && t - s.last <= SESSION_GAP ? s : { id: uuid(), last: t, utm: utm() };
    }
    sess.last = t;
    lsSet('sid', JSON.stringify(sess));
    return sess;
  }

  var deviceClass = (function () {
    var ua = nav.userAgent || '';
    if (/iPad|Tablet|PlayBook|Silk|Kindle/i.test(ua) || (/Android/i.test(ua) && !/Mobile/i.test(ua)) ||
      (/Macintosh/.test(ua) && nav.maxTouchPoints > 1)) return 'tablet';
    if ((nav.userAgentData && nav.userAgentData.mobile) || /Mobi|iPhone|iPod|Android|Phone/i.test(ua)) return 'mobile';
    return 'desktop';
  })();

  // ---- events and delivery ----

  // Event fields settable through data, with their length limits (ids
  // 200, texts 2000: the schema's limits are 200 and 2048 bytes).
  var FIELDS = { item: 200, offer: 200, user: 200, token: 2000, element: 2000, referrer: 2000, source: 20, value: 1 };
  var MAX_PROPS = 32;
  var queue = [];
  var flushTimer = 0;
  var retryTimer = 0;
  var inflight = false;
  var failures = 0;

  // emit builds an event of type with the fields of data (item, offer,
  // token, value, element, referrer, user; anything else goes to props as a
  // string) and queues it. It returns the event id, or "" when tracking is
  // off.
  function emit(type, data) {
    if (!allowed() || !type) return '';
    ids();
    var t = now();
    var s = session(t);
    var e = { id: uuid(), type: String(type), visitor: visitor, session: s.id, ts: t, page: clip(location.href) };
    if (user) e.user = user;
    var props = {};
    var n = 0;
    var prop = function (k, v) {
      if (v == null || n >= MAX_PROPS) return;
      k = clip(k, 100);
      if (!(k in props)) n++;
      props[k] = clip(typeof v === 'object' ? JSON.stringify(v) : v, 1000);
    };
    for (var u in s.utm) prop(u, s.utm[u]);
    prop('device', deviceClass);
    data = data || {};
    for (var k in data) {
      var v = data[k];
      if (v == null || v === '' || !Object.prototype.hasOwnProperty.call(data, k)) continue;
      if (k === 'props' && typeof v === 'object') {
        for (var pk in v) prop(pk, v[pk]);
      } else if (FIELDS[k]) {
        e[k] = k === 'value' ? Math.max(0, +v || 0) : clip(v, FIELDS[k]);
      } else {
        prop(k, v);
      }
    }
    // The user's hash proves the identified user only.
    if (user && e.user === user && userHash) e.user_hash = userHash;
    e.props = props;
    queue.push(e);
    if (queue.length > MAX_QUEUE) queue.splice(0, queue.length - MAX_QUEUE);
    schedule();
    return e.id;
  }

  function idle(fn) {
    if (w.requestIdleCallback) w.requestIdleCallback(fn, { timeout: IDLE_MS });
    else setTimeout(fn, 0);
  }

  function schedule() {
    if (inflight || retryTimer || !queue.length) return;
    if (queue.length >= BATCH) {
      clearTimeout(flushTimer);
      flushTimer = 0;
      setTimeout(safe(flush), 0);
    } else if (!flushTimer) {
      flushTimer = setTimeout(function () { idle(safe(flush)); }, FLUSH_MS);
    }
  }

  function body(events) {
    return JSON.stringify({ key: key, events: events });
  }

  // flush sends the next batch with fetch; a network error, a timeout, 408,
  // 429 or 5xx puts the batch back and retries it with exponential backoff
  // (the server de-duplicates by id, so a repeat is harmless). Other 4xx
  // answers are final: repeating the batch cannot succeed.
  function flush() {
    clearTimeout(flushTimer);
    flushTimer = 0;
    if (inflight || retryTimer || !queue.length || !allowed()) return;
    var batch = queue.splice(0, BATCH);
    var data = body(batch);
    inflight = true;
    var finished = false;
    var done = safe(function (ok, retryAfter) {
      if (finished) return;
      finished = true;
      inflight = false;
      if (ok) {
        failures = 0;
      } else if (allowed()) {
        queue = batch.concat(queue);
        failures++;
        var wait = Math.min(30000, 1000 * Math.pow(2, failures - 1)) * (0.5 + Math.random() / 2);
        var ra = parseFloat(retryAfter);
        if (ra > 0) wait = Math.max(wait, Math.min(ra, 60) * 1000);
        retryTimer = setTimeout(function () {
          retryTimer = 0;
          safe(flush)();
        }, wait);
        return;
      }
      schedule();
    });
    if (!w.fetch) {
      var x = new XMLHttpRequest();
      x.open('POST', endpoint + '/v1/events');
      x.setRequestHeader('Content-Type', 'text/plain;charset=UTF-8');
      x.timeout = REQUEST_TIMEOUT;
      x.onloadend = function () {
        done(x.status && x.status < 500 && x.status !== 429 && x.status !== 408, x.getResponseHeader('Retry-After'));
      };
      x.send(data);
      return;
    }
    var ctl = w.AbortController ? new AbortController() : null;
    var timer = setTimeout(function () {
      if (ctl) ctl.abort();
      done(false);
    }, REQUEST_TIMEOUT);
    // text/plain keeps the request "simple" (no CORS preflight), exactly as
    // sendBeacon sends it; the key rides in the body.
    w.fetch(endpoint + '/v1/events', {
      method: 'POST',
      body: data,
      headers: { 'Content-Type': 'text/plain;charset=UTF-8' },
      credentials: 'omit',
      keepalive: data.length < 60000,
      signal: ctl ? ctl.signal : undefined
    }).then(function (r) {
      clearTimeout(timer);
      done(r.status < 500 && r.status !== 429 && r.status !== 408, r.headers.get('Retry-After'));
    }, function () {
      clearTimeout(timer);
      done(false);
    });
  }

  // flushAll hands everything queued to sendBeacon (the page is going
  // away); what the browser refuses is kept in localStorage for the next
  // page of this site.
  function flushAll() {
    var t = perf();
    endDwell(t);
    endView(t);
    endTouch(t);
    clearTimeout(flushTimer);
    flushTimer = 0;
    clearTimeout(retryTimer);
    retryTimer = 0;
    if (!queue.length || !allowed()) return;
    while (queue.length) {
      var batch = queue.slice(0, BATCH);
      var sent = false;
      try {
        sent = nav.sendBeacon(endpoint + '/v1/events', body(batch));
      } catch (e) {}
      if (!sent) break;
      queue.splice(0, batch.length);
    }
    if (queue.length) {
      var keep = (jsonGet('q') || []).concat(queue).slice(-100);
      lsSet('q', JSON.stringify(keep));
      queue = [];
    }
  }

  // ---- page views, clicks, dwell, scroll, exit ----

  var depths = {};
  var lastHref = '';

  function pageItem() {
    var m = d.querySelector('meta[name="kairos:item"]');
    return attr('item') || (m && m.getAttribute('content')) || '';
  }

  function pageview(data) {
    depths = {};
    var ref = lastHref || d.referrer;
    lastHref = location.href;
    var f = { item: pageItem(), referrer: clip(ref) };
    for (var k in data) f[k] = data[k];
    return emit('view', f);
  }

  function marked(t) {
    return t && t.closest ? t.closest(MARKED) : null;
  }

  // describe returns the event fields of a marked element.
  function describe(el) {
    var item = el.getAttribute('data-kairos-item') || '';
    var offer = el.getAttribute('data-kairos-offer') || '';
    return {
      item: item,
      offer: offer,
      token: el.getAttribute('data-kairos-token') || '',
      element: el.getAttribute('data-kairos-element') || (offer ? 'offer:' + offer : 'item:' + item)
    };
  }

  function perf() {
    return w.performance && performance.now ? performance.now() : now();
  }

  // stamp returns an event's own time (same clock as performance.now()),
  // so that a busy main thread does not stretch a measured dwell.
  function stamp(e) {
    return e.timeStamp > 0 && e.timeStamp < 1e11 ? e.timeStamp : perf();
  }

  // attend records ms of dwell on el, measured by source, when it is long
  // enough to be attention.
  function attend(el, ms, source) {
    if (ms < MIN_DWELL) return;
    var f = describe(el);
    f.value = Math.min(Math.round(ms), MAX_DWELL);
    f.source = source;
    emit('dwell', f);
  }

  // Dwell: the element under the mouse pointer is sampled at most every
  // SAMPLE_MS (with a trailing sample, so the last move always counts);
  // the time between entering and leaving a marked element is its dwell,
  // each pointer rest counting at most MAX_REST.
  var cur = null;
  var curLast = 0;
  var acc = 0;
  var lastSample = -1e9;
  var pending = null;
  var sampleTimer = 0;

  var pendingAt = 0;
  function onMove(e) {
    if (e.pointerType && e.pointerType !== 'mouse') return;
    var t = stamp(e);
    if (t - lastSample < SAMPLE_MS) {
      pending = e.target;
      pendingAt = t;
      if (!sampleTimer) {
        sampleTimer = setTimeout(safe(function () {
          sampleTimer = 0;
          if (pending) sample(pending, pendingAt);
        }), SAMPLE_MS - (t - lastSample));
      }
      return;
    }
    sample(e.target, t);
  }

  function sample(target, t) {
    lastSample = t;
    pending = null;
    var el = marked(target);
    if (el && el === cur) {
      acc += Math.min(t - curLast, MAX_REST);
      curLast = t;
      return;
    }
    endDwell(t);
    if (el) {
      cur = el;
      curLast = t;
      acc = 0;
    }
  }

  function endDwell(t) {
    if (!cur) return;
    var el = cur;
    cur = null;
    acc += Math.min(Math.max(0, t - curLast), MAX_REST);
    attend(el, acc, 'mouse');
    acc = 0;
  }

  // ---- attention on touch screens ----
  // Viewport dwell (on devices with a touch screen, or data-attention=
  // "viewport"): the time a marked element is at least half visible while
  // the page is visible and the viewport at rest (SCROLL_STOP after the
  // last scroll event), each rest counting at most MAX_REST; reported when
  // the element leaves the viewport or the page is hidden or left. Touch
  // dwell: the time a finger rests on a marked element, until it lifts or
  // moves more than TOUCH_SLOP px.
  var mode = attr('attention');
  var viewOn = mode === 'viewport' || (mode !== 'mouse' && nav.maxTouchPoints > 0);
  var vio = null;
  var inView = []; // {el, acc, since}; since < 0 while not counting
  var still = true;
  var stillTimer = 0;

  function counting() {
    return still && d.visibilityState !== 'hidden';
  }
  function rest(v, t) {
    if (v.since >= 0) v.acc += Math.min(Math.max(0, t - v.since), MAX_REST);
    v.since = -1;
  }
  function pauseView(t) {
    inView.forEach(function (v) { rest(v, t); });
  }
  function resumeView(t) {
    if (counting()) inView.forEach(function (v) { if (v.since < 0) v.since = t; });
  }
  function endView(t) {
    inView.forEach(function (v) {
      rest(v, t);
      attend(v.el, v.acc, 'viewport');
      v.acc = 0;
    });
  }
  function onView(entries) {
    entries.forEach(function (en) {
      var i = -1;
      for (var j = 0; j < inView.length; j++) if (inView[j].el === en.target) i = j;
      if (en.isIntersecting && en.intersectionRatio >= 0.5) {
        if (i < 0) inView.push({ el: en.target, acc: 0, since: counting() ? en.time : -1 });
      } else if (i >= 0) {
        var v = inView.splice(i, 1)[0];
        rest(v, en.time);
        attend(v.el, v.acc, 'viewport');
      }
    });
  }
  function moving(e) {
    if (still) pauseView(stamp(e));
    still = false;
    clearTimeout(stillTimer);
    stillTimer = setTimeout(safe(function () {
      still = true;
      resumeView(perf());
    }), SCROLL_STOP);
  }

  var touch = null; // {el, t, x, y}: the finger resting on a marked element
  function onTouchStart(e) {
    var t = stamp(e);
    endTouch(t);
    var el = marked(e.target);
    var p = e.touches[0];
    if (el && p && e.touches.length === 1) touch = { el: el, t: t, x: p.clientX, y: p.clientY };
  }
  function onTouchMove(e) {
    var p = e.touches[0];
    if (touch && p && Math.abs(p.clientX - touch.x) + Math.abs(p.clientY - touch.y) > TOUCH_SLOP) endTouch(stamp(e));
  }
  function onTouchEnd(e) {
    endTouch(stamp(e));
  }
  function endTouch(t) {
    if (!touch) return;
    var x = touch;
    touch = null;
    attend(x.el, Math.min(Math.max(0, t - x.t), MAX_REST), 'touch');
  }

  var lastExit = -1e9;
  function onOut(e) {
    if (e.relatedTarget) return;
    var t = stamp(e);
    endDwell(t);
    pending = null;
    if (e.clientY <= 5 && t - lastExit > EXIT_EVERY) {
      lastExit = t;
      emit('exit', { item: pageItem() });
    }
  }

  function onClick(e) {
    var el = marked(e.target);
    if (el) emit('click', describe(el));
  }

  var scrollWaiting = false;
  function onScroll(e) {
    if (viewOn) moving(e);
    if (scrollWaiting) return;
    scrollWaiting = true;
    setTimeout(function () {
      (w.requestAnimationFrame || setTimeout)(safe(measureScroll));
    }, 100);
  }
  function measureScroll() {
    scrollWaiting = false;
    var de = d.documentElement;
    var h = Math.max(de.scrollHeight, d.body ? d.body.scrollHeight : 0);
    var vh = w.innerHeight || de.clientHeight;
    var bottom = (w.pageYOffset || de.scrollTop) + vh;
    var pct = bottom >= h - 2 ? 100 : (bottom / h) * 100;
    [25, 50, 75, 100].forEach(function (m) {
      if (pct >= m && !depths[m]) {
        depths[m] = 1;
        emit('scroll', { value: m, item: pageItem() });
      }
    });
  }

  // ---- impressions of Kairos offers rendered by the site ----
  // Elements with data-kairos-offer and data-kairos-token (from
  // GET /v1/offers) count one impression per token when half visible.

  var shown = {};
  var io = null;
  function observe(o, root, css) {
    if (!o) return;
    if (root.matches && root.matches(css)) o.observe(root);
    var els = root.querySelectorAll(css);
    for (var i = 0; i < els.length; i++) o.observe(els[i]);
  }
  function watch(root) {
    if (!root.querySelectorAll) return;
    observe(io, root, '[data-kairos-offer][data-kairos-token]');
    observe(vio, root, MARKED);
  }
  // watchOffers observes the offers (impressions) and, with viewport
  // dwell on, every marked element, also those added later.
  function watchOffers() {
    if (io || !w.IntersectionObserver) return;
    if (viewOn) vio = new IntersectionObserver(safe(onView), { threshold: 0.5 });
    io = new IntersectionObserver(safe(function (entries) {
      entries.forEach(function (en) {
        if (!en.isIntersecting) return;
        io.unobserve(en.target);
        var f = describe(en.target);
        if (!f.token || shown[f.token]) return;
        shown[f.token] = 1;
        emit('impression', f);
      });
    }), { threshold: 0.5 });
    watch(d);
    if (w.MutationObserver) {
      new MutationObserver(safe(function (records) {
        records.forEach(function (r) {
          for (var i = 0; i < r.addedNodes.length; i++) {
            if (r.addedNodes[i].nodeType === 1) watch(r.addedNodes[i]);
          }
        });
      })).observe(d.documentElement, { childList: true, subtree: true });
    }
  }

  // ---- promotions pushed over server-sent events ----

  var stream = null;
  var streamTimer = 0;
  var streamFailures = 0;
  var listeners = {};

  function closeStream() {
    clearTimeout(streamTimer);
    streamTimer = 0;
    if (stream) stream.close();
    stream = null;
  }

  function connect() {
    if (stream || streamTimer || !promotionsOn || !w.EventSource || !allowed() || d.visibilityState === 'hidden') return;
    ids();
    var s = new EventSource(endpoint + '/v1/promotions/stream?visitor=' + encodeURIComponent(visitor) +
      '&key=' + encodeURIComponent(key));
    stream = s;
    s.addEventListener('promotion', safe(function (m) {
      promotion(JSON.parse(m.data));
    }));
    s.onopen = function () { streamFailures = 0; };
    // EventSource reconnects by itself (sending Last-Event-ID) after a
    // dropped stream; after an HTTP error it gives up (CLOSED), and then
    // we reconnect with backoff.
    s.onerror = safe(function () {
      if (s.readyState !== 2 || stream !== s) return;
      stream = null;
      streamFailures++;
      streamTimer = setTimeout(safe(function () {
        streamTimer = 0;
        connect();
      }), Math.min(60000, 1000 * Math.pow(2, streamFailures)) * (0.5 + Math.random() / 2));
    });
  }

  function safeURL(s) {
    try {
      var u = new URL(s, location.href);
      return /^https?:$/.test(u.protocol) ? u.href : '';
    } catch (e) {
      return '';
    }
  }

  function el(tag, css, text) {
    var e = d.createElement(tag);
    if (css) e.style.cssText = css;
    if (text) e.textContent = text;
    return e;
  }

  function render(p) {
    var o = p.offer;
    var slotName = String(p.slot || 'hero');
    var box = el('div');
    box.className = 'kairos-promotion';
    box.setAttribute('data-kairos-promotion', p.id);
    box.setAttribute('data-kairos-offer', o.id);
    if (o.item) box.setAttribute('data-kairos-item', o.item);
    if (p.token) box.setAttribute('data-kairos-token', p.token);
    var link = safeURL(o.link);
    var inner = el(link ? 'a' : 'div', 'display:block;color:inherit;text-decoration:none');
    if (link) inner.href = link;
    var img = o.image && safeURL(o.image);
    if (img) {
      var im = el('img', 'display:block;max-width:100%;height:auto;margin-bottom:6px');
      im.src = img;
      im.alt = '';
      inner.appendChild(im);
    }
    if (o.title) inner.appendChild(el('strong', 'display:block', o.title));
    if (o.body) inner.appendChild(el('span', 'display:block;margin-top:2px', o.body));
    box.appendChild(inner);

    var slots = d.querySelectorAll('[data-kairos-slot]');
    var slot = null;
    for (var i = 0; i < slots.length; i++) {
      if (slots[i].getAttribute('data-kairos-slot') === slotName) slot = slots[i];
    }
    if (slot) {
      slot.textContent = '';
      slot.appendChild(box);
    } else {
      var ov = d.getElementById('kairos-overlay');
      if (ov) ov.parentNode.removeChild(ov);
      ov = el('div', 'position:fixed;right:16px;bottom:16px;z-index:2147483000;box-sizing:border-box;' +
        'max-width:320px;padding:12px 36px 12px 14px;background:#fff;color:#1a1a1a;border-radius:8px;' +
        'box-shadow:0 4px 24px rgba(0,0,0,.22);font:14px/1.4 system-ui,sans-serif;text-align:left');
      ov.id = 'kairos-overlay';
      ov.setAttribute('role', 'dialog');
      ov.setAttribute('aria-label', o.title || 'Promotion');
      var x = el('button', 'position:absolute;top:4px;right:6px;border:0;background:none;color:inherit;' +
        'font:20px/1 sans-serif;cursor:pointer;padding:4px', '\u00d7');
      x.type = 'button';
      x.setAttribute('aria-label', 'Close');
      x.className = 'kairos-close';
      x.onclick = safe(function () {
        if (cur && ov.contains(cur)) endDwell(perf());
        if (ov.parentNode) ov.parentNode.removeChild(ov);
      });
      ov.appendChild(x);
      ov.appendChild(box);
      (d.body || d.documentElement).appendChild(ov);
    }
    var p0 = w.performance;
    box.setAttribute('data-kairos-rendered-at', String(p0 && p0.timeOrigin ? p0.timeOrigin + p0.now() : now()));
    return box;
  }

  function seen() {
    var s = jsonGet('seen');
    return Array.isArray(s) ? s : [];
  }

  // promotion renders p once: a promotion id already rendered (on this
  // page, after a reconnect, or on an earlier page) is ignored.
  var rendered = {};
  function promotion(p) {
    if (!p || !p.id || !p.offer || !p.offer.id || !allowed()) return;
    var id = String(p.id);
    var s = seen();
    if (rendered[id] || s.indexOf(id) >= 0) return;
    rendered[id] = 1;
    s.push(id);
    lsSet('seen', JSON.stringify(s.slice(-100)));
    ready(function () {
      var box = render(p);
      if (p.token) shown[p.token] = 1;
      emit('impression', {
        offer: p.offer.id,
        item: p.offer.item,
        token: p.token,
        element: 'offer:' + p.offer.id,
        props: { promotion: id, slot: p.slot || 'hero', rule: p.rule }
      });
      fire('promotion', p, box);
    });
  }

  function fire(name, p, box) {
    (listeners[name] || []).forEach(function (fn) {
      try {
        fn(p, box);
      } catch (e) {}
    });
    try {
      d.dispatchEvent(new CustomEvent('kairos:' + name, { detail: { promotion: p, element: box } }));
    } catch (e) {}
  }

  function ready(fn) {
    if (d.readyState === 'loading') d.addEventListener('DOMContentLoaded', safe(fn));
    else safe(fn)();
  }

  // ---- lifecycle ----

  var started = false;
  function start() {
    if (started || !allowed()) return;
    started = true;
    ids();
    var saved = jsonGet('q');
    if (Array.isArray(saved) && saved.length) {
      lsDel('q');
      queue = saved.concat(queue);
    }
    ready(function () {
      pageview();
      watchOffers();
    });
    connect();
  }

  function listen(target, type, fn, capture) {
    target.addEventListener(type, safe(fn), { passive: true, capture: !!capture });
  }

  var api = {
    version: VERSION,
    // track(type, data) records an event: data.item, offer, token, value,
    // element become event fields, anything else a prop. Returns the id.
    track: function (type, data) {
      return emit(type, data);
    },
    // page(data) records a page view (for single-page apps after a route
    // change); scroll depth starts again.
    page: function (data) {
      return pageview(data);
    },
    // identify(user, userHash) tells who the visitor is (login, sign-up);
    // later events carry the user and, when given, userHash: the hex
    // HMAC-SHA256 of the user id that the site's back end computed with
    // the identity secret (identity verification). identify(null) forgets
    // both (logout).
    identify: function (id, hash) {
      if (id == null || id === '') {
        user = userHash = null;
        lsDel('uid');
        lsDel('uhash');
        return '';
      }
      if (!allowed()) return '';
      ids();
      user = clip(id, 200);
      userHash = hash ? clip(hash, 128) : null;
      lsSet('uid', user);
      if (userHash) lsSet('uhash', userHash);
      else lsDel('uhash');
      return emit('identify', { user: user });
    },
    // consent(false) stops all sending and forgets the ids; consent(true)
    // (re)starts tracking. The choice is remembered.
    consent: function (granted) {
      var g = !!granted;
      lsSet('consent', g ? '1' : '0');
      ckSet('consent', g ? '1' : '0', YEAR);
      if (!g) {
        forget();
        started = false;
      } else {
        start();
      }
    },
    // on(name, fn) calls fn(promotion, element) after each rendered
    // promotion (name "promotion").
    on: function (name, fn) {
      if (typeof fn === 'function') (listeners[name] = listeners[name] || []).push(fn);
    },
    off: function (name, fn) {
      listeners[name] = (listeners[name] || []).filter(function (f) { return f !== fn; });
    },
    // flush sends what is queued now.
    flush: function () {
      flush();
    },
    visitor: function () {
      return allowed() ? visitor : null;
    },
    session: function () {
      return allowed() && sess ? sess.id : null;
    },
    // push([name, args...]) calls a method, like the queue of calls made
    // before the script loaded, so pages can always use the queue form.
    push: function (c) {
      if (c && c[0] !== 'push' && typeof api[c[0]] === 'function') return api[c[0]].apply(api, [].slice.call(c, 1));
    }
  };
  for (var name in api) if (typeof api[name] === 'function') api[name] = safe(api[name]);
  w.kairos = api;

  safe(function () {
    if (dnt) forget();
    if (!key) return;
    listen(d, 'click', onClick, true);
    listen(d, w.PointerEvent ? 'pointermove' : 'mousemove', onMove);
    listen(d, 'mouseout', onOut);
    listen(w, 'scroll', onScroll);
    listen(d, 'touchstart', onTouchStart, true);
    listen(d, 'touchmove', onTouchMove, true);
    listen(d, 'touchend', onTouchEnd, true);
    listen(d, 'touchcancel', onTouchEnd, true);
    // The promotion stream is open only while the page is visible: over
    // HTTP/1.1 a browser allows 6 connections per host, shared by all tabs
    // and by the pages kept in the back/forward cache.
    listen(d, 'visibilitychange', function () {
      if (d.visibilityState === 'hidden') {
        flushAll();
        closeStream();
      } else {
        resumeView(perf());
        connect();
      }
    });
    listen(w, 'pagehide', function () {
      flushAll();
      closeStream();
    });
    listen(w, 'pageshow', function (e) {
      if (!e.persisted) return; // restored from the back/forward cache
      pageview();
      connect();
    });
    start();
    // Calls queued before the script loaded: window.kairos = [['identify', 'u1', 'hash'], ...].
    if (Array.isArray(existing)) existing.forEach(api.push);
  })();
})(window, document);
