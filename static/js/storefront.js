/* The live storefront: stock left per listing (one socket per listing, public), buy buttons. */
(function () {
  "use strict";
  var L = window.Live;
  var data = L.readData();
  var text = data.text || {};
  var listings = {};
  (data.listings || []).forEach(function (l) { listings[l.id] = l; });

  function stockText(l) {
    if (l.status === "open" && l.available > 0) return L.fmt(text.left, { n: l.available });
    if (l.status === "open") return text.sold_out;
    return l.status === "scheduled" ? text.scheduled : text.closed;
  }

  function buyable(l) { return l.status === "open" && l.available > 0; }

  function render(l) {
    var card = document.querySelector('[data-listing="' + l.id + '"]');
    if (card) {
      card.setAttribute("data-version", String(l.version));
      card.setAttribute("data-status", l.status);
      card.setAttribute("data-available", String(l.available));
      card.classList.toggle("is-sold-out", l.status === "open" && l.available < 1);
      card.classList.toggle("is-closed", l.status !== "open");
      var stock = card.querySelector("[data-field=stock]");
      if (stock) stock.textContent = stockText(l);
      var bar = card.querySelector(".stock-bar span");
      if (bar) bar.style.width = (l.quota ? Math.min(100, Math.round((100 * l.sold) / l.quota)) : 100) + "%";
      var btn = card.querySelector("[data-buy]");
      if (btn) {
        if (buyable(l)) btn.removeAttribute("aria-disabled");
        else btn.setAttribute("aria-disabled", "true");
        var label = btn.querySelector("[data-field=buy-label]");
        if (label) label.textContent = buyable(l) ? text.buy : stockText(l);
      }
    }
    var pick = document.querySelector('[data-pick="' + l.id + '"]');
    if (pick) {
      var radio = pick.querySelector("input");
      radio.disabled = !buyable(l);
      pick.classList.toggle("is-disabled", !buyable(l));
      var ps = pick.querySelector("[data-field=pick-stock]");
      if (ps) ps.textContent = stockText(l);
      if (radio.checked && radio.disabled) pickFirstBuyable();
    }
  }

  function pickFirstBuyable() {
    var radios = document.querySelectorAll("input[name=listing]");
    for (var i = 0; i < radios.length; i++) {
      if (!radios[i].disabled) { radios[i].checked = true; clampQuantity(); return; }
    }
  }

  function apply(msg) {
    var l = msg.listing;
    var known = listings[l.id];
    // Snapshots replace; pushes apply only when newer (the version counts every change).
    if (known && msg.type !== "listing.snapshot" && msg.version <= known.version) return;
    if (known && msg.type === "listing.snapshot" && msg.version < known.version) return;
    var merged = known || {};
    for (var k in l) if (Object.prototype.hasOwnProperty.call(l, k)) merged[k] = l[k];
    merged.version = msg.version;
    listings[l.id] = merged;
    render(merged);
  }

  // One socket per listing on air; the page's state pill shows the worst of them.
  var states = {};
  function overall() {
    var worst = "live";
    for (var id in states) {
      if (states[id] === "offline") return "offline";
      if (states[id] !== "live") worst = "reconnecting";
    }
    return worst;
  }
  Object.keys(listings).forEach(function (id) {
    var l = listings[id];
    if (l.status === "closed") return;
    states[id] = "connecting";
    new L.Socket("/ws/listings/" + id + "/", {
      onMessage: function (msg) {
        if (msg.type === "listing.snapshot" || msg.type === "listing.updated") apply(msg);
      },
      onState: function (s) {
        states[id] = s;
        var o = overall();
        L.showState(o, { live: text.live, reconnecting: text.reconnecting }[o]);
      },
    }).connect();
  });

  // Buy buttons pick the item in the form below and take you there.
  var form = document.querySelector("[data-buy-form]");
  var qty = document.getElementById("id_quantity");
  function limitOf() {
    var r = document.querySelector("input[name=listing]:checked");
    return r ? Number(r.getAttribute("data-limit")) || 1 : 1;
  }
  function clampQuantity() {
    if (!qty) return;
    var max = limitOf();
    qty.max = String(max);
    var v = Math.max(1, Math.min(max, Number(qty.value) || 1));
    qty.value = String(v);
  }
  document.querySelectorAll("[data-buy]").forEach(function (a) {
    a.addEventListener("click", function (ev) {
      ev.preventDefault();
      if (a.getAttribute("aria-disabled") === "true") return;
      var radio = document.querySelector('input[name=listing][value="' + a.getAttribute("data-buy") + '"]');
      if (radio && !radio.disabled) radio.checked = true;
      clampQuantity();
      if (form) {
        form.scrollIntoView({ behavior: "smooth", block: "start" });
        var first = document.getElementById("id_name");
        // Focus the name field after the scroll, unless the buyer has already moved into a
        // field of the form (a fast buyer must not have their typing moved elsewhere).
        if (first && !first.value) setTimeout(function () {
          var active = document.activeElement;
          if (active && active !== document.body && form.contains(active)) return;
          first.focus({ preventScroll: true });
        }, 350);
      }
    });
  });
  document.querySelectorAll("input[name=listing]").forEach(function (r) { r.addEventListener("change", clampQuantity); });
  document.querySelectorAll("[data-step]").forEach(function (b) {
    b.addEventListener("click", function () {
      if (!qty) return;
      qty.value = String((Number(qty.value) || 1) + Number(b.getAttribute("data-step")));
      clampQuantity();
    });
  });
  if (qty) qty.addEventListener("change", clampQuantity);

  // Remember the buyer's details on this device (never sent anywhere but this form).
  var KEY = "lc-buyer";
  var FIELDS = ["name", "phone", "province", "city", "district", "detail"];
  try {
    var saved = JSON.parse(localStorage.getItem(KEY) || "{}");
    FIELDS.forEach(function (f) {
      var input = document.getElementById("id_" + f);
      if (input && !input.value && saved[f]) input.value = saved[f];
    });
  } catch (e) { /* private mode */ }
  if (form) {
    form.addEventListener("submit", function () {
      try {
        var keep = {};
        FIELDS.forEach(function (f) { var i = document.getElementById("id_" + f); if (i) keep[f] = i.value; });
        localStorage.setItem(KEY, JSON.stringify(keep));
      } catch (e) { /* private mode */ }
      var b = form.querySelector("button[type=submit]");
      if (b) setTimeout(function () { b.disabled = true; }, 0);
    });
  }
  if (!document.querySelector("input[name=listing]:checked")) pickFirstBuyable();
  clampQuantity();
  window.__storefront = { listings: listings };
})();
