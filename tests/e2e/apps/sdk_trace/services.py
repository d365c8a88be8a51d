"""alpha: ``GET /alpha/hop`` calls the ``relay`` function through the gateway; beta:
``GET /beta/end`` answers with what it saw. Both: stdlib ``http.server`` + ``stackyard.sdk``
(JSON logs, a SERVER span per request, outbound context on ``sdk.urlopen``)."""

import json
import logging
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from stackyard import sdk

NAME = sys.argv[1]
sdk.setup()  # service name from OTEL_SERVICE_NAME, set by the node
log = logging.getLogger(NAME)
GATEWAY = os.environ["STACKYARD_GATEWAY_URL"]


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path.endswith("/health"):
            self.answer({"ok": True})
            return
        with sdk.server_span(self.headers, f"GET {self.path}") as request:
            log.info("%s handling %s", NAME, self.path)
            seen = {"trace_id": request.trace_id, "correlation_id": request.correlation_id}
            document: dict[str, object] = {NAME: seen}
            if NAME == "alpha":
                with sdk.urlopen(GATEWAY + "/relay", timeout=10) as response:
                    document["relay"] = json.loads(response.read())
            log.info("%s answering", NAME)
            request.set_status_code(200)
            self.answer(document)

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
