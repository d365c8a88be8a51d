"""The JWT authorizer: a bearer token verified with PyJWT against the authorizer's keys.

The token comes from the identity source (default ``header.authorization``, ``Bearer <token>``;
a query parameter or another header may carry the bare token). The algorithms are fixed by the
key source, never by the token: a ``secret`` verifies HS256 (or the HS* ``algorithms``
configured), a JWKS key the algorithms of its type (see :mod:`.jwks`); ``alg: none``, an HMAC
token against a public key and any algorithm outside that set are refused before the signature
is looked at. Then: ``exp`` is required and must not be past, ``nbf``/``iat`` must not be in
the future (both with ``leeway`` seconds of slack); ``iss`` must equal ``issuer`` when one is
configured; with an ``audience`` list, the token's ``aud`` (a string or a list) or else its
``client_id`` must name one of them. A route's ``scopes`` need at least one of them in the
token's ``scope`` (space-separated) or ``scp`` (a list) claim, else 403.

Failures answer 401 with ``WWW-Authenticate: Bearer`` (no token) or ``Bearer
error="invalid_token", error_description="..."``; the description says what failed (expired,
wrong issuer, ...) but never echoes the token.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

import jwt

from ...asgi import Scope
from ...config.api import JwtAuthorizerConfig
from ..router import RouteMatch
from .context import AuthContext
from .errors import Forbidden, Unauthorized
from .jwks import ASYMMETRIC_ALGORITHMS, HMAC_ALGORITHMS, KeySet, VerificationKey
from .sources import identity_value

logger = logging.getLogger(__name__)

MAX_TOKEN_LENGTH = 16 * 1024
VERIFIED_TOKENS = 4096  # tokens remembered as verified, per authorizer (LRU)
_INVALID = "invalid_token"
_ERRORS: tuple[tuple[type[jwt.PyJWTError], str], ...] = (
    (jwt.ExpiredSignatureError, "the token has expired"),
    (jwt.ImmatureSignatureError, "the token is not valid yet"),
    (jwt.InvalidIssuerError, "the token has the wrong issuer"),
    (jwt.MissingRequiredClaimError, "the token lacks a required claim"),
    (jwt.InvalidSignatureError, "the token signature does not verify"),
)


def token_scopes(claims: dict[str, Any]) -> tuple[str, ...]:
    """The scopes a token grants: its ``scope`` (space-separated) or ``scp`` (list or string)."""
    scopes: list[str] = []
    for name in ("scope", "scp"):
        value = claims.get(name)
        if isinstance(value, str):
            scopes.extend(value.split())
        elif isinstance(value, list):
            scopes.extend(item for item in value if isinstance(item, str))
    return tuple(dict.fromkeys(scopes))


def bearer_token(value: str | None, source: str) -> str:
    """The token in an identity value: ``Bearer <token>`` (any case), or the bare token for a
    source other than the Authorization header; raises :class:`Unauthorized`."""
    if value is None or not value.strip():
        raise Unauthorized("missing bearer token")
    value = value.strip()
    scheme, _, rest = value.partition(" ")
    if scheme.lower() == "bearer":
        token = rest.strip()
    elif source.lower() == "header.authorization":
        raise Unauthorized("the Authorization header must use the Bearer scheme", error=_INVALID)
    else:
        token = value
    if not token or len(token) > MAX_TOKEN_LENGTH or not token.isascii() or " " in token:
        raise Unauthorized("malformed bearer token", error=_INVALID)
    return token


class JwtAuthorizer:
    """One ``type: jwt`` entry of ``api.authorizers`` (see the module docstring)."""

    def __init__(self, name: str, config: JwtAuthorizerConfig, *, root: Path | None) -> None:
        self.name = name
        self.config = config
        self.audience = frozenset(config.audience)
        self.leeway = float(config.leeway)
        self._secret: VerificationKey | None = None
        self.keys: KeySet | None = None
        configured = frozenset(config.algorithms or ())
        if config.secret is not None:
            allowed = configured or frozenset({"HS256"})
            if not allowed <= HMAC_ALGORITHMS:
                raise ValueError(f"authorizer {name}: a secret verifies only HS256/HS384/HS512")
            self._secret = VerificationKey(None, config.secret.encode(), allowed)
        else:
            assert config.jwks is not None
            allowed = configured or ASYMMETRIC_ALGORITHMS
            if not allowed <= ASYMMETRIC_ALGORITHMS:
                raise ValueError(f"authorizer {name}: JWKS keys verify RS*, PS*, ES* and EdDSA")
            self.keys = KeySet(config.jwks, allowed, root=root)
        self.allowed = allowed
        # token → (claims, exp, key set version): a token seen valid is not verified again
        # until it expires or the keys change; only its exp is checked on each use
        self._verified: OrderedDict[str, tuple[dict[str, Any], float, int]] = OrderedDict()

    async def start(self) -> None:
        if self.keys is not None:
            await self.keys.start()

    async def stop(self) -> None:
        if self.keys is not None:
            await self.keys.stop()

    async def authorize(self, scope: Scope, match: RouteMatch[Any]) -> AuthContext:
        source = self.config.identity_source
        token = bearer_token(identity_value(scope, match, source), source)
        claims = await self.verify(token)
        scopes = token_scopes(claims)
        required: tuple[str, ...] = match.route.policy.scopes
        if required and not any(s in required for s in scopes):
            raise Forbidden("the token has none of the scopes this route needs", scopes=required)
        sub = claims.get("sub")
        return AuthContext(
            "jwt", claims=claims, scopes=scopes, principal_id=sub if isinstance(sub, str) else None
        )

    async def verify(self, token: str) -> dict[str, Any]:
        """The claims of a valid ``token``; raises :class:`Unauthorized` otherwise.

        A token that verified before (same key set) is only checked for expiry again: its
        signature, issuer and audience cannot have changed, and its ``nbf``/``iat`` were past
        already (PyJWT's full verification costs ≈ 50-100 µs, the lookup ≈ 1 µs)."""
        version = self.keys.version if self.keys is not None else 0
        seen = self._verified.get(token)
        if seen is not None and seen[2] == version:
            if seen[1] <= time.time() - self.leeway:
                del self._verified[token]
                raise Unauthorized(_describe(jwt.ExpiredSignatureError()), error=_INVALID)
            self._verified.move_to_end(token)
            return dict(seen[0])
        claims = await self._verify(token)
        self._verified[token] = (claims, float(int(claims["exp"])), version)
        if len(self._verified) > VERIFIED_TOKENS:
            self._verified.popitem(last=False)
        return dict(claims)

    async def _verify(self, token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except (jwt.PyJWTError, ValueError, TypeError) as exc:
            raise Unauthorized("malformed token", error=_INVALID) from exc
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.allowed:
            raise Unauthorized("token algorithm not allowed", error=_INVALID)
        key = await self._key(header.get("kid"))
        if alg not in key.algorithms:
            raise Unauthorized("token algorithm not allowed for its key", error=_INVALID)
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=[alg],
                issuer=self.config.issuer,
                leeway=self.leeway,
                options={"require": ["exp"], "verify_aud": False},
            )
        except jwt.PyJWTError as exc:
            raise Unauthorized(_describe(exc), error=_INVALID) from exc
        except (ValueError, TypeError) as exc:
            raise Unauthorized("invalid token", error=_INVALID) from exc
        if self.audience and not self._audience_ok(claims):
            raise Unauthorized("the token has the wrong audience", error=_INVALID)
        return claims

    async def _key(self, kid: object) -> VerificationKey:
        if self._secret is not None:
            return self._secret
        assert self.keys is not None
        if kid is not None and not isinstance(kid, str):
            raise Unauthorized("malformed key id", error=_INVALID)
        key = await self.keys.find(kid)
        if key is None and kid is None and len(self.keys.keys) == 1:
            [key] = self.keys.keys.values()  # one key: a token without kid means that one
        if key is None:
            raise Unauthorized("the token's key is unknown", error=_INVALID)
        return key

    def _audience_ok(self, claims: dict[str, Any]) -> bool:
        aud = claims.get("aud")
        if isinstance(aud, str):
            return aud in self.audience
        if isinstance(aud, list):
            return any(isinstance(a, str) and a in self.audience for a in aud)
        client_id = claims.get("client_id")
        return aud is None and isinstance(client_id, str) and client_id in self.audience


def _describe(exc: jwt.PyJWTError) -> str:
    for kind, text in _ERRORS:
        if isinstance(exc, kind):
            return text
    return "invalid token"
