/* The post-show report's charts (Chart.js, vendored in static/vendor/chartjs): drawn from the
   figures the page carries (page-data), which are the rollup's. No network calls. */
(function () {
  "use strict";
  var node = document.getElementById("page-data");
  if (!node || typeof Chart === "undefined") return;
  var data = JSON.parse(node.textContent);
  var f = data.figures, t = data.text;
  var BRAND = "#ff2d55", INK = "#1f1f2b", INFO = "#3b82f6", GOOD = "#16a34a";
  var PALETTE = [BRAND, INFO, "#f5b400", "#ff6a00", INK, GOOD, "#a855f7", "#14b8a6", "#94a3b8", "#e11d48"];
  var CHANNEL = { storefront: BRAND, douyin: INK, kuaishou: "#ff6a00", taobao: "#f5b400", api: INFO };
  Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
  Chart.defaults.color = "#6b6b7b";
  Chart.defaults.animation = false;  /* a report, not a show: draw at once */

  function canvas(name) { return document.querySelector('[data-chart="' + name + '"]'); }
  function num(s) { return Number(s); }
  function channelName(c) { return (t.channel && t.channel[c]) || c; }

  var m = canvas("minutes");
  if (m) {
    new Chart(m, {
      type: "bar",
      data: {
        labels: f.by_minute.map(function (r) { return r.minute; }),
        datasets: [
          { label: t.orders, data: f.by_minute.map(function (r) { return r.orders; }), backgroundColor: "#ffc2cf" },
          { label: t.paid, data: f.by_minute.map(function (r) { return r.paid; }), backgroundColor: BRAND }
        ]
      },
      options: { maintainAspectRatio: false, scales: { x: { title: { display: true, text: t.minute } }, y: { beginAtZero: true } } }
    });
  }

  var c = canvas("curves");
  if (c) {
    new Chart(c, {
      type: "line",
      data: {
        datasets: f.listings.map(function (li, i) {
          return {
            label: li.name + " (" + li.sku + ")",
            data: li.curve.map(function (p) { return { x: p[0], y: p[1] }; }),
            borderColor: PALETTE[i % PALETTE.length], backgroundColor: PALETTE[i % PALETTE.length],
            stepped: true, pointRadius: 0, borderWidth: 2
          };
        })
      },
      options: {
        maintainAspectRatio: false, parsing: false,
        scales: { x: { type: "linear", beginAtZero: true, title: { display: true, text: t.seconds } },
                  y: { beginAtZero: true, title: { display: true, text: t.units } } }
      }
    });
  }

  var r = canvas("regions");
  if (r) {
    var top = f.regions.slice(0, 10);
    new Chart(r, {
      type: "bar",
      data: { labels: top.map(function (x) { return x.province === "?" ? t.no_address : x.province; }),
              datasets: [{ label: t.gmv, data: top.map(function (x) { return num(x.gmv); }), backgroundColor: INFO }] },
      options: { indexAxis: "y", maintainAspectRatio: false, plugins: { legend: { display: false } } }
    });
  }

  var ch = canvas("channels");
  if (ch) {
    new Chart(ch, {
      type: "doughnut",
      data: { labels: f.channels.map(function (x) { return channelName(x.channel); }),
               datasets: [{ data: f.channels.map(function (x) { return num(x.gmv); }),
                            backgroundColor: f.channels.map(function (x) { return CHANNEL[x.channel] || "#94a3b8"; }) }] },
      options: { maintainAspectRatio: false, plugins: { legend: { position: "right" } } }
    });
  }

  var b = canvas("buyers");
  if (b) {
    new Chart(b, {
      type: "doughnut",
      data: { labels: [t["new"], t.returning],
              datasets: [{ data: [f.buyers["new"], f.buyers.returning], backgroundColor: [BRAND, INK] }] },
      options: { maintainAspectRatio: false, plugins: { legend: { position: "right" } } }
    });
  }
  document.body.setAttribute("data-charts", "drawn");
})();
