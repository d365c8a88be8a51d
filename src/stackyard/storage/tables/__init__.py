"""Tables: the DynamoDB-compatible store (JSON 1.0 API on the control port).

Modules: ``values`` (attribute values, numbers, key encoding), ``tokens``/``parser``/``ast``
(the expression language), ``evaluate``/``update`` (conditions, projections, updates),
``schema`` (table definitions), ``store`` (the backend interface) and ``sqlite`` (its SQLite
implementation), ``engine``/``reads``/``writes`` (the operations), ``api`` (the ASGI app) and
``component`` (lifecycle, declared tables, TTL expiry).
"""

from .component import Tables
from .errors import TablesError

__all__ = ["Tables", "TablesError"]
