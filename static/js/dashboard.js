/* The merchant live dashboard: totals, orders per minute, stock per listing, latest orders.
 *
 * Streams and their versions (a push not newer than what is shown is ignored):
 *   session.stats    totals; version = the merchant ledger seq they include
 *   session.order    one order event; version = its ledger seq (per order: only newer events apply)
 *   session.listing  stock of one listing; version = that listing's version
 * The totals carry the show's orders per channel (storefront, API, each sales platform): the
 * channels table is drawn from them, with a row for every channel the show is sold on.
 * Bursts during a flash sale are drawn once per animation frame.
 */
(function () {
  "use strict";
  var L = window.Live;
  var data = L.readData();
  var text = data.text || {};
  var labels = data.labels || {};
  var SVG = "http://www.w3.org/2000/svg";
  var MAX_FEED = 40;

  var st = {
    base: 0, // the snapshot's version: order events up to it are already in the totals and chart
    stats: null,
    statsVersion: -1,
    listings: {}, // id -> listing line
    order: [], // listing ids in display order
    feed: [], // newest first: {id, status, total, listing, channel, created_at, seq, fresh}
    seqOf: {}, // order id -> last applied ledger seq
    counted: {}, // order ids already counted in the chart
    buckets: [], // [{t: ms, n}]
    platforms: [], // the channels the show is sold on (a row each, orders or not)
    offset: 0,
  };
  var dirty = { stats: false, listings: false, feed: false, chart: false };
  var frame = 0;
  function redraw(part) {
    dirty[part] = true;
    if (!frame) frame = requestAnimationFrame(flush);
  }
  function flush() {
    frame = 0;
    if (dirty.stats) renderStats();
    if (dirty.listings) renderListings();
    if (dirty.feed) renderFeed();
    if (dirty.chart) renderChart();
    dirty = { stats: false, listings: false, feed: false, chart: false };
  }

  // --- state --------------------------------------------------------------------------------------
  function applySnapshot(msg) {
    st.base = msg.version;
    st.offset = msg.server_time ? new Date(msg.server_time).getTime() - Date.now() : 0;
    st.stats = msg.stats;
    st.statsVersion = msg.stats.version;
    st.platforms = (msg.session && msg.session.platforms) || [];
    st.listings = {};
    st.order = [];
    msg.listings.forEach(function (l) { st.listings[l.id] = l; st.order.push(l.id); });
    st.feed = [];
    st.seqOf = {};
    msg.orders.forEach(function (o) { st.feed.push(o); st.seqOf[o.id] = o.seq; });
    st.counted = {};
    st.buckets = msg.per_minute.map(function (b) { return { t: new Date(b.t).getTime(), n: b.n }; });
    ["stats", "listings", "feed", "chart"].forEach(redraw);
  }

  function applyStats(msg) {
    if (msg.version < st.statsVersion) return; // equal versions carry equal totals
    st.stats = msg.stats;
    st.statsVersion = msg.version;
    redraw("stats");
  }

  function applyListing(msg) {
    var l = msg.listing;
    var known = st.listings[l.id];
    if (known && msg.version <= known.version) return;
    var merged = known || { name: "#" + l.id, sku: "" };
    for (var k in l) if (Object.prototype.hasOwnProperty.call(l, k)) merged[k] = l[k];
    merged.version = msg.version;
    if (!known) st.order.push(l.id);
    st.listings[l.id] = merged;
    redraw("listings");
  }

  function applyOrder(msg) {
    var o = msg.order;
    var seq = msg.version;
    if (seq <= st.base) return; // already in the snapshot
    if (st.seqOf[o.id] !== undefined && seq <= st.seqOf[o.id]) return; // stale or repeated
    st.seqOf[o.id] = seq;
    var row = null;
    for (var i = 0; i < st.feed.length; i++) if (st.feed[i].id === o.id) { row = st.feed[i]; break; }
    if (row) {
      row.status = o.status;
      row.seq = seq;
      row.changed = true;
    } else {
      st.feed.unshift({ id: o.id, status: o.status, total: o.total, listing: o.listing, channel: o.channel,
        created_at: o.created_at, seq: seq, fresh: true });
      if (st.feed.length > MAX_FEED) {
        var gone = st.feed.pop();
        delete st.seqOf[gone.id];
      }
    }
    if (o.order_version === 1 && !st.counted[o.id] && o.created_at) {
      st.counted[o.id] = true;
      count(new Date(o.created_at).getTime());
    }
    redraw("feed");
  }

  // --- orders per minute ------------------------------------------------------------------------------
  function minuteOf(ms) { return Math.floor(ms / 60000) * 60000; }
  function roll() {
    if (!st.buckets.length) return false;
    var now = minuteOf(Date.now() + st.offset);
    var last = st.buckets[st.buckets.length - 1].t;
    if (now <= last) return false;
    while (last < now) {
      last += 60000;
      st.buckets.push({ t: last, n: 0 });
      st.buckets.shift();
    }
    return true;
  }
  function count(ms) {
    roll();
    var m = minuteOf(ms);
    for (var i = st.buckets.length - 1; i >= 0; i--) {
      if (st.buckets[i].t === m) { st.buckets[i].n += 1; redraw("chart"); return; }
    }
  }
  setInterval(function () { if (roll()) redraw("chart"); }, 5000);

  function niceMax(v) {
    if (v <= 4) return 4;
    var p = Math.pow(10, Math.floor(Math.log10(v)));
    var steps = [1, 2, 4, 6, 8, 10];
    for (var i = 0; i < steps.length; i++) if (steps[i] * p >= v) return steps[i] * p;
    return 10 * p;
  }

  function svg(tag, attrs, textContent) {
    var n = document.createElementNS(SVG, tag);
    for (var k in attrs) n.setAttribute(k, attrs[k]);
    if (textContent !== undefined) n.textContent = textContent;
    return n;
  }

  function renderChart() {
    var host = document.querySelector("[data-chart]");
    if (!host) return;
    var W = 720, H = 220, padL = 36, padR = 8, padT = 12, padB = 26;
    var b = st.buckets;
    var max = niceMax(Math.max.apply(null, b.map(function (x) { return x.n; }).concat([0])));
    var root = svg("svg", { viewBox: "0 0 " + W + " " + H, class: "chart-svg", preserveAspectRatio: "xMidYMid meet" });
    var plotW = W - padL - padR, plotH = H - padT - padB;
    [0, 0.5, 1].forEach(function (f) {
      var y = padT + plotH - f * plotH;
      root.appendChild(svg("line", { x1: padL, x2: W - padR, y1: y, y2: y, class: "grid" }));
      root.appendChild(svg("text", { x: padL - 6, y: y + 4, class: "axis", "text-anchor": "end" }, String(Math.round(max * f))));
    });
    var slot = plotW / Math.max(b.length, 1);
    var barW = Math.max(2, slot * 0.68);
    b.forEach(function (x, i) {
      var h = max ? (x.n / max) * plotH : 0;
      var bx = padL + i * slot + (slot - barW) / 2;
      var current = i === b.length - 1;
      var rect = svg("rect", { x: bx, y: padT + plotH - h, width: barW, height: Math.max(h, x.n ? 2 : 0), rx: 3,
        class: current ? "bar bar-now" : "bar" });
      rect.appendChild(svg("title", {}, L.time(new Date(x.t).toISOString(), data.tz).slice(0, 5) + " · " + x.n));
      root.appendChild(rect);
      if (x.n && (current || h > 18)) {
        root.appendChild(svg("text", { x: bx + barW / 2, y: padT + plotH - h - 4, class: "bar-value", "text-anchor": "middle" }, String(x.n)));
      }
      var d = new Date(x.t);
      if ((d.getUTCMinutes() % 5 === 0 && i < b.length - 3) || current) {
        root.appendChild(svg("text", { x: bx + barW / 2, y: H - 8, class: "axis", "text-anchor": "middle" },
          L.time(d.toISOString(), data.tz).slice(0, 5)));
      }
    });
    host.textContent = "";
    host.appendChild(root);
    var last = b.length ? b[b.length - 1].n : 0;
    var rate = document.querySelector("[data-field=rate]");
    if (rate) rate.textContent = last + " " + (text.per_minute || "");
  }

  // --- rendering ---------------------------------------------------------------------------------------
  var kpiPrev = {};
  function renderStats() {
    var s = st.stats;
    if (!s) return;
    var values = {
      gmv: L.money(s.gmv), placed_value: L.money(s.placed_value),
      orders: String(s.orders), paid: String(s.paid), unpaid: String(s.unpaid), cancelled: String(s.cancelled),
    };
    for (var k in values) {
      var n = document.querySelector('[data-kpi="' + k + '"]');
      if (!n) continue;
      if (kpiPrev[k] !== undefined && kpiPrev[k] !== values[k]) {
        n.classList.remove("bump");
        void n.offsetWidth; // restart the animation
        n.classList.add("bump");
      }
      n.textContent = values[k];
      kpiPrev[k] = values[k];
    }
    renderChannels();
  }

  var CHANNEL_ORDER = ["storefront", "douyin", "kuaishou", "taobao", "api"];
  function renderChannels() {
    var body = document.querySelector("[data-channels] tbody");
    var s = st.stats;
    if (!body || !s) return;
    var rows = {};
    (st.platforms || []).forEach(function (c) { rows[c] = { channel: c, orders: 0, paid: 0, units: 0 }; });
    (s.channels || []).forEach(function (c) { rows[c.channel] = c; });
    var names = Object.keys(rows).sort(function (a, b) {
      var ia = CHANNEL_ORDER.indexOf(a), ib = CHANNEL_ORDER.indexOf(b);
      return (ia < 0 ? 99 : ia) - (ib < 0 ? 99 : ib) || (a < b ? -1 : a > b ? 1 : 0);
    });
    var total = 0;
    names.forEach(function (n) { total += rows[n].orders; });
    body.textContent = "";
    names.forEach(function (n) {
      var c = rows[n];
      var tr = L.el("tr");
      tr.setAttribute("data-channel-row", n);
      var name = L.el("td", "cell-strong");
      name.appendChild(L.el("span", "channel-dot channel-" + n));
      name.appendChild(document.createTextNode((text.channel || {})[n] || n));
      tr.appendChild(name);
      [["orders", c.orders], ["paid", c.paid], ["units", c.units]].forEach(function (kv) {
        var td = L.el("td", "num", String(kv[1]));
        td.setAttribute("data-channel-" + kv[0], String(kv[1]));
        tr.appendChild(td);
      });
      var pct = total ? Math.round((100 * c.orders) / total) : 0;
      var cell = L.el("td");
      var share = L.el("div", "channel-share");
      cell.appendChild(share);
      var bar = L.el("div", "meter meter-channel channel-" + n);
      var fill = L.el("span");
      fill.style.width = pct + "%";
      bar.appendChild(fill);
      share.appendChild(bar);
      share.appendChild(L.el("span", "muted small", pct + "%"));
      tr.appendChild(cell);
      body.appendChild(tr);
    });
  }

  function renderListings() {
    var body = document.querySelector("[data-listings] tbody");
    if (!body) return;
    body.textContent = "";
    st.order.forEach(function (id) {
      var l = st.listings[id];
      var tr = L.el("tr");
      tr.setAttribute("data-listing-row", String(l.id));
      var name = L.el("td");
      name.appendChild(L.el("div", "cell-strong", l.name));
      name.appendChild(L.el("div", "muted small", l.sku));
      tr.appendChild(name);
      tr.appendChild(L.el("td", "num", L.money(l.price)));
      var prog = L.el("td");
      var pct = l.quota ? Math.min(100, Math.round((100 * l.sold) / l.quota)) : 0;
      var bar = L.el("div", "meter" + (pct >= 100 ? " meter-full" : pct >= 80 ? " meter-hot" : ""));
      var fill = L.el("span");
      fill.style.width = pct + "%";
      bar.appendChild(fill);
      prog.appendChild(bar);
      prog.appendChild(L.el("div", "muted small", l.sold + " / " + l.quota));
      tr.appendChild(prog);
      var left = L.el("td", "num cell-strong", String(l.available));
      left.setAttribute("data-left", String(l.available));
      tr.appendChild(left);
      var stateText = l.status === "open" && l.available < 1 ? text.sold_out : (text.status || {})[l.status] || l.status;
      var pill = L.el("span", "pill pill-" + (l.status === "open" && l.available < 1 ? "soldout" : l.status), stateText);
      var stateCell = L.el("td");
      stateCell.appendChild(pill);
      tr.appendChild(stateCell);
      body.appendChild(tr);
    });
  }

  function renderFeed() {
    var list = document.querySelector("[data-feed]");
    if (!list) return;
    list.textContent = "";
    if (!st.feed.length) {
      list.appendChild(L.el("li", "feed-empty muted", text.no_orders));
      return;
    }
    st.feed.forEach(function (o) {
      var li = L.el("li", "feed-row" + (o.fresh ? " is-new" : "") + (o.changed ? " is-changed" : ""));
      li.setAttribute("data-order", o.id);
      li.setAttribute("data-status", o.status);
      var l = st.listings[o.listing];
      var main = L.el("div", "feed-main");
      main.appendChild(L.el("div", "cell-strong", l ? l.name : "—"));
      var meta = L.el("div", "muted small");
      meta.textContent = L.time(o.created_at, data.tz) + " · " + ((text.channel || {})[o.channel] || o.channel || "") + " · " + o.id.slice(0, 9);
      main.appendChild(meta);
      li.appendChild(main);
      var side = L.el("div", "feed-side");
      side.appendChild(L.el("div", "price", L.money(o.total)));
      side.appendChild(L.el("span", "pill pill-" + o.status, labels[o.status] || o.status));
      li.appendChild(side);
      list.appendChild(li);
      o.fresh = false;
      o.changed = false;
    });
  }

  // --- wiring ----------------------------------------------------------------------------------------
  if (data.snapshot) applySnapshot(data.snapshot);
  var socket = new L.Socket(data.ws, {
    onMessage: function (msg) {
      switch (msg.type) {
        case "session.snapshot": applySnapshot(msg); break;
        case "session.stats": applyStats(msg); break;
        case "session.listing": applyListing(msg); break;
        case "session.order": applyOrder(msg); break;
      }
    },
    onState: function (s) {
      L.showState(s, { live: text.live, offline: text.offline, reconnecting: text.reconnecting }[s]);
    },
  });
  socket.connect();
  window.__dashboard = { state: st, socket: socket };
})();
