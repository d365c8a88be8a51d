// Console behaviour shared by the pages: charts from the metrics query API (uPlot).
// A chart is declared in a page as <div class="chart" data-metric="name"
// data-labels='{"k":"v"}' data-stat="p99" data-title="…" [data-since="15m"] [data-period="10"]>;
// it refreshes every 10 s. The time axis always spans the whole window; for sums and counts a
// period without data is a zero, for other statistics it is a gap.
(function () {
  "use strict";
  const UNITS = { s: 1, m: 60, h: 3600, d: 86400 };

  function windowSeconds(since) {
    const match = /^(\d+)([smhd])$/.exec(since);
    return match ? Number(match[1]) * UNITS[match[2]] : 900;
  }

  function series(points, stat, period, start, end) {
    const zero = stat === "sum" || stat === "count";
    const byTime = new Map(points.map((p) => [p.time, p.value]));
    const xs = [], ys = [];
    for (let t = Math.floor(start / period) * period; t <= end; t += period) {
      xs.push(t);
      ys.push(byTime.has(t) ? byTime.get(t) : zero ? 0 : null);
    }
    return [xs, ys];
  }

  // from zero (or below) to a little above the highest value; 0..1 while everything is zero
  function yRange(u, min, max) {
    return [Math.min(0, min ?? 0), (max ?? 0) > 0 ? max * 1.1 : 1];
  }

  async function drawChart(el) {
    const stat = el.dataset.stat || "sum";
    const period = Number(el.dataset.period || "10");
    const since = el.dataset.since || "15m";
    const params = new URLSearchParams({ name: el.dataset.metric, stat, period, since });
    const labels = JSON.parse(el.dataset.labels || "{}");
    const pairs = Object.entries(labels).map(([key, value]) => `${key}=${value}`);
    if (pairs.length) params.set("labels", pairs.join(","));
    const res = await fetch(`/_stackyard/metrics/query?${params}`);
    if (!res.ok) { el.textContent = `no data (${res.status})`; return; }
    const body = await res.json();
    const end = Date.now() / 1000;
    const data = series(body.datapoints || [], stat, period, end - windowSeconds(since), end);
    el.dataset.points = String((body.datapoints || []).length);
    if (el._plot) { el._plot.setData(data); return; }
    const opts = {
      title: el.dataset.title || el.dataset.metric, width: el.clientWidth || 400, height: 160,
      scales: { y: { range: yRange } },
      series: [{}, { label: stat, stroke: "#2f6fed", width: 1.5, spanGaps: false }],
      axes: [{}, { size: 60 }],
    };
    el.textContent = "";
    el._plot = new uPlot(opts, data, el);
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
