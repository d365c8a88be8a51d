"""The web console: server-rendered pages on the control port at ``/_console/``.

Pages read what the components already expose (status, access log, traces, logs, metrics,
functions, tables, buckets, keys, alarms) through the same interfaces their JSON APIs use, and
refresh themselves by polling those JSON APIs or page fragments (htmx, vendored). Charts use
uPlot (vendored). :mod:`.guard` asks for a token when the control port listens beyond loopback.
"""

from .app import CONSOLE_PATH, Console, create_console_app
from .guard import TokenGuard, load_token

__all__ = ["CONSOLE_PATH", "Console", "TokenGuard", "create_console_app", "load_token"]
