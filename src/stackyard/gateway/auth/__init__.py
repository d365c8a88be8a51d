"""Authorizers: the pipeline step after the route match (JWT and function/Lambda REQUEST
authorizers, their key sets and result cache) and the :class:`AuthContext` it leaves in
``scope["state"]["auth"]``."""

from .context import AUTHORIZER_HEADER, AuthContext
from .errors import AuthorizerFailure, Forbidden, Unauthorized
from .function import ApiIdentity
from .registry import Authorizers
from .step import Authorize

__all__ = [
    "AUTHORIZER_HEADER",
    "ApiIdentity",
    "AuthContext",
    "Authorize",
    "AuthorizerFailure",
    "Authorizers",
    "Forbidden",
    "Unauthorized",
]
