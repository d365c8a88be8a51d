"""What an authorizer learned about a request (:class:`AuthContext`, ``scope["state"]["auth"]``)
and how it is handed to the integration.

- Functions get it in the proxy event's ``requestContext.authorizer``, in API Gateway's shapes:
  payload 1.0 (REST) ``{"claims": {...}, "scopes": [...]}`` for a JWT and
  ``{"principalId": ..., "integrationLatency": ..., <context keys>}`` for a function
  authorizer; payload 2.0 (HTTP API) ``{"jwt": {"claims": {...}, "scopes": [...]}}`` and
  ``{"lambda": {<context>}}``. Claims keep their JSON types.
- Services (``http_proxy``) get the header :data:`AUTHORIZER_HEADER`
  (``x-stackyard-authorizer``): compact, ASCII-only JSON
  ``{"type", "principalId", "claims", "scopes", "context"}``. The gateway drops any copy a client
  sent, on every route, so a service behind it may trust the header.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

AUTHORIZER_HEADER = b"x-stackyard-authorizer"


@dataclass(frozen=True)
class AuthContext:
    """``claims`` of a verified JWT, its ``scopes``; a function authorizer's ``context``,
    ``principal_id`` and ``api_key`` (its ``usageIdentifierKey``); ``kind`` says which one
    produced it; ``latency_ms``: how long the authorizer took (0 for a cached answer)."""

    kind: Literal["jwt", "function"]
    claims: dict[str, Any] = field(default_factory=dict)
    scopes: tuple[str, ...] = ()
    context: dict[str, Any] = field(default_factory=dict)
    principal_id: str | None = None
    api_key: str | None = None
    latency_ms: int = 0

    def event_authorizer(self, payload_version: str) -> dict[str, Any]:
        """``requestContext.authorizer`` of a proxy event of ``payload_version``."""
        scopes = list(self.scopes) or None
        if payload_version == "1.0":
            if self.kind == "jwt":
                return {"claims": self.claims, "scopes": scopes}
            out: dict[str, Any] = dict(self.context)
            out["principalId"] = self.principal_id
            out["integrationLatency"] = self.latency_ms
            return out
        if self.kind == "jwt":
            return {"jwt": {"claims": self.claims, "scopes": scopes}}
        return {"lambda": dict(self.context)}

    def header_value(self) -> bytes:
        """The value of :data:`AUTHORIZER_HEADER` for an upstream service."""
        document = {
            "type": self.kind,
            "principalId": self.principal_id,
            "claims": self.claims,
            "scopes": list(self.scopes),
            "context": self.context,
        }
        return json.dumps(document, separators=(",", ":"), default=str).encode("ascii")
