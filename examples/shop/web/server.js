// web: the shop's page, in Node.js. Finds catalog instances through the registry's
// Consul-style health API (passing only) and balances across them itself, round robin.
"use strict";
const http = require("http");

const PORT = Number(process.env.PORT);
const CONTROL = process.env.STACKYARD_URL;
const INSTANCE = process.env.STACKYARD_INSTANCE_ID || "web";
let turn = 0;

function getJson(url) {
  return new Promise((resolve, reject) => {
    http.get(url, (res) => {
      let data = "";
      res.on("data", (chunk) => (data += chunk));
      res.on("end", () => {
        try { resolve({ status: res.statusCode, body: JSON.parse(data) }); }
        catch (err) { reject(err); }
      });
    }).on("error", reject);
  });
}

async function catalogItems() {
  const health = await getJson(`${CONTROL}/v1/health/service/catalog?passing`);
  const instances = health.body.map((e) => `http://${e.Service.Address}:${e.Service.Port}`);
  if (instances.length === 0) throw new Error("no passing catalog instance");
  const base = instances[turn++ % instances.length];
  return (await getJson(`${base}/items`)).body;
}

function send(res, status, type, body) {
  res.writeHead(status, { "content-type": type, "content-length": Buffer.byteLength(body), "x-instance": INSTANCE });
  res.end(body);
}

const server = http.createServer(async (req, res) => {
  const path = req.url.split("?")[0];
  console.log(JSON.stringify({ level: "info", msg: `${req.method} ${req.url}`, correlation_id: req.headers["x-correlation-id"] || null }));
  if (path === "/web/health") return send(res, 200, "application/json", '{"status":"ok"}');
  if (path === "/web/api/items") {
    try { return send(res, 200, "application/json", JSON.stringify(await catalogItems())); }
    catch (err) { return send(res, 503, "application/json", JSON.stringify({ error: { code: "CatalogUnavailable", message: String(err.message) } })); }
  }
  if (path === "/web" || path === "/web/") {
    try {
      const catalog = await catalogItems();
      const rows = catalog.items.map((i) => `<li>${i.name}: ${i.price} ${i.currency}</li>`).join("");
      return send(res, 200, "text/html; charset=utf-8",
        `<!doctype html><title>shop</title><h1>Shop</h1><ul>${rows}</ul><p>served by ${INSTANCE}, catalog ${catalog.instance}</p>`);
    } catch (err) {
      return send(res, 503, "text/plain", `catalog unavailable: ${err.message}`);
    }
  }
  send(res, 404, "application/json", JSON.stringify({ error: { code: "NotFound", message: path } }));
});

server.keepAliveTimeout = 65000;
server.listen(PORT, "127.0.0.1", () => console.log(`web ${INSTANCE} listening on ${PORT}`));
process.on("SIGTERM", () => server.close(() => process.exit(0)));
