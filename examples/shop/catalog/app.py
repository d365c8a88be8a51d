"""catalog: the shop's items. Standard library only; listens on $PORT.

GET /items, GET /items/{id}, GET /health. POST /_admin/health with body "fail" or "ok" makes
this instance's health check fail or pass (to watch the registry take it out of rotation).
"""

import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

INSTANCE = os.environ.get("STACKYARD_INSTANCE_ID", "catalog")
CURRENCY = os.environ.get("CATALOG_CURRENCY", "EUR")
ITEMS = {
    "1": {"id": "1", "name": "teapot", "price": 24.5},
    "2": {"id": "2", "name": "kettle", "price": 39.0},
    "3": {"id": "3", "name": "mug", "price": 7.25},
}
state = {"healthy": True}


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

    def do_GET(self):
        path = self.path.split("?", 1)[0]
        if path == "/health":
            ok = state["healthy"]
            self.reply(200 if ok else 500, {"status": "ok" if ok else "failing"})
        elif path == "/items":
            items = [dict(item, currency=CURRENCY) for item in ITEMS.values()]
            self.reply(200, {"items": items, "instance": INSTANCE})
        elif path.startswith("/items/"):
            item = ITEMS.get(path.removeprefix("/items/"))
            if item is None:
                self.reply(404, {"error": {"code": "NoSuchItem", "message": "no such item"}})
            else:
                self.reply(200, dict(item, currency=CURRENCY, instance=INSTANCE))
        else:
            self.reply(404, {"error": {"code": "NotFound", "message": path}})

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode().strip()
        if self.path == "/_admin/health" and body in ("ok", "fail"):
            state["healthy"] = body == "ok"
            print(f"health set to {body}", flush=True)
            self.reply(200, {"healthy": state["healthy"]})
        else:
            self.reply(404, {"error": {"code": "NotFound", "message": self.path}})

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
    print(f"catalog {INSTANCE} listening on {port}", flush=True)
    sys.stdout.flush()
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
