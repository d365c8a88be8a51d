"""orders: places orders. Standard library only; listens on $PORT.

POST /orders {"item_id": "1", "quantity": 2} prices the order by calling catalog *through the
gateway* (forwarding the correlation id) and stores it in the registry's KV store, so every
replica sees every order. GET /orders/{id}, GET /orders, GET /health.
"""

import base64
import json
import os
import urllib.error
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

INSTANCE = os.environ.get("STACKYARD_INSTANCE_ID", "orders")
GATEWAY = os.environ["STACKYARD_GATEWAY_URL"]
CONTROL = os.environ["STACKYARD_URL"]


def call(method, url, body=None, headers=None):
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Instance", INSTANCE)
        self.end_headers()
        self.wfile.write(data)

    def error(self, status, code, message):
        self.reply(status, {"error": {"code": code, "message": message}})

    def do_GET(self):
        path = self.path.split("?", 1)[0]
        if path == "/health":
            self.reply(200, {"status": "ok"})
        elif path == "/orders":
            status, raw = call("GET", f"{CONTROL}/v1/kv/orders/?recurse")
            entries = json.loads(raw) if status == 200 else []
            orders = [json.loads(base64.b64decode(e["Value"])) for e in entries]
            self.reply(200, {"orders": orders})
        elif path.startswith("/orders/"):
            order_id = path.removeprefix("/orders/")
            status, raw = call("GET", f"{CONTROL}/v1/kv/orders/{order_id}?raw")
            if status == 404:
                self.error(404, "NoSuchOrder", f"no order {order_id}")
            else:
                self.reply(200, json.loads(raw))
        else:
            self.error(404, "NotFound", path)

    def do_POST(self):
        if self.path.split("?", 1)[0] != "/orders":
            self.error(404, "NotFound", self.path)
            return
        length = int(self.headers.get("Content-Length") or 0)
        try:
            request = json.loads(self.rfile.read(length) or b"null")
            item_id = str(request["item_id"])
            quantity = int(request.get("quantity", 1))
        except (ValueError, KeyError, TypeError):
            self.error(400, "InvalidOrder", 'expected {"item_id": "...", "quantity": n}')
            return
        # pass the request's context on: the catalog call joins this request's trace and
        # correlation id (the gateway set both on the way in)
        headers = {
            name: self.headers[name]
            for name in ("x-correlation-id", "x-correlation-counter", "traceparent", "tracestate")
            if self.headers.get(name)
        }
        status, raw = call("GET", f"{GATEWAY}/catalog/items/{item_id}", headers=headers)
        if status == 404:
            self.error(400, "NoSuchItem", f"no item {item_id}")
            return
        if status != 200:
            self.error(502, "CatalogUnavailable", f"catalog answered {status}")
            return
        item = json.loads(raw)
        order = {
            "id": uuid.uuid4().hex[:12],
            "item": item["name"],
            "item_id": item_id,
            "quantity": quantity,
            "total": round(item["price"] * quantity, 2),
            "currency": item["currency"],
            "priced_by": item["instance"],
            "placed_by": INSTANCE,
        }
        call("PUT", f"{CONTROL}/v1/kv/orders/{order['id']}", json.dumps(order).encode())
        print(f"order {order['id']} placed: {quantity} x {item['name']}", flush=True)
        self.reply(201, order)

    def log_message(self, fmt, *args):
        # one JSON object per line: the node picks out level, message and correlation_id
        record = {
            "level": "info",
            "msg": f"{self.command} {self.path}",
            "correlation_id": self.headers.get("x-correlation-id"),
        }
        print(json.dumps(record), flush=True)


if __name__ == "__main__":
    port = int(os.environ["PORT"])
    print(f"orders {INSTANCE} listening on {port}", flush=True)
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
