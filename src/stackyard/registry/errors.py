"""The registry's exception tree.

- ``RegistryError``: base of everything the registry raises on purpose.
  - ``InvalidRegistration``: a registration or one of its checks is malformed; the API answers 400.
  - ``UnknownService``: no service instance with that ID; the API answers 404.
  - ``UnknownCheck``: no check with that ID (or not a TTL check where one is needed); 404.
  - ``StoreError``: the SQLite store failed (translated from ``sqlite3.Error``).
  - ``RegistryClosed``: the registry is not started (or already stopped).
"""

from __future__ import annotations


class RegistryError(Exception):
    """Base of the registry's errors."""


class InvalidRegistration(RegistryError):
    """A registration or check definition is malformed; ``field`` names the offending field."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


class UnknownService(RegistryError):
    """No service instance with that ID."""


class UnknownCheck(RegistryError):
    """No check with that ID."""


class StoreError(RegistryError):
    """The persistent store failed."""


class RegistryClosed(RegistryError):
    """The registry is not running."""
