"""relay: continues the invocation's trace with ``sdk.function_span`` and calls beta through
the gateway with the context headers (``sdk.urlopen``)."""

import json
import logging
import os

from stackyard import sdk

sdk.setup()  # at module level: once per worker; service name "relay" from OTEL_SERVICE_NAME
log = logging.getLogger("relay")


def relay(event, context):
    with sdk.function_span(event, "relay handler") as request:
        log.info("relay calling beta")
        url = os.environ["STACKYARD_GATEWAY_URL"] + "/beta/end"
        with sdk.urlopen(url, timeout=10) as response:
            beta = json.loads(response.read())
        log.info("relay got beta's answer")
        return {
            "event_traceparent": event["headers"].get("traceparent"),
            "relay": {"trace_id": request.trace_id, "correlation_id": request.correlation_id},
            "beta": beta,
        }
