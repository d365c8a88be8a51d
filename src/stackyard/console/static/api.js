// The API page: create a key (POST /_stackyard/api/keys, its value shown once) and revoke one
// (DELETE /_stackyard/api/keys/{name}); the keys table then refreshes (htmx "refresh").
(function () {
  "use strict";

  function refreshKeys() {
    if (window.htmx) window.htmx.trigger("#api-keys", "refresh");
  }

  async function createKey(form) {
    const status = document.getElementById("key-status");
    status.textContent = "creating…";
    const res = await fetch("/_stackyard/api/keys", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ name: form.elements.name.value, plan: form.elements.plan.value }),
    });
    const body = await res.json();
    if (!res.ok) { status.textContent = body.error.message; return; }
    status.textContent = "";
    document.getElementById("new-key-name").textContent = body.name;
    document.getElementById("new-key-value").textContent = body.key;
    document.getElementById("new-key").hidden = false;
    form.reset();
    refreshKeys();
  }

  async function revokeKey(button) {
    const name = button.dataset.revoke;
    if (!window.confirm(`Revoke the key ${name}? Calls with it fail at once.`)) return;
    button.disabled = true;
    const res = await fetch(`/_stackyard/api/keys/${encodeURIComponent(name)}`, { method: "DELETE" });
    if (!res.ok) {
      const body = await res.json();
      button.textContent = body.error.message;
      return;
    }
    refreshKeys();
  }

  document.addEventListener("submit", (event) => {
    if (event.target.id !== "key-form") return;
    event.preventDefault();
    createKey(event.target).catch((err) => {
      document.getElementById("key-status").textContent = String(err);
    });
  });

  document.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-revoke]");
    if (button) revokeKey(button).catch((err) => { button.textContent = String(err); });
  });
})();
