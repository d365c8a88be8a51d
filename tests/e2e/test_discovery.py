"""Discovery on a real node: a real Consul client library and a real DNS resolver."""

from __future__ import annotations

import threading
import time

import consul
import dns.resolver
import pytest

from stackyard.testing import NodeProcess, wait_until


def test_consul_client_registers_passes_reads_and_blocks(shop: NodeProcess) -> None:
    client = consul.Consul(host="127.0.0.1", port=shop.control_port)
    client.agent.service.register(
        "billing", service_id="billing-ext-1", address="127.0.0.1", port=7001,
        tags=["v1"], check=consul.Check.ttl("30s"),
    )  # fmt: skip
    _, entries = client.health.service("billing", passing=True)
    assert entries == []
    client.agent.check.ttl_pass("service:billing-ext-1")
    _, entries = client.health.service("billing", passing=True)
    assert [e["Service"]["ID"] for e in entries] == ["billing-ext-1"]
    _, services = client.catalog.services()
    assert services["billing"] == ["v1"] and "catalog" in services

    assert client.kv.put("shop/config/currency", "EUR")
    _, entry = client.kv.get("shop/config/currency")
    assert entry["Value"] == b"EUR"
    index = int(entry["ModifyIndex"])

    def change_soon() -> None:
        time.sleep(0.3)
        threading.Thread(target=client.kv.put, args=("shop/config/currency", "USD")).start()

    threading.Thread(target=change_soon).start()
    started = time.monotonic()
    new_index, entry = client.kv.get("shop/config/currency", index=index, wait="20s")
    elapsed = time.monotonic() - started
    assert entry["Value"] == b"USD" and int(new_index) > index
    assert elapsed < 2.0, elapsed

    client.agent.service.deregister("billing-ext-1")
    _, entries = client.health.service("billing")
    assert entries == []


@pytest.fixture
def resolver(shop: NodeProcess) -> dns.resolver.Resolver:
    res = dns.resolver.Resolver(configure=False)
    res.nameservers = ["127.0.0.1"]
    res.port = shop.dns_port
    res.lifetime = 3
    return res


def test_dns_a_and_srv_answers_list_passing_instances(
    shop: NodeProcess, resolver: dns.resolver.Resolver
) -> None:
    def passing_ports() -> set[int]:
        return {i["port"] for i in shop.instances("catalog") if i["health"] == "passing"}

    ports = wait_until(lambda: len(passing_ports()) == 2 and passing_ports(), 10, what="2 passing")
    answer = resolver.resolve("catalog.service.stackyard", "A")
    assert {r.address for r in answer} == {"127.0.0.1"}  # one record per distinct address
    srv = resolver.resolve("_catalog._tcp.service.stackyard", "SRV")
    assert {r.port for r in srv} == ports
    with pytest.raises(dns.resolver.NXDOMAIN):
        resolver.resolve("nosuch.service.stackyard", "A")
