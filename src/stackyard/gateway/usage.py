"""The API-key and throttle step of the pipeline, and the usage plans it enforces.

:class:`UsagePlans` owns the keys (:mod:`.keys`), the quota counters (:mod:`.quota`) and the
token buckets (:mod:`.throttle`) of one gateway, and the task that writes the counters to the
key store every ``flush_interval`` seconds. :class:`UsageStep` runs after the authorizer:

1. a route with ``api_key: true`` needs a key (the ``x-api-key`` header, or the Lambda
   authorizer's ``usageIdentifierKey`` when ``api.key_source`` is ``authorizer``) that exists,
   is not revoked and belongs to a plan of ``api.usage_plans`` — otherwise 403 ``Forbidden``;
   the key is put in ``scope["state"]["api_key"]`` (an :class:`~.keys.ApiKey`: ``name``,
   ``plan``) and its value in ``scope["state"]["api_key_value"]`` (REST function events show
   it as ``requestContext.identity.apiKey``); a key whose plan's quota is used up gets 429
   ``LimitExceeded``;
2. one token is taken from each bucket that applies: the stage's (``api.stages.<stage>.throttle``
   or else ``api.throttle``), the route's (``throttle``), the key's (its plan's ``throttle``) —
   429 ``TooManyRequests`` with ``Retry-After`` when one is empty;
3. the request is counted against the key's quota.

A route without ``api_key`` and ``throttle``, with no stage throttle, passes with one check.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

from ..asgi import ASGIApp, Receive, Scope, Send
from ..config.api import ApiConfig, UsagePlanConfig
from .auth.errors import Forbidden
from .keys import ApiKey, ApiKeys, InvalidKeyRequest, UnknownPlan
from .quota import QuotaCounter, Quotas
from .table import RouteSpec
from .throttle import Buckets, Limit, LocalBuckets, Throttled

logger = logging.getLogger(__name__)

API_KEY_HEADER = b"x-api-key"
FLUSH_INTERVAL = 5.0


class MissingApiKey(Forbidden):
    """403 ``Forbidden``: the route needs an API key and the request has none."""

    def default_message(self) -> str:
        return "Forbidden: this route needs an API key (x-api-key)"


class InvalidApiKey(Forbidden):
    """403 ``Forbidden``: the key is unknown, revoked, or its plan left the stack."""

    def default_message(self) -> str:
        return "Forbidden: the API key is not valid"


def route_bucket(route: RouteSpec) -> str:
    """The name of a route's bucket: the same for the same route in every table."""
    return "route:" + ",".join(sorted(route.methods)) + " " + route.path


KEY_USES = 4096
"""Key values whose :class:`KeyUse` is kept (more are resolved again)."""


class KeyUse:
    """A valid key as the usage step uses it, resolved once per key value: the key, its plan's
    quota, its bucket (``key:<name>`` with the plan's throttle; None when the plan has none),
    the value as text and the key index's ``generation`` it was resolved in."""

    __slots__ = ("generation", "key", "limit", "quota", "value")

    def __init__(
        self, key: ApiKey, plan: UsagePlanConfig, value: bytes | str, generation: int
    ) -> None:
        self.key = key
        self.quota = plan.quota
        throttle = plan.throttle
        self.limit = Limit("key:" + key.name, throttle) if throttle is not None else None
        self.value = value if isinstance(value, str) else value.decode()
        self.generation = generation


class UsagePlans:
    """Keys, quotas and throttle buckets of a gateway (see the module docstring)."""

    def __init__(
        self,
        api: ApiConfig,
        stage: str,
        data_dir: Path | None,
        *,
        buckets: Buckets | None = None,
        flush_interval: float = FLUSH_INTERVAL,
    ) -> None:
        self.keys = ApiKeys(data_dir)
        self.quotas = Quotas()
        self.buckets: Buckets = buckets if buckets is not None else LocalBuckets()
        self.flush_interval = flush_interval
        self._flusher: asyncio.Task[None] | None = None
        self._started = False
        self.configure(api, stage)

    def configure(self, api: ApiConfig, stage: str) -> None:
        """Takes the (new) ``api`` section: plans, key source, stage throttle."""
        self.plans: dict[str, UsagePlanConfig] = dict(api.usage_plans)
        self._uses: dict[bytes | str, KeyUse] = {}  # by key value, valid keys only
        self.from_authorizer = api.key_source == "authorizer"
        stage_config = api.stages.get(stage)
        throttle = stage_config.throttle if stage_config is not None else None
        throttle = throttle or api.throttle
        self.stage_limit = Limit(f"stage:{stage}", throttle) if throttle else None

    def applies(self, route: RouteSpec) -> bool:
        """Whether ``route`` has anything for the usage step to check: an API key, a route
        throttle or the stage's throttle."""
        policy = route.policy
        return policy.api_key or policy.throttle is not None or self.stage_limit is not None

    async def start(self) -> None:
        if self._started:
            return
        await self.keys.start()
        self.quotas.load(await self.keys.store.quota_rows())
        self._flusher = asyncio.create_task(self._flush_every(), name="api-quota-flush")
        self._started = True

    async def stop(self) -> None:
        if not self._started:
            return
        self._started = False
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
            self._flusher = None
        try:
            await self.flush()
        finally:
            await self.keys.stop()

    async def flush(self) -> None:
        """Writes the quota counters changed since the last flush."""
        rows = self.quotas.dirty()
        try:
            await self.keys.store.save_quota(rows)
        except BaseException:
            self.quotas.restore(rows)
            raise

    async def _flush_every(self) -> None:
        while True:
            await asyncio.sleep(self.flush_interval)
            try:
                await self.flush()
            except OSError:
                logger.exception("could not write the quota counters")

    # -- the request path ------------------------------------------------------------------------

    def identify(self, scope: Scope) -> KeyUse:
        """The request's valid key with its plan's quota and bucket; raises
        :class:`Forbidden`."""
        value: bytes | str | None = None
        if self.from_authorizer:
            auth = scope["state"].get("auth")
            value = getattr(auth, "api_key", None)
        else:
            for name, header in scope["headers"]:
                if name == API_KEY_HEADER:
                    value = header
                    break
        if not value:
            raise MissingApiKey()
        keys = self.keys
        use = self._uses.get(value)
        if use is None or use.generation != keys.generation:  # first seen, or keys changed
            key = keys.lookup(value)
            if key is None:
                raise InvalidApiKey()
            plan = self.plans.get(key.plan)
            if plan is None:
                raise InvalidApiKey()
            if len(self._uses) >= KEY_USES:
                self._uses.clear()
            use = self._uses[value] = KeyUse(key, plan, value, keys.generation)
        scope["state"]["api_key_value"] = use.value
        return use

    # -- admin -------------------------------------------------------------------------------------

    async def create_key(self, name: object, plan: object) -> tuple[ApiKey, str]:
        if not isinstance(plan, str) or not plan:
            raise InvalidKeyRequest("plan: the name of a usage plan is required")
        if plan not in self.plans:
            known = ", ".join(sorted(self.plans)) or "none"
            raise UnknownPlan(f"no usage plan named {plan!r} (plans: {known})")
        if not isinstance(name, str):
            raise InvalidKeyRequest("name: a string is required")
        return await self.keys.create(name, plan)

    async def revoke_key(self, name: str) -> ApiKey:
        key = await self.keys.revoke(name)
        self.quotas.forget(name)
        return key

    def usage(self, name: str) -> dict[str, Any]:
        """A key's quota use in the current period (``quota`` None when its plan has none)."""
        key = self.keys.get(name)
        plan = self.plans.get(key.plan)
        quota: dict[str, Any] | None = None
        if plan is not None and plan.quota is not None:
            used = self.quotas.usage(name, plan.quota)
            quota = {
                "limit": used.limit,
                "period": used.period,
                "used": used.used,
                "remaining": used.remaining,
                "period_start": used.period_start,
                "period_end": used.period_end,
            }
        return {**key.public(), "plan_exists": plan is not None, "quota": quota}


class UsageStep:
    """The pipeline step of one route (see the module docstring). The stage's and the route's
    buckets are resolved when the route's chain is compiled (a deploy that changes the stage
    throttle compiles the chains again); per request only the key is looked up."""

    def __init__(self, app: ASGIApp, plans: UsagePlans, route: RouteSpec) -> None:
        self.app = app
        self.plans = plans
        policy = route.policy
        self.api_key = policy.api_key
        limits: list[Limit] = []
        if plans.stage_limit is not None:
            limits.append(plans.stage_limit)
        if policy.throttle is not None:
            limits.append(Limit(route_bucket(route), policy.throttle))
        self.limits = tuple(limits)
        # buckets in this process answer at once: the step needs no coroutine of its own
        buckets = plans.buckets
        self._take = buckets.take if type(buckets) is LocalBuckets else None

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        plans = self.plans
        limits = self.limits
        counter: QuotaCounter | None = None
        if self.api_key:
            use = plans.identify(scope)
            key = scope["state"]["api_key"] = use.key
            if use.quota is not None:
                counter = plans.quotas.check(key.name, key.plan, use.quota)
            if use.limit is not None:
                limits = (*limits, use.limit)
        if limits:
            if self._take is None:
                return self._shared(scope, receive, send, limits, counter)
            wait = self._take(limits)
            if wait > 0.0:
                raise Throttled(wait)
        if counter is not None:
            plans.quotas.add(counter)
        return self.app(scope, receive, send)

    async def _shared(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        limits: tuple[Limit, ...],
        counter: QuotaCounter | None,
    ) -> None:
        """The rest of the step with buckets kept elsewhere (a shared store answers later)."""
        wait = await self.plans.buckets.acquire(limits)
        if wait > 0.0:
            raise Throttled(wait)
        if counter is not None:
            self.plans.quotas.add(counter)
        await self.app(scope, receive, send)
