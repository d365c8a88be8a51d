// Console behaviour shared by the pages: charts from the metrics query API (uPlot).
// A chart is declared in a page as <div class="chart" data-metric="name"
// data-labels='{"k":"v"}' data-stat="p99" data-title="…">; it refreshes every 10 s.
(function () {
  "use strict";
  async function drawChart(el) {
    const params = new URLSearchParams({
      name: el.dataset.metric,
      stat: el.dataset.stat || "sum",
      period: el.dataset.period || "10",
      since: el.dataset.since || "15m",
    });
    const labels = JSON.parse(el.dataset.labels || "{}");
    const pairs = Object.entries(labels).map(([key, value]) => `${key}=${value}`);
    if (pairs.length) params.set("labels", pairs.join(","));
    const res = await fetch(`/_stackyard/metrics/query?${params}`);
    if (!res.ok) { el.textContent = `no data (${res.status})`; return; }
    const body = await res.json();
    const points = body.datapoints || [];
    const xs = points.map((p) => p.time), ys = points.map((p) => p.value);
    const opts = {
      title: el.dataset.title || el.dataset.metric, width: el.clientWidth || 400, height: 160,
      series: [{}, { label: el.dataset.stat || "sum", stroke: "#2f6fed", width: 1.5 }],
      axes: [{}, { size: 60 }],
    };
    if (el._plot) { el._plot.setData([xs, ys]); return; }
    el.textContent = "";
    el._plot = new uPlot(opts, [xs, ys], el);
  }

  function drawAll() {
    document.querySelectorAll(".chart[data-metric]").forEach((el) => {
      drawChart(el).catch((err) => { el.textContent = String(err); });
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    drawAll();
    setInterval(drawAll, 10000);
  });
  window.stackyard = { drawAll };
})();
