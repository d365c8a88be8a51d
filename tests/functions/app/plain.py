"""A handler module that does not use ``logging``."""

import sys


def modules(event, context):
    return {"logging_imported": "logging" in sys.modules}
