// The trace page: fetch the trace once (GET /api/v2/trace/{id}, Zipkin v2 JSON), build the
// span tree, and draw it as a waterfall that renders only the rows in view (a virtual list),
// so traces of 10k+ spans stay responsive. Subtrees collapse and expand; clicking a row shows
// the span's details; "find" jumps to the next span whose service or name matches. The logs
// panel is the server's trace-logs fragment, asked for with the trace's correlation ids.
(function () {
  "use strict";
  const ROW = 24; // px, the height of a row (matches .wf-row in console.css)
  const OVERSCAN = 12; // rows drawn above and below the visible ones
  const INDENT = 14; // px per depth level
  const MAX_INDENT_LEVELS = 30;
  const RETRIES = 5; // asks again for a trace not found yet, once a second

  const escapeHtml = (text) =>
    String(text).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);

  function formatDuration(us) {
    if (us === undefined || us === null) return "–";
    if (us < 1000) return `${Math.round(us)} µs`;
    if (us < 1e6) return `${(us / 1000).toPrecision(3)} ms`;
    return `${(us / 1e6).toPrecision(3)} s`;
  }

  function formatTime(us) {
    return new Date(us / 1000).toISOString().replace("T", " ").replace("Z", "");
  }

  function isError(span) {
    return Boolean(span.tags && Object.prototype.hasOwnProperty.call(span.tags, "error"));
  }

  // --- the tree -------------------------------------------------------------------------------

  // spans → {roots, nodes}; a node is {span, children, depth, parent, index}. A shared SERVER
  // span (same id as its CLIENT span, B3 style) becomes a child of that CLIENT span.
  function buildTree(spans) {
    const nodes = spans.map((span, index) => ({ span, children: [], depth: 0, parent: null, index }));
    const byId = new Map();
    for (const node of nodes) {
      const existing = byId.get(node.span.id);
      if (!existing || (existing.span.shared && !node.span.shared)) byId.set(node.span.id, node);
    }
    const roots = [];
    for (const node of nodes) {
      let parent = null;
      const sameId = byId.get(node.span.id);
      if (sameId && sameId !== node && node.span.shared) parent = sameId;
      else if (node.span.parentId) parent = byId.get(node.span.parentId) || null;
      if (parent === node) parent = null;
      node.parent = parent;
      (parent ? parent.children : roots).push(node);
    }
    const byStart = (a, b) => (a.span.timestamp || 0) - (b.span.timestamp || 0);
    roots.sort(byStart);
    // depths, iteratively (a trace may be a chain thousands of spans deep); a cycle in bad
    // data is cut by the visited set
    const visited = new Set();
    const stack = roots.map((root) => root);
    let maxDepth = 0;
    while (stack.length) {
      const node = stack.pop();
      if (visited.has(node)) continue;
      visited.add(node);
      node.children.sort(byStart);
      for (const child of node.children) {
        child.depth = node.depth + 1;
        if (child.depth > maxDepth) maxDepth = child.depth;
        stack.push(child);
      }
    }
    // spans caught in a parent cycle never reached: show them as roots
    for (const node of nodes) if (!visited.has(node)) { node.parent = null; node.depth = 0; roots.push(node); }
    // spans and errors under each node (shown on a collapsed row), children before parents
    const order = [];
    const walk = [...roots];
    while (walk.length) { const node = walk.pop(); order.push(node); for (const child of node.children) walk.push(child); }
    for (let i = order.length - 1; i >= 0; i--) {
      const node = order[i];
      node.below = 0;
      node.errorsBelow = 0;
      for (const child of node.children) {
        node.below += 1 + child.below;
        node.errorsBelow += (isError(child.span) ? 1 : 0) + child.errorsBelow;
      }
    }
    return { roots, nodes, maxDepth };
  }

  // --- the page -------------------------------------------------------------------------------

  class Waterfall {
    constructor(root, spans) {
      this.root = root;
      this.scroll = root.querySelector("#wf-scroll");
      this.spacer = root.querySelector("#wf-spacer");
      this.detail = root.querySelector("#span-detail");
      this.tree = buildTree(spans);
      this.collapsed = new Set();
      this.selected = null;
      let start = Infinity;
      for (const s of spans) if (s.timestamp && s.timestamp < start) start = s.timestamp;
      this.start = Number.isFinite(start) ? start : 0;
      let end = this.start;
      for (const s of spans) end = Math.max(end, (s.timestamp || this.start) + (s.duration || 0));
      this.total = Math.max(1, end - this.start);
      this.layer = document.createElement("div");
      this.layer.className = "wf-rows";
      this.spacer.appendChild(this.layer);
      this.drawn = [-1, -1];
      this.flatten();
      this.scroll.addEventListener("scroll", () => this.schedule(), { passive: true });
      window.addEventListener("resize", () => this.schedule(true));
      this.scroll.addEventListener("click", (event) => this.onClick(event));
      this.scroll.addEventListener("keydown", (event) => this.onKey(event));
      this.drawAxis();
      this.render(true);
    }

    // the visible rows in order: a depth-first walk that skips collapsed subtrees
    flatten() {
      const out = [];
      const stack = [...this.tree.roots].reverse();
      while (stack.length) {
        const node = stack.pop();
        out.push(node);
        if (!this.collapsed.has(node)) for (let i = node.children.length - 1; i >= 0; i--) stack.push(node.children[i]);
      }
      this.visible = out;
      this.rowOf = new Map(out.map((node, i) => [node, i]));
      this.spacer.style.height = `${out.length * ROW}px`;
      this.root.querySelector("#wf-scroll").dataset.rows = String(out.length);
    }

    schedule(force) {
      if (this.pending) return;
      this.pending = true;
      requestAnimationFrame(() => { this.pending = false; this.render(force); });
    }

    render(force) {
      const first = Math.max(0, Math.floor(this.scroll.scrollTop / ROW) - OVERSCAN);
      const count = Math.ceil(this.scroll.clientHeight / ROW) + 2 * OVERSCAN;
      const last = Math.min(this.visible.length, first + count);
      if (!force && first === this.drawn[0] && last === this.drawn[1]) return;
      this.drawn = [first, last];
      const html = [];
      for (let i = first; i < last; i++) html.push(this.rowHtml(this.visible[i], i));
      this.layer.innerHTML = html.join("");
    }

    rowHtml(node, i) {
      const s = node.span;
      const service = (s.localEndpoint && s.localEndpoint.serviceName) || "unknown";
      const remote = s.remoteEndpoint && s.remoteEndpoint.serviceName;
      const offset = (s.timestamp || this.start) - this.start;
      const left = (100 * offset) / this.total;
      const width = Math.max((100 * (s.duration || 0)) / this.total, 0.15);
      const indent = Math.min(node.depth, MAX_INDENT_LEVELS) * INDENT;
      const toggle = node.children.length
        ? `<button type="button" class="wf-toggle" data-toggle="1" aria-label="${this.collapsed.has(node) ? "expand" : "collapse"}">${this.collapsed.has(node) ? "▸" : "▾"}</button>`
        : `<span class="wf-toggle-space"></span>`;
      let hidden = "";
      if (this.collapsed.has(node)) {
        const errors = node.errorsBelow ? `, <span class="wf-hidden-errors">${node.errorsBelow} error${node.errorsBelow === 1 ? "" : "s"}</span>` : "";
        hidden = ` <span class="muted">(+${node.below}${errors})</span>`;
      }
      const classes = ["wf-row"];
      if (isError(s)) classes.push("error");
      if (this.selected === node) classes.push("selected");
      const labelSide = left > 60 ? "left" : "right";
      return (
        `<div class="${classes.join(" ")}" style="top:${i * ROW}px" data-row="${i}" data-span-id="${escapeHtml(s.id)}" data-depth="${node.depth}">` +
        `<div class="wf-label" style="padding-left:${indent}px" title="${escapeHtml(service)} ${escapeHtml(s.name || "")}">${toggle}` +
        `<span class="wf-service">${escapeHtml(service)}</span>${remote ? ` <span class="muted">→ ${escapeHtml(remote)}</span>` : ""} ` +
        `<span class="wf-name">${escapeHtml(s.name || "(unnamed)")}</span>${hidden}</div>` +
        `<div class="wf-timeline"><span class="wf-bar" style="left:${left}%;width:${width}%"></span>` +
        `<span class="wf-duration ${labelSide}" style="${labelSide === "right" ? `left:${Math.min(left + width, 100)}%` : `right:${100 - left}%`}">${formatDuration(s.duration)}</span></div>` +
        `</div>`
      );
    }

    drawAxis() {
      const axis = this.root.querySelector("#wf-axis");
      const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => {
        const cls = f === 1 ? "end" : f === 0 ? "start" : "";
        return `<span class="${cls}" style="left:${f * 100}%">${formatDuration(f * this.total)}</span>`;
      });
      axis.innerHTML = ticks.join("");
    }

    nodeAt(element) {
      const row = element.closest(".wf-row");
      return row ? this.visible[Number(row.dataset.row)] : null;
    }

    onClick(event) {
      const node = this.nodeAt(event.target);
      if (!node) return;
      if (event.target.closest("[data-toggle]")) this.toggle(node);
      else this.select(node);
    }

    onKey(event) {
      if (!this.selected) return;
      const i = this.rowOf.get(this.selected);
      if (event.key === "ArrowDown" && i + 1 < this.visible.length) this.select(this.visible[i + 1], true);
      else if (event.key === "ArrowUp" && i > 0) this.select(this.visible[i - 1], true);
      else if ((event.key === "ArrowLeft" || event.key === "ArrowRight") && this.selected.children.length) {
        const collapse = event.key === "ArrowLeft";
        if (collapse !== this.collapsed.has(this.selected)) this.toggle(this.selected);
      } else return;
      event.preventDefault();
    }

    toggle(node) {
      if (this.collapsed.has(node)) this.collapsed.delete(node);
      else this.collapsed.add(node);
      this.flatten();
      this.render(true);
    }

    setAll(collapse) {
      this.collapsed.clear();
      if (collapse) for (const node of this.tree.nodes) if (node.children.length && node.parent) this.collapsed.add(node);
      this.flatten();
      this.render(true);
    }

    // show a node: expand its ancestors, scroll its row into view, select it
    reveal(node) {
      let changed = false;
      for (let p = node.parent; p; p = p.parent) if (this.collapsed.delete(p)) changed = true;
      if (changed) this.flatten();
      const i = this.rowOf.get(node);
      const top = i * ROW;
      if (top < this.scroll.scrollTop || top + ROW > this.scroll.scrollTop + this.scroll.clientHeight) {
        this.scroll.scrollTop = Math.max(0, top - this.scroll.clientHeight / 3);
      }
      this.select(node, true);
    }

    select(node, keepScroll) {
      this.selected = node;
      if (keepScroll) {
        const top = this.rowOf.get(node) * ROW;
        if (top < this.scroll.scrollTop) this.scroll.scrollTop = top;
        else if (top + ROW > this.scroll.scrollTop + this.scroll.clientHeight) this.scroll.scrollTop = top + ROW - this.scroll.clientHeight;
      }
      this.render(true);
      this.showDetail(node);
    }

    find(text, from) {
      const needle = text.trim().toLowerCase();
      if (!needle) return null;
      // depth-first order, so "next" walks down the waterfall
      const order = this.order || (this.order = this.depthFirst());
      if (!this.orderIndex) this.orderIndex = new Map(order.map((node, i) => [node, i]));
      const startAt = from ? this.orderIndex.get(from) + 1 : 0;
      for (let k = 0; k < order.length; k++) {
        const node = order[(startAt + k) % order.length];
        const s = node.span;
        const service = (s.localEndpoint && s.localEndpoint.serviceName) || "";
        const remote = (s.remoteEndpoint && s.remoteEndpoint.serviceName) || "";
        if (`${service} ${remote} ${s.name || ""} ${s.id}`.toLowerCase().includes(needle)) return node;
      }
      return null;
    }

    depthFirst() {
      const out = [];
      const stack = [...this.tree.roots].reverse();
      while (stack.length) {
        const node = stack.pop();
        out.push(node);
        for (let i = node.children.length - 1; i >= 0; i--) stack.push(node.children[i]);
      }
      return out;
    }

    showDetail(node) {
      const s = node.span;
      const rows = [
        ["service", (s.localEndpoint && s.localEndpoint.serviceName) || "unknown"],
        ["name", s.name || "(unnamed)"],
        ["kind", s.kind || "–"],
        ["span id", s.id],
        ["parent id", s.parentId || "–"],
        ["trace id", s.traceId],
        ["start", `${formatTime(s.timestamp || this.start)} UTC (+${formatDuration((s.timestamp || this.start) - this.start)})`],
        ["duration", formatDuration(s.duration)],
        ["children", String(node.children.length)],
      ];
      if (s.localEndpoint) rows.push(["local endpoint", endpointText(s.localEndpoint)]);
      if (s.remoteEndpoint) rows.push(["remote endpoint", endpointText(s.remoteEndpoint)]);
      if (s.shared) rows.push(["shared", "yes"]);
      const tags = Object.entries(s.tags || {});
      const notes = s.annotations || [];
      const error = isError(s) ? `<p class="span-error" role="alert">error: ${escapeHtml(s.tags.error || "(no message)")}</p>` : "";
      this.detail.innerHTML =
        `<h2>Span <span class="wf-name">${escapeHtml(s.name || "")}</span></h2>${error}` +
        `<div class="grid"><table class="data span-fields">${rows.map(([k, v]) => `<tr><th>${k}</th><td class="mono">${escapeHtml(v)}</td></tr>`).join("")}</table>` +
        `<div><h3>Tags</h3>${tags.length ? `<table class="data span-tags">${tags.map(([k, v]) => `<tr${k === "error" ? ' class="error"' : ""}><th class="mono">${escapeHtml(k)}</th><td class="mono">${escapeHtml(v)}</td></tr>`).join("")}</table>` : '<p class="muted">none</p>'}` +
        `<h3>Annotations (events)</h3>${notes.length ? `<table class="data span-annotations">${notes.map((a) => `<tr><th class="mono">+${formatDuration(a.timestamp - this.start)}</th><td>${escapeHtml(a.value)}</td></tr>`).join("")}</table>` : '<p class="muted">none</p>'}</div></div>`;
      this.detail.dataset.spanId = s.id;
    }
  }

  function endpointText(endpoint) {
    const host = endpoint.ipv4 || (endpoint.ipv6 ? `[${endpoint.ipv6}]` : "");
    const address = host ? `${host}${endpoint.port ? `:${endpoint.port}` : ""}` : "";
    return [endpoint.serviceName, address].filter(Boolean).join(" ") || "–";
  }

  function summary(root, spans, waterfall) {
    const services = new Set();
    for (const s of spans) {
      if (s.localEndpoint && s.localEndpoint.serviceName) services.add(s.localEndpoint.serviceName);
      if (s.remoteEndpoint && s.remoteEndpoint.serviceName) services.add(s.remoteEndpoint.serviceName);
    }
    const errors = spans.filter(isError).length;
    const first = waterfall.tree.roots[0];
    const items = [
      ["root", first ? `${(first.span.localEndpoint && first.span.localEndpoint.serviceName) || ""} ${first.span.name || ""}` : "–"],
      ["spans", spans.length.toLocaleString("en")],
      ["services", [...services].sort().join(", ")],
      ["depth", String(waterfall.tree.maxDepth + 1)],
      ["duration", formatDuration(waterfall.total)],
      ["errors", String(errors)],
      ["started", `${formatTime(waterfall.start)} UTC`],
    ];
    root.querySelector("#trace-summary").innerHTML = items
      .map(([k, v]) => `<span class="fact" data-fact="${k}"><span class="muted">${k}</span> <strong${k === "errors" && errors ? ' class="bad"' : ""}>${escapeHtml(v)}</strong></span>`)
      .join("");
  }

  async function loadLogs(root, spans) {
    const panel = root.querySelector("#trace-logs");
    const params = new URLSearchParams({ trace_id: root.dataset.traceId });
    const seen = new Set();
    for (const s of spans) {
      const id = s.tags && s.tags["correlation.id"];
      if (id && !seen.has(id) && seen.size < 5) { seen.add(id); params.append("correlation_id", id); }
    }
    const res = await fetch(`${root.dataset.logs}?${params}`);
    panel.innerHTML = res.ok ? await res.text() : `<h2>Logs</h2><p class="muted">cannot load the logs (${res.status})</p>`;
  }

  // a log line that names its span selects that span in the waterfall
  function linkLogsToSpans(root, waterfall) {
    const panel = root.querySelector("#trace-logs");
    const byId = new Map(waterfall.tree.nodes.map((node) => [node.span.id, node]));
    panel.addEventListener("click", (event) => {
      const line = event.target.closest("li[data-span-id]");
      const node = line && byId.get(line.dataset.spanId);
      if (node) waterfall.reveal(node);
    });
  }

  async function main() {
    const root = document.getElementById("trace");
    if (!root) return;
    const status = root.querySelector("#trace-status");
    // a trace just made may still be on its way to the store: ask again a few times
    let res = await fetch(root.dataset.api);
    for (let attempt = 1; res.status === 404 && attempt <= RETRIES; attempt++) {
      status.textContent = `Waiting for the trace to be stored (${attempt}/${RETRIES})…`;
      await new Promise((resolve) => setTimeout(resolve, 1000));
      res = await fetch(root.dataset.api);
    }
    if (res.status === 404) {
      status.textContent = "No trace with this id is stored (it may not have arrived yet, or it was removed by retention).";
      root.querySelector("#trace-logs").innerHTML = "";
      loadLogs(root, []).catch(() => {});
      return;
    }
    if (!res.ok) { status.textContent = `cannot load the trace (${res.status})`; return; }
    const spans = await res.json();
    const waterfall = new Waterfall(root, spans);
    summary(root, spans, waterfall);
    root.dataset.loaded = "true";
    window.stackyardTrace = waterfall;

    root.querySelector('[data-action="expand"]').addEventListener("click", () => waterfall.setAll(false));
    root.querySelector('[data-action="collapse"]').addEventListener("click", () => waterfall.setAll(true));
    const find = root.querySelector("#wf-find");
    const result = root.querySelector("#wf-find-result");
    find.addEventListener("keydown", (event) => {
      if (event.key !== "Enter") return;
      event.preventDefault();
      const node = waterfall.find(find.value, waterfall.selected);
      result.textContent = node ? "" : "no match";
      if (node) waterfall.reveal(node);
    });
    const wanted = new URLSearchParams(location.search).get("span");
    const target = wanted && waterfall.tree.nodes.find((n) => n.span.id === wanted);
    if (target) waterfall.reveal(target);
    linkLogsToSpans(root, waterfall);
    await loadLogs(root, spans);
  }

  document.addEventListener("DOMContentLoaded", () => {
    main().catch((err) => {
      const status = document.getElementById("trace-status");
      if (status) status.textContent = `cannot show the trace: ${err}`;
    });
  });
})();
