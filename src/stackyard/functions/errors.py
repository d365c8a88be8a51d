"""The functions component's exception tree.

``FunctionError`` is the base of every error the component raises on purpose:

- ``UnknownFunction``: a name (or ARN) that is not a function of the stack → Lambda API
  ``ResourceNotFoundException`` (404).
- ``TooManyRequests``: the function's workers are all busy and its wait queue is full or the
  wait was too long → ``TooManyRequestsException`` (429).
- ``InvalidPayload``: an invocation payload that is not JSON → ``InvalidRequestContentException``
  (400).
- ``PayloadTooLarge``: a payload beyond Lambda's limits → ``RequestTooLargeException`` (413).
- ``FunctionTimeout``: raised by nothing public; documents the timeout outcome (the caller gets a
  function error ``Sandbox.Timedout`` / ``Task timed out after N.NN seconds`` instead).
- ``WorkerStartError``: a worker process could not be started (missing or non-executable
  ``bootstrap``); reported to the caller as a ``Runtime.InvalidEntrypoint`` function error.
- ``RuntimeStopped``: the runtime is stopping or not started.
- ``UnknownDeadLetter``: a dead-letter id that is not in the store.
- ``MalformedResponse``: a function result that API Gateway cannot map to an HTTP response →
  the gateway answers 502 ``{"message": "Internal server error"}``.
- ``ScheduleError`` (also a ``ValueError``): a ``rate(...)``/``cron(...)`` expression AWS would
  reject.

Function errors (the handler raised, the worker crashed or timed out) are not exceptions: they
are results with ``function_error`` set, as Lambda's Invoke API reports them.
"""

from __future__ import annotations


class FunctionError(Exception):
    """Base class of the functions component's errors."""


class UnknownFunction(FunctionError, LookupError):
    """No function of that name."""


class TooManyRequests(FunctionError):
    """Concurrency limit reached and the wait queue is full or timed out."""


class InvalidPayload(FunctionError, ValueError):
    """The payload is not valid JSON."""


class PayloadTooLarge(FunctionError, ValueError):
    """The payload exceeds the invocation size limit."""


class FunctionTimeout(FunctionError):
    """An invocation ran past the function's timeout (reported as a function error)."""


class WorkerStartError(FunctionError):
    """A worker process could not be started."""


class RuntimeStopped(FunctionError):
    """The runtime is not running."""


class UnknownDeadLetter(FunctionError, LookupError):
    """No dead-letter entry with that id."""


class MalformedResponse(FunctionError, ValueError):
    """A function's result cannot be mapped to an HTTP response."""


class ScheduleError(FunctionError, ValueError):
    """A schedule expression is not valid."""
