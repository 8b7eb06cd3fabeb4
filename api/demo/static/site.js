/* Kairos demo shop: the page's own script (the tracker is /tracker.js). */
(function () {
  'use strict';
  var item = document.body.getAttribute('data-item') || '';
  var labels = {
    als: 'personalised: your factors × item factors',
    blend: 'personalised: learning from your first clicks',
    context: 'this page\'s neighbours + trending',
    trending: 'trending: we do not know you yet',
    catalog: 'new in'
  };

  function esc(s) {
    return String(s == null ? '' : s).replace(/[&<>"']/g, function (c) {
      return { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c];
    });
  }

  function card(c) {
    return '<div class="card" data-kairos-item="' + esc(c.id) + '"><a class="card-link" href="' + esc(c.link) + '">' +
      '<span class="card-img"><img src="' + esc(c.image) + '" alt="" width="400" height="400"></span>' +
      '<span class="card-body"><span class="card-cat">' + esc(c.category) + '</span><span class="card-title">' + esc(c.title) + '</span>' +
      (c.because ? '<span class="card-because">because you viewed ' + esc(c.because) + '</span>' : '') +
      '<span class="card-meta"><span class="price">' + esc(c.price) + '</span></span></span></a>' +
      '<button type="button" class="fav" data-item="' + esc(c.id) + '" aria-label="Save" aria-pressed="false">♡</button></div>';
  }

  // Recommended for you: the shop's back end asks Kairos with the secret
  // key; the browser only talks to the shop.
  var recsTimer = 0;
  function loadRecs() {
    var box = document.getElementById('recs');
    if (!box) return;
    // Context: this page's item, else the product viewed last.
    var ctx = item || localStorage.getItem('demo_last') || '';
    fetch('/shop/api/recommendations?n=6' + (ctx ? '&item=' + encodeURIComponent(ctx) : ''), { credentials: 'same-origin' })
      .then(function (r) { return r.json(); })
      .then(function (d) {
        var s = document.getElementById('recs-strategy');
        if (s) {
          s.textContent = d.strategy ? (labels[d.strategy] || d.strategy) : 'no visitor yet';
          s.className = 'strategy' + (d.strategy === 'als' || d.strategy === 'blend' ? ' live' : '');
        }
        if (d.items && d.items.length) box.innerHTML = d.items.map(card).join('');
      })
      .catch(function () {});
  }
  function refreshSoon() {
    clearTimeout(recsTimer);
    recsTimer = setTimeout(function () {
      if (window.kairos && window.kairos.flush) window.kairos.flush();
      setTimeout(loadRecs, 400);
    }, 900);
  }

  function toast(msg) {
    var t = document.getElementById('toast');
    if (!t) return;
    t.textContent = msg;
    t.className = 'show';
    clearTimeout(t._h);
    t._h = setTimeout(function () { t.className = ''; }, 3500);
  }

  function cartCount(n) {
    var k = 'demo_cart';
    var v = +(localStorage.getItem(k) || 0) + (n || 0);
    localStorage.setItem(k, v);
    var el = document.getElementById('cart-count');
    if (el) el.textContent = v;
  }

  function showVisitor() {
    var el = document.getElementById('visitor-id');
    var v = window.kairos && window.kairos.visitor && window.kairos.visitor();
    if (el) el.textContent = v ? v.slice(0, 8) + '…' : '…';
    if (!v) setTimeout(showVisitor, 200);
  }

  // Save buttons on cards: a like, without leaving the page (the tracker
  // has already counted the click on the card's item).
  document.addEventListener('click', function (e) {
    var b = e.target && e.target.closest && e.target.closest('.fav');
    if (!b) return;
    e.preventDefault();
    if (b.getAttribute('aria-pressed') === 'true') return;
    b.setAttribute('aria-pressed', 'true');
    b.textContent = '♥';
    if (window.kairos) window.kairos.track('like', { item: b.getAttribute('data-item') });
    toast('Saved — a like went to Kairos');
    refreshSoon();
  });

  document.addEventListener('DOMContentLoaded', function () {
    if (item) localStorage.setItem('demo_last', item);
    cartCount(0);
    setTimeout(loadRecs, 300);
    showVisitor();
    var g = document.getElementById('gallery');
    if (g) {
      var view = 0;
      g.addEventListener('click', function () {
        view = (view + 1) % 3;
        document.getElementById('gallery-img').src = '/shop/img/' + encodeURIComponent(item) + '.svg?v=' + view;
        var dots = g.querySelectorAll('.dots span');
        for (var i = 0; i < dots.length; i++) dots[i].className = i === view ? 'on' : '';
        refreshSoon();
      });
    }
    var add = document.getElementById('add-to-cart');
    if (add) add.addEventListener('click', function () {
      if (window.kairos) window.kairos.track('add_to_cart', { item: add.getAttribute('data-item') });
      cartCount(1);
      toast('Added to cart — an add_to_cart event went to Kairos');
      refreshSoon();
    });
    var like = document.getElementById('like');
    if (like) like.addEventListener('click', function () {
      if (like.getAttribute('aria-pressed') === 'true') return;
      if (window.kairos) window.kairos.track('like', { item: like.getAttribute('data-item') });
      like.setAttribute('aria-pressed', 'true');
      like.textContent = '♥ Liked';
      refreshSoon();
    });
    var reset = document.getElementById('reset-visitor');
    if (reset) reset.addEventListener('click', function (e) {
      e.preventDefault();
      if (window.kairos) { window.kairos.consent(false); window.kairos.consent(true); }
      localStorage.removeItem('demo_cart');
      location.reload();
    });
  });

  // Instant promotions: the tracker renders them into the hero slot; the
  // offer's link is made absolute by the server's configured origin, so
  // point it at this page's origin (localhost vs 127.0.0.1).
  document.addEventListener('kairos:promotion', function (e) {
    var d = e.detail || {};
    var a = d.element && d.element.querySelector('a');
    if (a) {
      try {
        var u = new URL(a.href);
        a.href = location.origin + u.pathname + u.search;
      } catch (x) {}
    }
    toast('Instant promotion: rule “' + ((d.promotion && d.promotion.rule) || '?') + '” fired for you');
  });
})();
