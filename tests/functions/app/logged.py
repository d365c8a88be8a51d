"""A handler that logs with the standard ``logging`` module, as Lambda code usually does."""

import logging

logger = logging.getLogger("orders")


def handler(event, context):
    logger.info("info line")
    logger.warning("warned %s", event.get("n"))
    return {"handlers": len(logging.getLogger().handlers)}
