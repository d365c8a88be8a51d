"""DNS answers checked with dnspython against the real UDP server."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import dns.asyncquery
import dns.message
import dns.rcode
import dns.rdatatype
import dns.resolver
import pytest

from stackyard.registry import CheckSpec, DnsServer, Health, Registry, ServiceRegistration


@pytest.fixture
async def dns_server(registry: Registry) -> AsyncIterator[DnsServer]:
    server = DnsServer(registry, "127.0.0.1", 0)
    await server.start()
    for i, status in enumerate((Health.PASSING, Health.PASSING, Health.CRITICAL), start=1):
        spec = CheckSpec(f"web-{i}-ttl", "ttl", ttl=60, initial_status=status)
        await registry.register(
            ServiceRegistration(
                id=f"web-{i}",
                name="web",
                address=f"10.0.0.{i}",
                port=8000 + i,
                tags=("v1",) if i == 1 else ("v2",),
                checks=(spec,),
            )
        )
    await registry.register(
        ServiceRegistration(
            id="down-1",
            name="down",
            address="10.0.1.1",
            port=1,
            checks=(CheckSpec("down-ttl", "ttl", ttl=60),),
        )
    )
    try:
        yield server
    finally:
        await server.stop()


async def query(server: DnsServer, name: str, rdtype: str) -> dns.message.Message:
    q = dns.message.make_query(name, rdtype)
    return await dns.asyncquery.udp(q, "127.0.0.1", port=server.port, timeout=2)


def rrset_values(msg: dns.message.Message, section: str = "answer") -> set[str]:
    return {rd.to_text() for rrset in getattr(msg, section) for rd in rrset}


async def test_a_records_are_passing_only(dns_server: DnsServer) -> None:
    answer = await query(dns_server, "web.service.stackyard.", "A")
    assert answer.rcode() == dns.rcode.NOERROR
    assert rrset_values(answer) == {"10.0.0.1", "10.0.0.2"}
    assert all(rrset.ttl == 0 for rrset in answer.answer)
    # the Consul domain works too, and names are case-insensitive
    answer = await query(dns_server, "WEB.service.consul.", "A")
    assert rrset_values(answer) == {"10.0.0.1", "10.0.0.2"}
    answer = await query(dns_server, "v2.web.service.stackyard.", "A")
    assert rrset_values(answer) == {"10.0.0.2"}


async def test_srv_records_with_additional_addresses(dns_server: DnsServer) -> None:
    for name in ("web.service.stackyard.", "_web._tcp.service.stackyard."):
        answer = await query(dns_server, name, "SRV")
        assert answer.rcode() == dns.rcode.NOERROR
        srv = sorted((rd.port, rd.target.to_text()) for rrset in answer.answer for rd in rrset)
        assert [port for port, _ in srv] == [8001, 8002]
        additional = {
            rrset.name.to_text(): {rd.to_text() for rd in rrset} for rrset in answer.additional
        }
        for _, target in srv:
            assert target in additional
        assert set().union(*additional.values()) == {"10.0.0.1", "10.0.0.2"}
        # the SRV target resolves
        target = srv[0][1]
        target_answer = await query(dns_server, target, "A")
        assert rrset_values(target_answer) == {"10.0.0.1"}


async def test_resolver_with_custom_port(dns_server: DnsServer) -> None:
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = ["127.0.0.1"]
    resolver.port = dns_server.port
    resolver.lifetime = 2
    answer = await asyncio.to_thread(resolver.resolve, "web.service.stackyard", "A")
    assert {rd.to_text() for rd in answer} == {"10.0.0.1", "10.0.0.2"}
    with pytest.raises(dns.resolver.NXDOMAIN):
        await asyncio.to_thread(resolver.resolve, "nope.service.stackyard", "A")


async def test_nxdomain_for_unknown_and_unhealthy(dns_server: DnsServer) -> None:
    for name in ("nope.service.stackyard.", "down.service.stackyard.", "x.y.z.stackyard."):
        answer = await query(dns_server, name, "A")
        assert answer.rcode() == dns.rcode.NXDOMAIN, name
        assert answer.authority, "negative answers carry the SOA"
    answer = await query(dns_server, "example.com.", "A")
    assert answer.rcode() == dns.rcode.REFUSED


async def test_answer_follows_health_changes(registry: Registry, dns_server: DnsServer) -> None:
    await registry.update_ttl("web-3-ttl", Health.PASSING)
    answer = await query(dns_server, "web.service.stackyard.", "A")
    assert rrset_values(answer) == {"10.0.0.1", "10.0.0.2", "10.0.0.3"}


async def test_malformed_packets_never_crash(dns_server: DnsServer) -> None:
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setblocking(False)
    sock.connect(("127.0.0.1", dns_server.port))
    try:
        for junk in (b"", b"\x00", b"\x12\x34" + b"\x00" * 4 + b"\xff" * 30, b"\xab\xcd" * 200):
            sock.send(junk)
        # a header-readable junk packet gets FORMERR with its ID
        sock.send(b"\x12\x34\x01\x00\x00\x05" + b"\x00" * 6 + b"\x03abc")
        reply = await asyncio.wait_for(loop.sock_recv(sock, 4096), 2)
        assert reply[:2] in (b"\x12\x34", b"\xab\xcd")
    finally:
        sock.close()
    # and the server still answers
    answer = await query(dns_server, "web.service.stackyard.", "A")
    assert answer.rcode() == dns.rcode.NOERROR


async def test_instances_sharing_an_address_give_one_a_record(registry: Registry) -> None:
    server = DnsServer(registry, "127.0.0.1", 0)
    await server.start()
    try:
        for i in (1, 2):
            await registry.register(ServiceRegistration(id=f"c-{i}", name="c", port=9000 + i))
        raw = server.handle(dns.message.make_query("c.service.stackyard.", "A").to_wire())
        assert raw is not None
        answer = dns.message.from_wire(raw)
        assert [rd.to_text() for rrset in answer.answer for rd in rrset] == ["127.0.0.1"]
        assert sum(len(rrset) for rrset in answer.answer) == 1
        srv = await query(server, "_c._tcp.service.stackyard.", "SRV")
        assert sorted(rd.port for rrset in srv.answer for rd in rrset) == [9001, 9002]
        assert rrset_values(srv, "additional") == {"127.0.0.1"}
    finally:
        await server.stop()
