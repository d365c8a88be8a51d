"""The supervisor's exception tree.

``SupervisorError`` is the base of every error the supervisor raises on purpose:

- ``SpawnError``: the OS could not start an instance's command (missing working directory,
  no ``/bin/sh``, resource limits). The instance is marked ``failed`` and retried with backoff.
- ``UnknownServiceError``: a service name that is not part of the supervised stack.
- ``UnknownInstanceError``: an instance id that the supervisor does not run.
- ``SupervisorStateError``: a lifecycle call in the wrong state (``start`` twice, ``scale``
  after ``stop``).

Third-party and OS errors are translated at the boundary (``raise ... from exc``).
"""

from __future__ import annotations


class SupervisorError(Exception):
    """Base class of the supervisor's errors."""


class SpawnError(SupervisorError):
    """An instance's process could not be started."""


class UnknownServiceError(SupervisorError, LookupError):
    """The service is not managed by this supervisor."""


class UnknownInstanceError(SupervisorError, LookupError):
    """The instance id is not managed by this supervisor."""


class SupervisorStateError(SupervisorError):
    """The call does not fit the supervisor's lifecycle state."""
