"""The Consul-compatible HTTP API of the registry: ``consul_routes(registry)`` returns Starlette
routes (paths ``/v1/...``) for the node's control-plane app.

Covered: agent service register/deregister, TTL check pass/warn/fail/update, agent services and
checks, catalog services/service/nodes/datacenters, health service/checks/state, KV (get with
``recurse``/``keys``/``separator``/``raw``, put with ``cas``/``flags``, delete with ``recurse``/
``cas``), status leader/peers and a minimal agent self. Every answer carries ``X-Consul-Index``;
health, catalog and KV reads are blocking queries (``?index=&wait=``, default wait 5 min, max
10 min, plus up to wait/16 jitter, woken within milliseconds of a change, and released at
once when the client disconnects).

Errors are JSON ``{"error": {"code", "message"}}``: 400 for malformed input (naming the field),
404 for an unknown service, check or key, 413 for a body over ``MAX_BODY``. Not supported (400):
bexpr ``filter``, KV sessions (``acquire``/``release``), script/gRPC/Docker checks.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from functools import wraps

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from .catalog import Registry
from .errors import InvalidRegistration, RegistryClosed, RegistryError, UnknownCheck, UnknownService
from .httpio import (
    ApiError,
    block,
    empty_answer,
    error_answer,
    flag,
    index_headers,
    json_answer,
    no_filter,
    read_body,
    read_json,
    uint_param,
)
from .models import Health, InstanceHealth
from .wire import (
    NodeInfo,
    catalog_entry,
    check_json,
    decode_registration,
    health_entry,
    kv_json,
    node_check_json,
    node_json,
    service_json,
)

logger = logging.getLogger(__name__)

Handler = Callable[[Request], Awaitable[Response]]


class _ConsulApi:
    def __init__(self, registry: Registry, node: NodeInfo) -> None:
        self.registry = registry
        self.node = node

    def guard(self, handler: Handler, *, kv: bool = False) -> Handler:
        """Translate errors into JSON answers; nothing escapes as a crash."""

        def index() -> int:
            return self.registry.kv.index if kv else self.registry.index

        @wraps(handler)
        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except ApiError as exc:
                return error_answer(exc.status, exc.code, exc.message, index())
            except InvalidRegistration as exc:
                return error_answer(400, "InvalidRegistration", str(exc), index())
            except UnknownService as exc:
                return error_answer(404, "UnknownService", str(exc), index())
            except UnknownCheck as exc:
                return error_answer(404, "UnknownCheck", str(exc), index())
            except RegistryClosed as exc:
                return error_answer(503, "Unavailable", str(exc), index())
            except RegistryError as exc:
                logger.exception("registry error on %s", request.url.path)
                return error_answer(500, "InternalError", str(exc), index())
            except Exception:
                logger.exception("unexpected error on %s", request.url.path)
                return error_answer(500, "InternalError", "internal error", index())

        return guarded

    # -- agent -------------------------------------------------------------------------

    async def register(self, request: Request) -> Response:
        body = await read_json(request)
        registration = decode_registration(body, default_address=self.node.address)
        await self.registry.register(registration)
        return empty_answer(self.registry.index)

    async def deregister(self, request: Request) -> Response:
        service_id = request.path_params["service_id"]
        if not await self.registry.deregister(service_id):
            raise UnknownService(f"Unknown service ID {service_id!r}")
        return empty_answer(self.registry.index)

    async def _ttl(self, request: Request, status: Health, note: str) -> Response:
        check_id = request.path_params["check_id"]
        if not await self.registry.update_ttl(check_id, status, note):
            raise UnknownCheck(f"CheckID {check_id!r} does not have associated TTL")
        return empty_answer(self.registry.index)

    async def check_pass(self, request: Request) -> Response:
        return await self._ttl(request, Health.PASSING, request.query_params.get("note", ""))

    async def check_warn(self, request: Request) -> Response:
        return await self._ttl(request, Health.WARNING, request.query_params.get("note", ""))

    async def check_fail(self, request: Request) -> Response:
        return await self._ttl(request, Health.CRITICAL, request.query_params.get("note", ""))

    async def check_update(self, request: Request) -> Response:
        body = await read_json(request)
        if not isinstance(body, dict):
            raise ApiError(400, "InvalidJSON", "request body must be a JSON object")
        fields = {str(k).lower(): v for k, v in body.items()}
        status, output = fields.get("status"), fields.get("output", "")
        if status not in ("passing", "warning", "critical"):
            raise ApiError(400, "InvalidField", "Status must be passing, warning or critical")
        if not isinstance(output, str):
            raise ApiError(400, "InvalidField", "Output must be a string")
        return await self._ttl(request, Health(status), output)

    async def agent_services(self, request: Request) -> Response:
        no_filter(request)
        data = {h.registration.id: service_json(h, self.node) for h in self.registry.instances()}
        return json_answer(data, self.registry.index)

    async def agent_service(self, request: Request) -> Response:
        service_id = request.path_params["service_id"]
        h = self.registry.instance(service_id)
        if h is None:
            raise UnknownService(f"unknown service ID {service_id!r}")
        return json_answer(service_json(h, self.node), self.registry.index)

    async def agent_checks(self, request: Request) -> Response:
        no_filter(request)
        data = {
            c.spec.check_id: check_json(c, h.registration, self.node)
            for h in self.registry.instances()
            for c in h.checks
        }
        return json_answer(data, self.registry.index)

    async def agent_self(self, request: Request) -> Response:
        n = self.node
        data = {
            "Config": {
                "Datacenter": n.datacenter,
                "NodeName": n.name,
                "NodeID": n.node_id,
                "Server": True,
                "Version": "1.17.0",
                "Revision": "stackyard",
            },
            "Member": {
                "Name": n.name,
                "Addr": n.address,
                "Port": 8301,
                "Status": 1,
                "Tags": {"dc": n.datacenter, "role": "consul"},
            },
            "Meta": {},
        }
        return json_answer(data, self.registry.index)

    # -- catalog and health ------------------------------------------------------------

    async def _catalog_block(self, request: Request) -> int:
        return await block(request, self.registry.wait_for_change, lambda: self.registry.index)

    def _instances(self, request: Request, name: str) -> list[InstanceHealth]:
        tags = request.query_params.getlist("tag")
        out = self.registry.health(name)
        if tags:
            out = [h for h in out if all(t in h.registration.tags for t in tags)]
        return out

    async def catalog_services(self, request: Request) -> Response:
        index = await self._catalog_block(request)
        data = {name: list(tags) for name, tags in self.registry.services().items()}
        return json_answer(data, index)

    async def catalog_service(self, request: Request) -> Response:
        index = await self._catalog_block(request)
        entries = self._instances(request, request.path_params["name"])
        return json_answer([catalog_entry(h, self.node) for h in entries], index)

    async def catalog_nodes(self, request: Request) -> Response:
        index = await self._catalog_block(request)
        return json_answer([node_json(self.node)], index)

    async def catalog_datacenters(self, request: Request) -> Response:
        return json_answer([self.node.datacenter], self.registry.index)

    async def health_service(self, request: Request) -> Response:
        index = await self._catalog_block(request)
        entries = self._instances(request, request.path_params["name"])
        if flag(request, "passing"):
            entries = [h for h in entries if h.status is Health.PASSING]
        return json_answer([health_entry(h, self.node) for h in entries], index)

    async def health_checks(self, request: Request) -> Response:
        index = await self._catalog_block(request)
        entries = self.registry.health(request.path_params["name"])
        data = [check_json(c, h.registration, self.node) for h in entries for c in h.checks]
        return json_answer(data, index)

    async def health_state(self, request: Request) -> Response:
        state = request.path_params["state"]
        if state not in ("any", "passing", "warning", "critical"):
            raise ApiError(
                400, "InvalidParameter", "state must be any, passing, warning or critical"
            )
        index = await self._catalog_block(request)
        data = [node_check_json(self.node)] if state in ("any", "passing") else []
        for h in self.registry.instances():
            data.extend(
                check_json(c, h.registration, self.node)
                for c in h.checks
                if state == "any" or c.status.value == state
            )
        return json_answer(data, index)

    async def status_leader(self, request: Request) -> Response:
        return json_answer(f"{self.node.address}:8300", self.registry.index)

    async def status_peers(self, request: Request) -> Response:
        return json_answer([f"{self.node.address}:8300"], self.registry.index)

    # -- KV ----------------------------------------------------------------------------

    async def kv(self, request: Request) -> Response:
        if request.method == "PUT":
            return await self._kv_put(request)
        if request.method == "DELETE":
            return await self._kv_delete(request)
        return await self._kv_get(request)

    async def _kv_get(self, request: Request) -> Response:
        kv = self.registry.kv
        key = request.path_params["key"]
        index = await block(request, kv.wait_for_change, lambda: kv.index)
        if "keys" in request.query_params:
            keys = kv.keys(key, request.query_params.get("separator") or None)
            if not keys:
                return error_answer(404, "KeyNotFound", f"no keys under {key!r}", index)
            return json_answer(keys, index)
        if "recurse" in request.query_params:  # presence, as in Consul
            entries = kv.list_prefix(key)
            if not entries:
                return error_answer(404, "KeyNotFound", f"no keys under {key!r}", index)
            return json_answer([kv_json(e) for e in entries], index)
        entry = kv.get(key)
        if entry is None:
            return error_answer(404, "KeyNotFound", f"key {key!r} not found", index)
        if "raw" in request.query_params:
            return Response(
                entry.value,
                200,
                headers=index_headers(index),
                media_type="application/octet-stream",
            )
        return json_answer([kv_json(entry)], index)

    async def _kv_put(self, request: Request) -> Response:
        q = request.query_params
        if "acquire" in q or "release" in q:
            raise ApiError(400, "NotSupported", "KV sessions (acquire/release) are not supported")
        key = request.path_params["key"]
        if not key:
            raise ApiError(400, "InvalidParameter", "Missing key name")
        flags = uint_param(request, "flags", 0) or 0
        cas = uint_param(request, "cas")
        value = await read_body(request)
        ok = await self.registry.kv.put(key, value, flags=flags, cas=cas)
        return json_answer(ok, self.registry.kv.index)

    async def _kv_delete(self, request: Request) -> Response:
        key = request.path_params["key"]
        recurse = "recurse" in request.query_params
        if not key and not recurse:
            raise ApiError(400, "InvalidParameter", "Missing key name")
        cas = uint_param(request, "cas")
        ok = await self.registry.kv.delete(key, recurse=recurse, cas=cas)
        return json_answer(ok, self.registry.kv.index)


def consul_routes(registry: Registry, *, node: NodeInfo | None = None) -> list[BaseRoute]:
    """The Consul-compatible ``/v1/...`` routes over ``registry``."""
    api = _ConsulApi(registry, node or NodeInfo())
    g = api.guard
    put = ["PUT", "POST"]
    return [
        Route("/v1/agent/service/register", g(api.register), methods=put),
        Route("/v1/agent/service/deregister/{service_id:path}", g(api.deregister), methods=put),
        Route("/v1/agent/service/{service_id:path}", g(api.agent_service), methods=["GET"]),
        Route("/v1/agent/services", g(api.agent_services), methods=["GET"]),
        Route("/v1/agent/checks", g(api.agent_checks), methods=["GET"]),
        Route("/v1/agent/check/pass/{check_id:path}", g(api.check_pass), methods=put),
        Route("/v1/agent/check/warn/{check_id:path}", g(api.check_warn), methods=put),
        Route("/v1/agent/check/fail/{check_id:path}", g(api.check_fail), methods=put),
        Route("/v1/agent/check/update/{check_id:path}", g(api.check_update), methods=put),
        Route("/v1/agent/self", g(api.agent_self), methods=["GET"]),
        Route("/v1/catalog/services", g(api.catalog_services), methods=["GET"]),
        Route("/v1/catalog/service/{name:path}", g(api.catalog_service), methods=["GET"]),
        Route("/v1/catalog/nodes", g(api.catalog_nodes), methods=["GET"]),
        Route("/v1/catalog/datacenters", g(api.catalog_datacenters), methods=["GET"]),
        Route("/v1/health/service/{name:path}", g(api.health_service), methods=["GET"]),
        Route("/v1/health/checks/{name:path}", g(api.health_checks), methods=["GET"]),
        Route("/v1/health/state/{state}", g(api.health_state), methods=["GET"]),
        Route("/v1/status/leader", g(api.status_leader), methods=["GET"]),
        Route("/v1/status/peers", g(api.status_peers), methods=["GET"]),
        Route("/v1/kv/{key:path}", g(api.kv, kv=True), methods=["GET", "PUT", "DELETE"]),
    ]
