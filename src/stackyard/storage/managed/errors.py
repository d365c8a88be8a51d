"""The managed caches' and databases' exception tree.

``ManagedError`` (base): a managed Redis or PostgreSQL could not be started — its binary is
missing (``MissingBinary``, naming the Debian package to install), PostgreSQL would have to run
as root, or the server exited or did not accept connections in time (the message quotes the
end of its log). It is a :class:`stackyard.serving.ServerError`, so ``stackyard up`` reports it
like a port that cannot be bound.
"""

from __future__ import annotations

from ...serving import ServerError


class ManagedError(ServerError):
    """A managed cache or database could not be started."""


class MissingBinary(ManagedError):
    """The server's program is not installed."""

    def __init__(self, program: str, package: str, searched: str) -> None:
        super().__init__(
            f"{program} is not installed (looked in {searched}): install the Debian package "
            f"{package!r} (apt-get install {package}) or give the resource a url"
        )
