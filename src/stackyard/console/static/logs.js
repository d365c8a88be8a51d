// The logs page: "more" appends the next page of the search (its cursor), and the live tail
// asks the same search for the lines since the newest one shown every few seconds and puts the
// new ones on top (a line already shown is not shown twice). The tail can be switched on and
// off; the page's address keeps the choice (live=1), so a tailed search is a link too.
(function () {
  "use strict";

  function init() {
    const table = document.getElementById("logs");
    if (!table) return;
    const rows = document.getElementById("log-rows");
    const status = document.getElementById("logs-status");
    const live = document.getElementById("logs-live");
    const seconds = Number(status.dataset.tailSeconds || "2");
    const loadedAt = new Date().toISOString();
    const seen = new Set();
    rows.querySelectorAll("tr.log-line").forEach((tr) => seen.add(tr.dataset.key));
    let timer = null;
    let busy = false;
    let added = 0;

    async function fetchRows(overrides) {
      const params = new URLSearchParams(table.dataset.query);
      params.delete("cursor");
      for (const [key, value] of Object.entries(overrides)) params.set(key, value);
      const res = await fetch(`${table.dataset.fragment}?${params}`);
      if (!res.ok) throw new Error(`the search answered ${res.status}`);
      const template = document.createElement("template");
      template.innerHTML = (await res.text()).trim();
      return [...template.content.querySelectorAll("tr")];
    }

    function fresh(found) {
      return found.filter((tr) => {
        if (!tr.classList.contains("log-line") || seen.has(tr.dataset.key)) return false;
        seen.add(tr.dataset.key);
        return true;
      });
    }

    rows.addEventListener("click", async (event) => {
      const button = event.target.closest("tr.more button[data-cursor]");
      if (!button) return;
      button.disabled = true;
      button.textContent = "loading…";
      try {
        const found = await fetchRows({ cursor: button.dataset.cursor });
        const moreRow = button.closest("tr");
        const next = found.find((tr) => tr.classList.contains("more"));
        for (const tr of fresh(found)) rows.insertBefore(tr, moreRow);
        moreRow.remove();
        if (next) rows.appendChild(next);
      } catch (err) {
        button.disabled = false;
        button.textContent = `more (${err.message})`;
      }
    });

    async function tail() {
      if (busy) return;
      busy = true;
      try {
        const newest = rows.querySelector("tr.log-line");
        const since = newest ? newest.dataset.time : loadedAt;
        const found = fresh(await fetchRows({ since }));
        if (found.length) {
          const empty = rows.querySelector("tr.empty");
          if (empty) empty.remove();
          const first = rows.firstElementChild;
          for (const tr of found) {
            tr.classList.add("tailed");
            rows.insertBefore(tr, first);
          }
          added += found.length;
        }
        status.textContent = `live tail on: ${added} new line${added === 1 ? "" : "s"} since switched on; checking every ${seconds} s.`;
      } catch (err) {
        status.textContent = `live tail: ${err.message}`;
      } finally {
        busy = false;
      }
    }

    function setLive(on) {
      if (timer) { clearInterval(timer); timer = null; }
      const url = new URL(location.href);
      if (on) {
        added = 0;
        timer = setInterval(tail, seconds * 1000);
        tail();
        url.searchParams.set("live", "1");
      } else {
        status.textContent = "live tail off.";
        url.searchParams.delete("live");
      }
      history.replaceState(null, "", url);
      table.dataset.live = on ? "on" : "off";
    }

    live.addEventListener("change", () => setLive(live.checked));
    if (live.checked) setLive(true);
  }

  document.addEventListener("DOMContentLoaded", init);
})();
