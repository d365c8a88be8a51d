"""The gateway's authorizers, built once from ``api.authorizers`` and looked up by name."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Mapping
from pathlib import Path
from typing import Any, Protocol

from ...asgi import Scope
from ...config.api import AuthorizerConfig, JwtAuthorizerConfig
from ..lambda_proxy import FunctionInvoker
from ..router import RouteMatch
from .cache import DEFAULT_MAX_ENTRIES, ResultCache
from .context import AuthContext
from .function import ApiIdentity, Decision, FunctionAuthorizer
from .jwt import JwtAuthorizer


class Authorizer(Protocol):
    name: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def authorize(self, scope: Scope, match: RouteMatch[Any]) -> AuthContext: ...


class Authorizers:
    """Every named authorizer; ``start`` loads the JWKS of JWT authorizers (a failure is logged
    and retried on demand, the gateway starts anyway); function authorizers share one result
    cache of at most ``cache_entries`` answers."""

    def __init__(
        self,
        configs: Mapping[str, AuthorizerConfig],
        *,
        root: Path | None = None,
        functions: FunctionInvoker | None = None,
        identity: ApiIdentity | None = None,
        cache_entries: int = DEFAULT_MAX_ENTRIES,
    ) -> None:
        self.root = root
        self.functions = functions
        self.identity = identity or ApiIdentity()
        self.cache: ResultCache[Decision] = ResultCache(cache_entries)
        self._by_name: dict[str, Authorizer] = {}
        self._configs: dict[str, AuthorizerConfig] = {}
        self._started = False
        self._tasks: set[asyncio.Task[None]] = set()
        self.configure(configs)

    def _build(self, name: str, config: AuthorizerConfig) -> Authorizer:
        if isinstance(config, JwtAuthorizerConfig):
            return JwtAuthorizer(name, config, root=self.root)
        return FunctionAuthorizer(name, config, self.functions, self.cache, self.identity)

    def configure(self, configs: Mapping[str, AuthorizerConfig]) -> None:
        """Use ``configs`` from now on (a deploy): unchanged authorizers are kept with their
        keys; new ones load their keys in the background (a request that needs a key first
        waits for that load); the function result cache is emptied when any function
        authorizer changed. Call it on the gateway's event loop thread."""
        old, self._by_name = self._by_name, {}
        changed_functions = False
        for name, config in configs.items():
            kept = old.pop(name, None)
            if kept is not None and self._configs.get(name) == config:
                self._by_name[name] = kept
                continue
            changed_functions |= not isinstance(config, JwtAuthorizerConfig)
            authorizer = self._by_name[name] = self._build(name, config)
            if self._started:
                self._background(authorizer.start())
            if kept is not None:
                old[name] = kept
        for authorizer in old.values():
            changed_functions |= isinstance(authorizer, FunctionAuthorizer)
            if self._started:
                self._background(authorizer.stop())
        self._configs = dict(configs)
        if changed_functions:
            self.cache.clear()

    def _background(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def get(self, name: str) -> Authorizer | None:
        return self._by_name.get(name)

    def __len__(self) -> int:
        return len(self._by_name)

    async def start(self) -> None:
        self._started = True
        await asyncio.gather(*(a.start() for a in self._by_name.values()))

    async def stop(self) -> None:
        self._started = False
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.gather(*(a.stop() for a in self._by_name.values()))
