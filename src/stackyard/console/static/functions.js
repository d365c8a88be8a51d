// The function page: the test-invoke form (Lambda Invoke API, log tail) and the redrive
// buttons of dead letters (POST /_stackyard/functions/dead-letters/{id}/redrive).
(function () {
  "use strict";

  function decodeBase64(text) {
    const bytes = Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
    return new TextDecoder().decode(bytes);
  }

  function pretty(text) {
    try { return JSON.stringify(JSON.parse(text), null, 2); } catch (err) { return text; }
  }

  async function invoke(form) {
    const status = document.getElementById("invoke-status");
    const payload = document.getElementById("invoke-payload");
    const log = document.getElementById("invoke-log");
    const badge = document.getElementById("invoke-error");
    const event = form.elements.event.value;
    try { JSON.parse(event || "{}"); } catch (err) {
      status.textContent = `the event is not JSON: ${err.message}`;
      return;
    }
    status.textContent = "invoking…";
    const name = encodeURIComponent(form.dataset.function);
    const started = performance.now();
    const res = await fetch(`/2015-03-31/functions/${name}/invocations`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-amz-log-type": "Tail" },
      body: event || "{}",
    });
    const body = await res.text();
    const elapsed = Math.round(performance.now() - started);
    const error = res.headers.get("x-amz-function-error");
    status.textContent = `HTTP ${res.status} in ${elapsed} ms` +
      (res.headers.get("x-amzn-requestid") ? ` · request ${res.headers.get("x-amzn-requestid")}` : "");
    badge.hidden = !error;
    badge.textContent = error ? `function error: ${error}` : "";
    payload.textContent = pretty(body);
    const tail = res.headers.get("x-amz-log-result");
    log.textContent = tail ? decodeBase64(tail) : "(no log tail)";
    document.getElementById("invoke-result").hidden = false;
  }

  async function redrive(button) {
    button.disabled = true;
    const id = encodeURIComponent(button.dataset.redrive);
    const res = await fetch(`/_stackyard/functions/dead-letters/${id}/redrive`, { method: "POST" });
    const body = await res.json();
    button.textContent = res.ok ? `queued` : (body.error && body.error.message) || `HTTP ${res.status}`;
    button.closest("tr").classList.add("redriven");
  }

  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (form.id !== "invoke-form") return;
    event.preventDefault();
    invoke(form).catch((err) => {
      document.getElementById("invoke-status").textContent = String(err);
    });
  });

  document.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-redrive]");
    if (!button) return;
    redrive(button).catch((err) => { button.textContent = String(err); });
  });
})();
