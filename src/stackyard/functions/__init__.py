"""Functions: Lambda-compatible handlers run in warm worker processes.

Modules (import them directly; this package imports nothing, so that the Python bootstrap a
worker runs starts fast):

- ``runtime``: :class:`~stackyard.functions.runtime.FunctionRuntime`, the component the node owns.
- ``pool`` / ``worker`` / ``runtime_api``: worker pools, worker processes, the Runtime API.
- ``bootstrap``: the Python runtime run by workers of runtime ``python``.
- ``api``: the Lambda API (Invoke, ListFunctions, GetFunction) and the dead-letter endpoints.
- ``events_store`` / ``async_invoke``: persisted asynchronous invocations, retries, dead letters.
- ``schedule``: ``rate(...)``/``cron(...)`` expressions and the scheduler.
- ``events``: API Gateway proxy events (payload 1.0 and 2.0) and response mapping.
- ``errors``: the component's exception tree.
"""
