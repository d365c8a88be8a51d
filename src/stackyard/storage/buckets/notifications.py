"""Bucket notifications: which functions an object write triggers, and handing them the event.

Two sets of rules apply side by side: the stack's (every function's ``s3`` events, fixed at
``up`` and replaced on deploy) and each bucket's notification configuration set through the S3
API (PutBucketNotificationConfiguration, :mod:`.notification_api`), kept in the bucket index
and dropped with the bucket. A rule names a function, event types (``s3:ObjectCreated:*``, ...)
and an optional key prefix and suffix.

:meth:`Notifications.changed` is called by the service right after a write is committed to the
index, before anything else is awaited, so the events of one key get their ``sequencer`` (and
their place in the queue) in the order of the writes. One task takes the queue in order and
hands each record to the function runtime as an ``Event`` invocation (persisted there, then
delivered with its retries, maximum event age and dead letters). The write's answer waits until
its events are persisted (at most ``persist_wait`` seconds), never for a function; a failure to
hand an event over is logged and never fails the write.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Protocol

from ...config.models import BucketConfig
from ...functions.s3_events import OWNER_ID, S3Change, s3_record
from .store import MetadataStore

if TYPE_CHECKING:
    from ...config.models import FunctionConfig, StackConfig
    from .http import S3Request

logger = logging.getLogger(__name__)
MAX_BATCH = 500  # queued writes whose events are handed over together


class FunctionTarget(Protocol):
    """What notifications need of the function runtime."""

    def names(self) -> list[str]: ...

    async def invoke_async_many(self, items: list[tuple[str, bytes, str | None]]) -> list[str]: ...


@dataclass(frozen=True)
class NotificationRule:
    """One notification: ``events`` as configured (``s3:ObjectCreated:*``, ...); ``arn`` the
    function ARN a rule set through the API was given (empty for the stack's rules)."""

    id: str
    function: str
    events: tuple[str, ...]
    prefix: str = ""
    suffix: str = ""
    arn: str = ""

    def matches(self, event: str, key: str) -> bool:
        """Whether the event type ``event`` (``ObjectCreated:Put``) of ``key`` is this rule's."""
        name = f"s3:{event}"
        wanted = any(
            e == name or (e.endswith(":*") and name.startswith(e[:-1])) for e in self.events
        )
        return wanted and key.startswith(self.prefix) and key.endswith(self.suffix)


@dataclass(frozen=True)
class Origin:
    """The write an event reports: its request id, the caller's address and principal, and
    its trace context (the delivery continues the caller's trace)."""

    request_id: str
    source_ip: str = "127.0.0.1"
    principal: str = OWNER_ID
    traceparent: str | None = None


def request_origin(request: S3Request) -> Origin:
    client = request.scope.get("client")
    source = str(client[0]) if client else "127.0.0.1"
    return Origin(
        request.request_id, source, _principal(request), request.headers.get("traceparent")
    )


def _principal(request: S3Request) -> str:
    authorization = request.headers.get("authorization", "")
    credential = request.query.get("X-Amz-Credential") or request.query.get("AWSAccessKeyId")
    if "Credential=" in authorization:
        credential = authorization.split("Credential=", 1)[1]
    elif authorization.startswith("AWS "):  # SigV2: AWS key:signature
        credential = authorization[4:]
    if not credential:
        return "anonymous"
    access_key = credential.split("/", 1)[0].split(":", 1)[0].strip()
    return f"AWS:{access_key}" if access_key else "anonymous"


def stack_rules(functions: Mapping[str, FunctionConfig]) -> dict[str, list[NotificationRule]]:
    """The rules of the stack's ``s3`` events by bucket (ids ``<function>-s3-<n>``, n counting
    the function's s3 events from 1)."""
    rules: dict[str, list[NotificationRule]] = {}
    for name, config in functions.items():
        specs = [event.s3 for event in config.events if event.s3 is not None]
        for count, spec in enumerate(specs, 1):
            rule = NotificationRule(
                f"{name}-s3-{count}", name, (spec.event,), spec.prefix, spec.suffix
            )
            rules.setdefault(spec.bucket, []).append(rule)
    return rules


def stack_buckets(config: StackConfig) -> dict[str, BucketConfig]:
    """The buckets a node creates at ``up``: the declared ones and those ``s3`` events name
    without ``existing: true`` (as the Serverless Framework creates them)."""
    named = {
        event.s3.bucket
        for function in config.functions.values()
        for event in function.events
        if event.s3 is not None and not event.s3.existing
    }
    return {**{name: BucketConfig() for name in sorted(named)}, **config.buckets}


def dump_rules(rules: Sequence[NotificationRule]) -> str:
    return json.dumps([asdict(rule) for rule in rules], separators=(",", ":"))


def load_rules(text: str) -> list[NotificationRule]:
    return [
        NotificationRule(
            r["id"], r["function"], tuple(r["events"]), r["prefix"], r["suffix"], r["arn"]
        )
        for r in json.loads(text)
    ]


class Notifications:
    """The rules of a node's buckets and the hand-over of their events (module docstring)."""

    def __init__(
        self,
        store: MetadataStore,
        *,
        region: str,
        rules: Mapping[str, Sequence[NotificationRule]] | None = None,
        functions: FunctionTarget | None = None,
        persist_wait: float = 5.0,
    ) -> None:
        self.store = store
        self.region = region
        self.functions = functions
        self.persist_wait = persist_wait
        self._stack: dict[str, list[NotificationRule]] = {}
        self._api: dict[str, list[NotificationRule]] = {}
        self.use_stack(rules or {})
        self._last = 0
        self._queue: asyncio.Queue[tuple[list[tuple[str, bytes, str | None]], asyncio.Future[None]]]
        self._queue = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def use_stack(self, rules: Mapping[str, Sequence[NotificationRule]]) -> None:
        """Take the stack's rules by bucket (:func:`stack_rules`; at start and on deploy)."""
        self._stack = {bucket: list(found) for bucket, found in rules.items() if found}

    async def start(self) -> None:
        for bucket, text in (await self.store.notifications()).items():
            try:
                self._api[bucket] = load_rules(text)
            except (ValueError, KeyError, TypeError) as exc:
                logger.error("bucket %s: unreadable notification configuration (%s)", bucket, exc)
        self._task = asyncio.create_task(self._drain(), name="bucket-notifications")

    async def check_buckets(self) -> None:
        """Warn about the buckets of the stack's rules that do not exist (``existing: true``
        ones nobody created yet): their rules apply once they are created."""
        present = {bucket.name for bucket in await self.store.buckets()}
        for bucket in sorted(set(self._stack) - present):
            logger.warning(
                "bucket %s of an s3 event does not exist (existing: true); its notifications "
                "start when it is created",
                bucket,
            )

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        dropped = 0
        while not self._queue.empty():
            items, done = self._queue.get_nowait()
            dropped += len(items)
            if not done.done():
                done.set_result(None)
        if dropped:
            logger.warning("%d bucket notification(s) not handed over before the stop", dropped)

    # -- configuration through the API ---------------------------------------------------------

    def configuration(self, bucket: str) -> list[NotificationRule]:
        """The bucket's rules set through the API."""
        return list(self._api.get(bucket, ()))

    async def configure(self, bucket: str, rules: Sequence[NotificationRule]) -> None:
        """Store the bucket's API rules (an empty list removes them). Raises NoSuchBucket."""
        await self.store.set_notifications(bucket, dump_rules(rules) if rules else None)
        if rules:
            self._api[bucket] = list(rules)
        else:
            self._api.pop(bucket, None)

    def forget(self, bucket: str) -> None:
        """The bucket was deleted (its stored configuration went with it)."""
        self._api.pop(bucket, None)

    # -- events --------------------------------------------------------------------------------

    def changed(
        self,
        event: str,
        bucket: str,
        key: str,
        size: int | None,
        etag: str | None,
        origin: Origin | None,
    ) -> asyncio.Future[None] | None:
        """Queue the records of a committed write; None when no rule wants it. Call it before
        anything else is awaited after the commit (that keeps the order of a key's events)."""
        stack, api = self._stack.get(bucket), self._api.get(bucket)
        if not stack and not api:
            return None
        rules = [rule for rule in (*(stack or ()), *(api or ())) if rule.matches(event, key)]
        if not rules:
            return None
        origin = origin or Origin(request_id=f"{time.time_ns():X}")
        change = S3Change(
            event, bucket, key, size, etag, self._sequencer(), time.time(),
            origin.request_id, origin.source_ip, origin.principal,
        )  # fmt: skip
        items = [
            (rule.function, _payload(change, self.region, rule.id), origin.traceparent)
            for rule in rules
        ]
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((items, done))
        return done

    async def settle(self, pending: Sequence[asyncio.Future[None] | None]) -> None:
        """Wait (at most ``persist_wait`` seconds) until these events are handed over."""
        waiting = [future for future in pending if future is not None]
        if not waiting:
            return
        _, late = await asyncio.wait(waiting, timeout=self.persist_wait)
        if late:
            logger.warning("%d bucket notification(s) still queued; answering anyway", len(late))

    def _sequencer(self) -> str:
        value = max(self._last + 1, time.time_ns())
        self._last = value
        return f"{value:018X}"

    async def _drain(self) -> None:
        """Hand the queued events over in order, everything queued so far at once (one
        transaction of the event store for all of them: a DeleteObjects of many keys, or many
        writes at a time, cost one commit)."""
        while True:
            batch = [await self._queue.get()]
            while not self._queue.empty() and len(batch) < MAX_BATCH:
                batch.append(self._queue.get_nowait())
            try:
                await self._hand_over([item for items, _ in batch for item in items])
            finally:
                for _, done in batch:
                    if not done.done():
                        done.set_result(None)

    async def _hand_over(self, items: list[tuple[str, bytes, str | None]]) -> None:
        if self.functions is None:
            logger.warning("%d bucket notification(s) dropped: no function runtime", len(items))
            return
        try:
            await self.functions.invoke_async_many(items)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a function gone, a stopped runtime, a store error
            if len(items) == 1:
                logger.warning("bucket notification for %s not delivered: %s", items[0][0], exc)
                return
            for item in items:  # one at a time: what can be delivered still is
                await self._hand_over([item])


def _payload(change: S3Change, region: str, configuration_id: str) -> bytes:
    record = s3_record(change, region=region, configuration_id=configuration_id)
    return json.dumps({"Records": [record]}, separators=(",", ":")).encode()
