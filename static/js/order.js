/* The buyer's order status page: status, countdown, actions, timeline, delivery — kept live. */
(function () {
  "use strict";
  var L = window.Live;
  var data = L.readData();
  var text = data.text || {};
  var labels = data.labels || {};
  var hints = data.hints || {};
  var hero = document.querySelector("[data-order-hero]");
  if (!hero) return;

  var state = {
    version: 0,
    order: null,
    timeline: [],
    trace: null,
    offset: 0, // server clock minus ours, so the countdown is right on a wrong phone clock
  };

  function q(sel) { return document.querySelector(sel); }
  function setText(sel, value) { var n = q(sel); if (n) n.textContent = value; }
  function showIf(sel, on) { var n = q(sel); if (n) n.hidden = !on; }

  function applySnapshot(msg) {
    if (state.order && msg.version < state.version) return;
    state.version = msg.version;
    state.order = msg.order;
    state.timeline = (msg.order.timeline || []).slice();
    if (msg.order.trace) state.trace = msg.order.trace;
    if (msg.server_time) state.offset = new Date(msg.server_time).getTime() - Date.now();
    render();
    renderTrace();
  }

  function applyUpdate(msg) {
    if (!state.order || msg.version <= state.version) return; // stale or repeated
    var before = state.order.status;
    state.version = msg.version;
    for (var k in msg.order) if (Object.prototype.hasOwnProperty.call(msg.order, k)) state.order[k] = msg.order[k];
    if (msg.order.status !== before) {
      state.timeline.push({ status: msg.order.status, from: before, at: msg.order.updated_at || new Date().toISOString() });
      notify(msg.order.status);
    }
    render();
  }

  // The parcel's trace: each push carries the whole trace (newest first), whatever the order's version.
  function applyTrace(msg) {
    if (!msg.events || (state.trace && state.trace.events && msg.events.length < state.trace.events.length)) return;
    state.trace = { parcel: msg.parcel, events: msg.events };
    renderTrace();
  }
  function renderTrace() {
    var list = q("[data-list=trace]");
    if (!list || !state.trace) return;
    list.textContent = "";
    state.trace.events.forEach(function (line, i) {
      var li = L.el("li", "trace-line" + (i === 0 ? " is-latest" : ""));
      li.appendChild(L.el("span", "trace-text", line.text));
      li.appendChild(document.createTextNode(" "));
      var t = L.el("time", "trace-time", L.time(line.at, data.tz, true));
      t.setAttribute("datetime", line.at);
      li.appendChild(t);
      list.appendChild(li);
    });
    list.hidden = state.trace.events.length === 0;
    showIf("[data-section=shipping]", true);
  }

  // Browser notifications: only when the buyer allowed them, and only asked for on a click.
  var titles = text.notify_titles || {};
  var canNotify = "Notification" in window;
  function notify(status) {
    if (!canNotify || window.Notification.permission !== "granted" || !titles[status]) return;
    try {
      new window.Notification(titles[status], { body: text.notify_body || "", tag: "order-" + status, lang: document.documentElement.lang });
    } catch (e) {
      // Some mobile browsers only notify through a service worker: the page itself still shows it.
    }
  }
  function renderNotify() {
    var box = q("[data-section=notify]");
    if (!box || !canNotify) return;
    var permission = window.Notification.permission;
    box.hidden = false;
    var button = q("[data-action=notify]");
    if (button) button.hidden = permission !== "default";
    setText("[data-field=notify-state]", permission === "granted" ? text.notify_on || "" : permission === "denied" ? text.notify_blocked || "" : "");
  }
  var notifyButton = q("[data-action=notify]");
  if (notifyButton && canNotify) {
    notifyButton.addEventListener("click", function () {
      var asked = window.Notification.requestPermission(renderNotify); // older browsers: a callback
      if (asked && typeof asked.then === "function") asked.then(renderNotify);
    });
  }
  renderNotify();

  function render() {
    var o = state.order;
    var status = o.status;
    hero.setAttribute("data-status", status);
    hero.setAttribute("data-version", String(state.version));
    hero.className = hero.className.replace(/\bhero-[a-z_]+\b/g, "").trim() + " hero-" + status;
    document.body.className = document.body.className.replace(/\bst-[a-z_]+\b/g, "").trim() + " st-" + status;
    setText("[data-field=status-label]", labels[status] || status);
    setText("[data-field=hint]", hints[status] || "");
    document.title = (labels[status] || status) + " · " + document.title.split(" · ").slice(1).join(" · ");
    var pending = status === "pending_payment";
    document.querySelectorAll("[data-show-when=pending_payment]").forEach(function (n) { n.hidden = !pending; });
    var reasons = data.reasons || {};
    setText("[data-field=cancel-reason]", reasons[o.cancel_reason] || o.cancel_reason || "");
    showIf("[data-section=cancel-reason]", !!o.cancel_reason);
    var refund = Number(o.refund_due || 0);
    setText("[data-field=refund-due]", refund.toFixed(2));
    setText("[data-field=refunded]", Number(o.refunded || 0).toFixed(2));
    showIf("[data-section=refund]", refund > 0);
    setText("[data-field=carrier]", o.carrier || "—");
    setText("[data-field=tracking]", o.tracking_number || "—");
    showIf("[data-section=shipping]", !!(o.carrier || o.tracking_number));
    renderTimeline();
    tick();
  }

  function renderTimeline() {
    var list = q("[data-list=timeline]");
    if (!list) return;
    list.textContent = "";
    state.timeline.forEach(function (step, i) {
      var li = L.el("li", "step step-" + step.status + (i === state.timeline.length - 1 ? " is-current" : ""));
      li.appendChild(L.el("span", "step-dot"));
      li.appendChild(L.el("span", "step-label", labels[step.status] || step.status));
      var t = L.el("time", "step-time", L.time(step.at, data.tz, true));
      t.setAttribute("datetime", step.at);
      li.appendChild(t);
      list.appendChild(li);
    });
  }

  var clock = q("[data-field=countdown]");
  function tick() {
    if (!clock || !state.order) return;
    if (state.order.status !== "pending_payment" || !state.order.pay_by) return;
    var left = Math.floor((new Date(state.order.pay_by).getTime() - (Date.now() + state.offset)) / 1000);
    var wrap = clock.closest(".countdown");
    var actions = q(".hero-actions");
    if (left <= 0) {
      clock.textContent = "00:00";
      if (wrap) wrap.classList.add("is-over");
      setText("[data-field=hint]", text.expired || "");
      var pay = q("[data-action=pay]");
      if (pay) pay.disabled = true;
      if (actions) actions.classList.add("is-over");
      return;
    }
    var h = Math.floor(left / 3600), m = Math.floor((left % 3600) / 60), s = left % 60;
    var mm = (m < 10 ? "0" : "") + m, ss = (s < 10 ? "0" : "") + s;
    clock.textContent = (h ? h + ":" : "") + mm + ":" + ss;
    if (wrap) wrap.classList.toggle("is-urgent", left < 120);
  }
  setInterval(tick, 1000);

  // First paint comes from the page's own snapshot; the socket's snapshot then takes over.
  if (data.snapshot) applySnapshot(data.snapshot);

  // Double-submits: the first click wins.
  document.querySelectorAll("form").forEach(function (f) {
    f.addEventListener("submit", function () {
      var b = f.querySelector("button[type=submit]");
      if (b) setTimeout(function () { b.disabled = true; }, 0);
    });
  });

  var socket = new L.Socket(data.ws, {
    onMessage: function (msg) {
      if (msg.type === "order.snapshot") applySnapshot(msg);
      else if (msg.type === "order.updated") applyUpdate(msg);
      else if (msg.type === "order.trace") applyTrace(msg);
    },
    onState: function (s) {
      L.showState(s, { live: text.live, offline: text.offline, reconnecting: text.reconnecting }[s]);
    },
  });
  socket.connect();
  window.__orderPage = { state: state, socket: socket };
})();
