"""Service processes: replicas, restart with backoff, catalog registration, output logs.

Public API: :class:`Supervisor` (lifecycle, status, restart, scale), its value types, the
exception tree, and the log helpers used by the node's logs API.
"""

from .errors import (
    SpawnError,
    SupervisorError,
    SupervisorStateError,
    UnknownInstanceError,
    UnknownServiceError,
)
from .instance import InstanceState, InstanceStatus, RestartPolicy, check_for
from .logs import (
    MAX_LINE,
    LogRecord,
    LogWriter,
    RecordFollower,
    RecordSink,
    follow_records,
    read_records,
)
from .process import instance_env
from .supervisor import Supervisor

__all__ = [
    "MAX_LINE",
    "InstanceState",
    "InstanceStatus",
    "LogRecord",
    "LogWriter",
    "RecordFollower",
    "RecordSink",
    "RestartPolicy",
    "SpawnError",
    "Supervisor",
    "SupervisorError",
    "SupervisorStateError",
    "UnknownInstanceError",
    "UnknownServiceError",
    "check_for",
    "follow_records",
    "instance_env",
    "read_records",
]
