/* The forecast page: the SKU search of the plan form, and the chart of each SKU's expected units
   with its 80 % interval (Chart.js, vendored), drawn from the figures the page carries. */
(function () {
  "use strict";
  var search = document.querySelector("[data-sku-search]");
  var picked = document.querySelector("[data-picked]");
  function count() {
    if (picked) picked.textContent = "(" + document.querySelectorAll('[data-sku-option] input:checked').length + ")";
  }
  if (search) {
    search.addEventListener("input", function () {
      var q = search.value.trim().toLowerCase();
      document.querySelectorAll("[data-sku-group]").forEach(function (group) {
        var shown = 0;
        group.querySelectorAll("[data-sku-option]").forEach(function (opt) {
          var hit = !q || opt.getAttribute("data-sku-option").toLowerCase().indexOf(q) !== -1;
          opt.hidden = !hit;
          if (hit) shown += 1;
        });
        group.hidden = shown === 0;
      });
    });
  }
  document.querySelectorAll("[data-sku-option] input").forEach(function (box) { box.addEventListener("change", count); });
  count();

  var node = document.getElementById("page-data");
  var canvas = document.querySelector('[data-chart="forecast"]');
  if (!node || !canvas || typeof Chart === "undefined") return;
  var data = JSON.parse(node.textContent);
  var rows = data.skus, t = data.text;
  Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
  Chart.defaults.color = "#6b6b7b";
  Chart.defaults.animation = false;
  new Chart(canvas, {
    data: {
      labels: rows.map(function (r) { return r.sku; }),
      datasets: [
        { type: "bar", label: t.interval, data: rows.map(function (r) { return [r.low, r.high]; }),
          backgroundColor: "rgba(255, 45, 85, 0.22)", borderColor: "#ff2d55", borderWidth: 1, barPercentage: 0.5 },
        { type: "line", label: t.expected, data: rows.map(function (r) { return r.expected; }), showLine: false,
          pointStyle: "line", pointRadius: 14, pointBorderWidth: 3, borderColor: "#1f1f2b", backgroundColor: "#1f1f2b" },
        { type: "line", label: t.last, data: rows.map(function (r) { return r.last_show; }), showLine: false,
          pointStyle: "circle", pointRadius: 4, borderColor: "#3b82f6", backgroundColor: "#3b82f6" }
      ]
    },
    options: { maintainAspectRatio: false, scales: { y: { beginAtZero: true } } }
  });
  document.body.setAttribute("data-charts", "drawn");
})();
