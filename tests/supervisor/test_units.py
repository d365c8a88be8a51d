"""Pure pieces: the check derived from HealthConfig, the instance environment."""

from __future__ import annotations

from stackyard.config.models import HealthConfig, ServiceConfig
from stackyard.registry.base import Catalog
from stackyard.registry.models import Health, ServiceRegistration
from stackyard.supervisor import check_for, instance_env

from .conftest import SupervisorFactory


def test_http_check() -> None:
    health = HealthConfig(
        http="/healthz",
        interval=2,
        timeout=0.5,
        healthy_threshold=2,
        unhealthy_threshold=3,
        deregister_after=60,
    )
    check = check_for(health, "api-2", "127.0.0.1", 8001)
    assert check.check_id == "service:api-2"
    assert (check.kind, check.target) == ("http", "http://127.0.0.1:8001/healthz")
    assert (check.interval, check.timeout, check.ttl) == (2, 0.5, None)
    assert (check.success_before_passing, check.failures_before_critical) == (2, 3)
    assert check.deregister_after == 60
    assert check.initial_status is Health.CRITICAL


def test_tcp_and_ttl_checks() -> None:
    tcp = check_for(HealthConfig(tcp=True), "db-1", "::1", 5432)
    assert (tcp.kind, tcp.target) == ("tcp", "[::1]:5432")
    ttl = check_for(HealthConfig(ttl=15), "job-1", "127.0.0.1", 9000)
    assert (ttl.kind, ttl.ttl, ttl.target) == ("ttl", 15, "")


def test_instance_env_layers() -> None:
    env = instance_env(
        node_env={"PATH": "/bin", "HOME": "/root", "AWS_REGION": "node"},
        base_env={"AWS_REGION": "base", "STACKYARD_URL": "http://x", "PORT": "1"},
        service_env={"HOME": "/srv", "STACKYARD_SERVICE": "mine"},
        service="api",
        instance_id="api-3",
        port=8123,
    )
    assert env == {
        "PATH": "/bin",
        "HOME": "/srv",
        "AWS_REGION": "base",
        "STACKYARD_URL": "http://x",
        "PORT": "8123",
        "STACKYARD_SERVICE": "mine",  # the service's own env wins
        "STACKYARD_INSTANCE_ID": "api-3",
        "OTEL_SERVICE_NAME": "api",
        "OTEL_RESOURCE_ATTRIBUTES": "service.name=api,service.instance.id=api-3",
    }


async def test_start_forgets_stale_managed_registrations(
    catalog: Catalog, make_supervisor: SupervisorFactory
) -> None:
    stale = ServiceRegistration(id="web-7", name="web", meta={"managed": "stackyard"})
    foreign = ServiceRegistration(id="web-external", name="web", meta={"managed": "stackyard"})
    other = ServiceRegistration(id="web-8", name="web")
    for registration in (stale, foreign, other):
        await catalog.register(registration)
    supervisor = make_supervisor(
        {"web": ServiceConfig(command="exec sleep 300", replicas=0, health=HealthConfig(ttl=9))}
    )
    await supervisor.start()
    assert {h.registration.id for h in catalog.health("web")} == {"web-external", "web-8"}
