"""The errors the authorizer step answers (all :class:`~stackyard.gateway.errors.GatewayError`).

- :class:`Unauthorized` (401 ``Unauthorized``): no credentials, or a token that is malformed,
  badly signed, expired, not yet valid, for another issuer or audience; carries a
  ``WWW-Authenticate: Bearer ...`` challenge (RFC 6750) for JWT authorizers.
- :class:`Forbidden` (403 ``Forbidden``): valid credentials that may not call this route (a
  token without one of the route's scopes, a function authorizer's deny).
- :class:`AuthorizerFailure` (500 ``AuthorizerFailure``): the authorizer itself failed (the
  function raised, timed out or answered something that is not an authorizer response; a route
  names an authorizer the gateway does not have) — API Gateway answers 500 there too.
"""

from __future__ import annotations

from ..errors import GatewayError


def _quoted(value: str) -> str:
    """A quoted-string for a challenge parameter (RFC 9110), printable ASCII only."""
    text = "".join(c for c in value if " " <= c <= "~" and c not in '"\\')
    return f'"{text}"'


class Unauthorized(GatewayError):
    status = 401
    code = "Unauthorized"

    def __init__(self, message: str = "", *, error: str | None = None, bearer: bool = True):
        self.error = error
        self.bearer = bearer
        super().__init__(message)

    def default_message(self) -> str:
        return "Unauthorized"

    def extra_headers(self) -> list[tuple[bytes, bytes]]:
        if not self.bearer:
            return []
        challenge = "Bearer"
        if self.error is not None:
            challenge += f" error={_quoted(self.error)}, error_description={_quoted(self.message)}"
        return [(b"www-authenticate", challenge.encode("ascii"))]


class Forbidden(GatewayError):
    status = 403
    code = "Forbidden"

    def __init__(self, message: str = "", *, scopes: tuple[str, ...] = ()) -> None:
        self.scopes = scopes
        super().__init__(message)

    def default_message(self) -> str:
        return "Forbidden"

    def extra_headers(self) -> list[tuple[bytes, bytes]]:
        if not self.scopes:
            return []
        challenge = f'Bearer error="insufficient_scope", scope={_quoted(" ".join(self.scopes))}'
        return [(b"www-authenticate", challenge.encode("ascii"))]


class AuthorizerFailure(GatewayError):
    status = 500
    code = "AuthorizerFailure"

    def default_message(self) -> str:
        return "the authorizer failed"
