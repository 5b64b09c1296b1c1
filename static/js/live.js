/* Live: a websocket that reconnects by itself, plus small formatting helpers.
 *
 * Each connection gets the current state first (a "*.snapshot" message), then pushes. Pushes
 * carry a version; pages ignore any push not newer than what they show. When the socket drops,
 * the page says so ("reconnecting…"), retries with exponential backoff and jitter, and the new
 * snapshot repairs anything missed while away. Close codes 4401/4403/4404 mean "you may not see
 * this": no retry.
 */
(function () {
  "use strict";

  var FATAL = { 4401: true, 4403: true, 4404: true };
  var DELAYS = [500, 1000, 2000, 4000, 8000, 15000];
  var PING_EVERY = 25000;
  var PONG_WITHIN = 10000;

  function LiveSocket(path, opts) {
    this.path = path;
    this.onMessage = opts.onMessage || function () {};
    this.onState = opts.onState || function () {};
    this.attempt = 0;
    this.ws = null;
    this.timer = null;
    this.pingTimer = null;
    this.pongTimer = null;
    this.stopped = false;
    var self = this;
    window.addEventListener("online", function () { self.retryNow(); });
    document.addEventListener("visibilitychange", function () {
      if (document.visibilityState === "visible") self.retryNow();
    });
  }

  LiveSocket.prototype.url = function () {
    var proto = location.protocol === "https:" ? "wss://" : "ws://";
    return proto + location.host + this.path;
  };

  LiveSocket.prototype.connect = function () {
    var self = this;
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.onState(this.attempt === 0 ? "connecting" : "reconnecting");
    var ws;
    try {
      ws = new WebSocket(this.url());
    } catch (e) {
      this.schedule();
      return;
    }
    this.ws = ws;
    ws.onmessage = function (ev) {
      var msg;
      try { msg = JSON.parse(ev.data); } catch (e) { return; }
      self.alive();
      if (msg.type === "pong") return;
      if (msg.type === "error") { self.lastError = msg; return; }
      if (/\.snapshot$/.test(msg.type)) {
        self.attempt = 0;
        self.onState("live");
      }
      self.onMessage(msg);
    };
    ws.onopen = function () { self.alive(); };
    ws.onclose = function (ev) {
      self.stopHeartbeat();
      if (self.ws !== ws) return;
      self.ws = null;
      if (FATAL[ev.code]) {
        self.stopped = true;
        self.onState("offline", self.lastError);
        return;
      }
      self.schedule();
    };
    ws.onerror = function () { /* onclose follows */ };
  };

  LiveSocket.prototype.schedule = function () {
    var self = this;
    if (this.stopped) return;
    var base = DELAYS[Math.min(this.attempt, DELAYS.length - 1)];
    var delay = base + Math.random() * base * 0.3;
    this.attempt += 1;
    this.onState("reconnecting");
    clearTimeout(this.timer);
    this.timer = setTimeout(function () { self.connect(); }, delay);
  };

  LiveSocket.prototype.retryNow = function () {
    if (this.stopped || this.ws) return;
    clearTimeout(this.timer);
    this.connect();
  };

  // A dead TCP connection (sleeping laptop, lost Wi-Fi) can look open for minutes: ping it.
  LiveSocket.prototype.alive = function () {
    var self = this;
    clearTimeout(this.pongTimer);
    clearTimeout(this.pingTimer);
    this.pingTimer = setTimeout(function () {
      if (!self.ws || self.ws.readyState !== 1) return;
      self.ws.send(JSON.stringify({ type: "ping" }));
      self.pongTimer = setTimeout(function () { if (self.ws) self.ws.close(); }, PONG_WITHIN);
    }, PING_EVERY);
  };

  LiveSocket.prototype.stopHeartbeat = function () {
    clearTimeout(this.pingTimer);
    clearTimeout(this.pongTimer);
  };

  // --- page helpers ------------------------------------------------------------------------------
  function readData() {
    var el = document.getElementById("page-data");
    return el ? JSON.parse(el.textContent) : {};
  }

  /* The "● live / reconnecting…" pill in the top bar and the banner under it. */
  function showState(state, text) {
    var pill = document.querySelector("[data-live-state]");
    var banner = document.querySelector(".reconnect-banner");
    if (pill) {
      pill.setAttribute("data-live-state", state);
      var label = pill.querySelector(".live-state-text");
      if (label && text) label.textContent = text;
    }
    if (banner) {
      var show = state === "reconnecting" || state === "offline";
      banner.hidden = !show;
      if (state === "offline" && text) banner.textContent = text;
      document.body.classList.toggle("is-reconnecting", show);
    }
  }

  function money(value) {
    var n = Number(value || 0);
    return "¥" + n.toLocaleString("zh-CN", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  }

  function fmt(template, values) {
    return String(template).replace(/%\((\w+)\)s/g, function (_, k) { return values[k]; });
  }

  var formatters = {};
  function time(iso, tz, withDate) {
    if (!iso) return "";
    var key = tz + (withDate ? "d" : "t");
    if (!formatters[key]) {
      var o = { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false, timeZone: tz };
      if (withDate) { o.month = "2-digit"; o.day = "2-digit"; }
      try { formatters[key] = new Intl.DateTimeFormat("zh-CN", o); }
      catch (e) { delete o.timeZone; formatters[key] = new Intl.DateTimeFormat("zh-CN", o); }
    }
    return formatters[key].format(new Date(iso)).replace(/\//g, "-");
  }

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  window.Live = {
    Socket: LiveSocket,
    readData: readData,
    showState: showState,
    money: money,
    fmt: fmt,
    time: time,
    el: el,
  };
})();
