// The data page: the "DynamoDB types" toggle of the table browser, and the bucket upload form
// (a presigned S3 PUT URL from the console, then the file PUT to the S3 API with fetch).
(function () {
  "use strict";

  function toggleTypes(checkbox) {
    const items = document.getElementById("items");
    if (items) items.classList.toggle("typed", checkbox.checked);
  }

  async function upload(form) {
    const status = document.getElementById("upload-status");
    const file = form.elements.file.files[0];
    if (!file) { status.textContent = "choose a file"; return; }
    let key = form.elements.key.value.trim();
    if (!key || key.endsWith("/")) key += file.name;
    status.textContent = `uploading ${key}…`;
    const bucket = encodeURIComponent(form.dataset.bucket);
    const base = document.body.dataset.base;
    const params = new URLSearchParams({ key, method: "PUT" });
    const signed = await fetch(`${base}/data/buckets/${bucket}/presign?${params}`);
    const answer = await signed.json();
    if (!signed.ok) { status.textContent = answer.error.message; return; }
    const headers = file.type ? { "content-type": file.type } : {};
    const res = await fetch(answer.url, { method: "PUT", body: file, headers });
    if (!res.ok) {
      const text = await res.text();
      const message = (/<Message>([^<]*)<\/Message>/.exec(text) || [])[1] || text;
      status.textContent = `HTTP ${res.status}: ${message}`;
      return;
    }
    status.textContent = `uploaded ${key} (ETag ${res.headers.get("etag")})`;
    // show the folder the object went to
    const folder = key.slice(0, key.lastIndexOf("/") + 1);
    window.location.search = new URLSearchParams({ prefix: folder }).toString();
  }

  document.addEventListener("change", (event) => {
    if (event.target.id === "show-types") toggleTypes(event.target);
  });

  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (form.id !== "upload-form") return;
    event.preventDefault();
    upload(form).catch((err) => {
      document.getElementById("upload-status").textContent = String(err);
    });
  });

  document.addEventListener("DOMContentLoaded", () => {
    const checkbox = document.getElementById("show-types");
    if (checkbox) toggleTypes(checkbox);
  });
})();
