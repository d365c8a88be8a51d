// The service page: restart buttons and the scale form (the services admin API:
// POST /_stackyard/services/{name}/instances/{id}/restart, PUT /_stackyard/services/{name}/replicas)
// and the request-rate and error-rate charts (gateway_requests_total labelled with the service,
// from the metrics query API; refreshed every 10 s like console.js's charts).
(function () {
  "use strict";
  const PERIOD = 10;

  function say(text, ok) {
    const out = document.getElementById("action-status");
    out.textContent = text;
    out.className = "action-status " + (ok ? "ok" : "bad");
  }

  function refreshInstances() {
    const el = document.getElementById("service-instances");
    if (el && window.htmx) window.htmx.trigger(el, "refresh"); // now, not at the next poll
  }

  async function errorText(res) {
    try {
      const body = await res.json();
      return (body.error && body.error.message) || `HTTP ${res.status}`;
    } catch (err) {
      return `HTTP ${res.status}`;
    }
  }

  function servicePath(name) {
    return `/_stackyard/services/${encodeURIComponent(name)}`;
  }

  async function restart(button) {
    const { service, instance } = button.dataset;
    const row = button.closest("tr");
    const before = row ? row.dataset.pid : "";
    button.disabled = true;
    say(`restarting ${instance}…`, true);
    const res = await fetch(
      `${servicePath(service)}/instances/${encodeURIComponent(instance)}/restart`,
      { method: "POST" },
    );
    if (!res.ok) { say(`restart of ${instance} failed: ${await errorText(res)}`, false); return; }
    const body = await res.json();
    say(`${instance} restarted: pid ${before || "–"} → ${body.pid || "–"} ` +
        `(restarts ${body.restarts})`, true);
    refreshInstances();
  }

  async function scale(form) {
    const service = form.dataset.service;
    const replicas = Number(form.elements.replicas.value);
    say(`scaling ${service} to ${replicas}…`, true);
    const res = await fetch(`${servicePath(service)}/replicas`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ replicas }),
    });
    if (!res.ok) { say(`scaling ${service} failed: ${await errorText(res)}`, false); return; }
    const body = await res.json();
    const names = body.instances.map((i) => i.instance_id).join(", ") || "none";
    say(`${service} scaled to ${body.replicas} replicas: ${names}`, true);
    refreshInstances();
  }

  async function series(labels) {
    const params = new URLSearchParams({
      name: "gateway_requests_total", stat: "sum", period: String(PERIOD), since: "15m",
      labels: Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(","),
    });
    const res = await fetch(`/_stackyard/metrics/query?${params}`);
    if (!res.ok) throw new Error(await errorText(res));
    return (await res.json()).datapoints || [];
  }

  async function errorStatuses(service) {
    const res = await fetch("/_stackyard/metrics?name=gateway_requests_total");
    if (!res.ok) return [];
    const found = new Set();
    for (const metric of await res.json()) {
      for (const labels of metric.series) {
        if (labels.service === service && String(labels.status).startsWith("5")) {
          found.add(labels.status);
        }
      }
    }
    return [...found];
  }

  async function drawRate(el) {
    const service = el.dataset.service;
    let groups;
    if (el.dataset.kind === "errors") {
      const statuses = await errorStatuses(service);
      groups = await Promise.all(statuses.map((status) => series({ service, status })));
    } else {
      groups = [await series({ service })];
    }
    const sums = new Map();
    for (const points of groups) {
      for (const p of points) sums.set(p.time, (sums.get(p.time) || 0) + p.value);
    }
    // every period of the window, so a quiet period shows as 0 rather than a gap
    const now = Math.floor(Date.now() / 1000 / PERIOD) * PERIOD;
    const xs = [], ys = [];
    for (let t = now - 15 * 60; t < now; t += PERIOD) {
      xs.push(t);
      ys.push((sums.get(t) || 0) / PERIOD);
    }
    el.dataset.total = String([...sums.values()].reduce((a, b) => a + b, 0));
    if (el._plot) { el._plot.setData([xs, ys]); return; }
    el.textContent = "";
    el._plot = new uPlot({
      title: el.dataset.title, width: el.clientWidth || 400, height: 160,
      series: [{}, {
        label: "per s", stroke: el.dataset.kind === "errors" ? "#d6334a" : "#2f6fed", width: 1.5,
      }],
      axes: [{}, { size: 60 }],
    }, [xs, ys], el);
  }

  function drawRates() {
    document.querySelectorAll(".svc-chart[data-service]").forEach((el) => {
      drawRate(el).catch((err) => { el.textContent = String(err); });
    });
  }

  document.addEventListener("click", (event) => {
    const button = event.target.closest("button.restart[data-instance]");
    if (!button) return;
    restart(button).catch((err) => say(String(err), false)).finally(() => {
      button.disabled = false;
    });
  });

  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (form.id !== "scale-form") return;
    event.preventDefault();
    scale(form).catch((err) => say(String(err), false));
  });

  document.addEventListener("DOMContentLoaded", () => {
    drawRates();
    setInterval(drawRates, 10000);
  });
  window.stackyardServices = { drawRates };
})();
