"""alpha: ``GET /alpha/hop`` calls the ``relay`` function through the gateway, forwarding the
trace context it got; beta: ``GET /beta/end`` answers with the trace context it got."""

import json
import os
import sys
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

NAME = sys.argv[1]
GATEWAY = os.environ["STACKYARD_GATEWAY_URL"]
FORWARD = ("traceparent", "tracestate", "x-correlation-id", "x-correlation-counter")


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path.endswith("/health"):
            return self.answer({"ok": True})
        got = {name: self.headers.get(name) for name in FORWARD}
        print(json.dumps({"service": NAME, "msg": "request", **got}), flush=True)
        if NAME == "alpha":
            headers = {k: v for k, v in got.items() if v}
            request = urllib.request.Request(GATEWAY + "/relay", headers=headers)
            with urllib.request.urlopen(request, timeout=10) as response:
                return self.answer({"alpha": got, "relay": json.loads(response.read())})
        return self.answer({"beta": got})

    def answer(self, document: object) -> None:
        body = json.dumps(document).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
