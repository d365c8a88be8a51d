"""The registry's DNS interface (UDP): Consul-style service lookups over any ``Catalog``.

Names, under the configured domain (``stackyard`` by default) and ``consul``:

- ``<name>.service.<domain>`` and ``<tag>.<name>.service.<domain>``: A / AAAA of the passing
  instances, SRV (port + target) with the targets' addresses in the additional section;
- ``_<name>._tcp.service.<domain>`` (RFC 2782; ``_<name>._<tag>`` filters by tag, as Consul);
- ``<hex ip>.addr.<dc>.<domain>``: the SRV targets themselves.

Only passing instances are answered, with TTL 0 and in random order (instances sharing an
address give one A record: RFC 2181 forbids duplicates in an RRset); a name with no passing
instance is NXDOMAIN (with the SOA in the authority section); names outside the domains are
REFUSED. Answers are trimmed to fit the UDP payload size (512, or the client's EDNS0 size).
Malformed packets get FORMERR when their header is readable and are dropped otherwise.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import random
from typing import cast

from dnslib import AAAA, EDNS0, QTYPE, RCODE, RR, SOA, SRV, A, DNSHeader, DNSLabel, DNSRecord

from .base import Catalog
from .models import Health, InstanceHealth

logger = logging.getLogger(__name__)

UDP_DEFAULT = 512
UDP_MAX = 4096


class DnsServer:
    """Answers service lookups from ``catalog`` on a UDP socket."""

    def __init__(
        self,
        catalog: Catalog,
        host: str = "127.0.0.1",
        port: int = 8600,
        domain: str = "stackyard",
        *,
        datacenter: str = "dc1",
        extra_domains: tuple[str, ...] = ("consul",),
    ) -> None:
        self.catalog = catalog
        self.host = host
        self.port = port
        self.datacenter = datacenter.lower()
        names = [domain, *extra_domains]
        self.domains = tuple(dict.fromkeys(d.strip(".").lower() for d in names if d.strip(".")))
        self._transport: asyncio.DatagramTransport | None = None

    async def start(self) -> None:
        if self._transport is not None:
            return
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _DnsProtocol(self), local_addr=(self.host, self.port)
        )
        self._transport = transport
        self.port = int(transport.get_extra_info("sockname")[1])

    async def stop(self) -> None:
        transport, self._transport = self._transport, None
        if transport is not None:
            transport.close()

    # -- answering -----------------------------------------------------------------------

    def handle(self, data: bytes) -> bytes | None:
        """One query packet → one answer packet (``None``: drop it)."""
        try:
            request = DNSRecord.parse(data)
        except Exception:
            return _formerr(data)
        if request.header.qr:
            return None  # an answer, not a query: never reply (no loops)
        reply = request.reply()
        reply.header.ra = 0
        size = UDP_DEFAULT
        for extra in request.ar:
            if extra.rtype == QTYPE.OPT:
                size = min(max(UDP_DEFAULT, int(extra.rclass)), UDP_MAX)
                reply.add_ar(EDNS0(udp_len=size))
        if request.header.opcode != 0:
            reply.header.rcode = RCODE.NOTIMP
        elif len(request.questions) != 1:
            reply.header.rcode = RCODE.FORMERR
        else:
            self._answer(request, reply, size)
        return _pack(reply, size)

    def _answer(self, request: DNSRecord, reply: DNSRecord, size: int) -> None:
        q = request.q
        qname = str(q.qname).rstrip(".").lower()
        domain = next((d for d in self.domains if qname == d or qname.endswith("." + d)), None)
        if domain is None:
            reply.header.rcode = RCODE.REFUSED
            return
        labels = qname.split(".")[: -len(domain.split("."))]
        if labels and labels[-1] == "service":
            parts = labels[:-1]
            found = self._service(reply, q.qtype, q.qname, parts, domain)
        elif len(labels) in (2, 3) and labels[1] == "addr":
            found = self._addr(reply, q.qtype, q.qname, labels[0])
        else:
            found = False
        if not found:
            reply.header.rcode = RCODE.NXDOMAIN
        if not reply.rr:
            reply.add_auth(_soa(domain))

    def _service(
        self, reply: DNSRecord, qtype: int, qname: DNSLabel, parts: list[str], domain: str
    ) -> bool:
        tag: str | None = None
        if len(parts) == 1:
            name = parts[0]
        elif len(parts) == 2 and parts[0].startswith("_") and parts[1].startswith("_"):
            name, proto = parts[0][1:], parts[1][1:]
            tag = None if proto == "tcp" else proto
        elif len(parts) == 2:
            tag, name = parts
        else:
            return False
        instances = self._passing(name, tag)
        if not instances:
            return False
        random.shuffle(instances)
        targets: set[str] = set()
        for h in instances:
            reg = h.registration
            ip = _ip(reg.address)
            if qtype == QTYPE.SRV:
                target = (
                    f"{ip.packed.hex()}.addr.{self.datacenter}.{domain}." if ip else reg.address
                )
                reply.add_answer(
                    RR(qname, QTYPE.SRV, ttl=0, rdata=SRV(1, 1, reg.port, target.rstrip(".") + "."))
                )
                if ip is not None and target not in targets:
                    targets.add(target)
                    reply.add_ar(_address_rr(target, ip))
            elif ip is not None and str(ip) not in targets and _wanted(qtype, ip):
                targets.add(str(ip))  # RFC 2181 §5: no duplicate records in an RRset
                reply.add_answer(_address_rr(qname, ip))
        return True

    def _passing(self, name: str, tag: str | None) -> list[InstanceHealth]:
        actual = next((n for n in self.catalog.services() if n.lower() == name), None)
        if actual is None:
            return []
        return [
            h
            for h in self.catalog.health(actual)
            if h.status is Health.PASSING
            and (tag is None or tag in (t.lower() for t in h.registration.tags))
        ]

    def _addr(self, reply: DNSRecord, qtype: int, qname: DNSLabel, hex_ip: str) -> bool:
        try:
            ip = ipaddress.ip_address(bytes.fromhex(hex_ip))
        except ValueError:
            return False
        if qtype in (QTYPE.A, QTYPE.AAAA, QTYPE.ANY) and (
            qtype == QTYPE.ANY or (qtype == QTYPE.A) == (ip.version == 4)
        ):
            reply.add_answer(_address_rr(qname, ip))
        return True


class _DnsProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: DnsServer) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, int]) -> None:
        try:
            answer = self.server.handle(data)
        except Exception:
            logger.exception("DNS query from %s failed", addr)
            answer = _formerr(data, RCODE.SERVFAIL)
        if answer is not None and self.transport is not None:
            self.transport.sendto(answer, addr)

    def error_received(self, exc: Exception) -> None:
        logger.debug("DNS socket error: %s", exc)


def _ip(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(address)
    except ValueError:
        return None


def _wanted(qtype: int, ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if qtype == QTYPE.ANY:
        return True
    wanted: int = QTYPE.A if ip.version == 4 else QTYPE.AAAA
    return qtype == wanted


def _address_rr(name: str | DNSLabel, ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> RR:
    if ip.version == 4:
        return RR(name, QTYPE.A, ttl=0, rdata=A(str(ip)))
    return RR(name, QTYPE.AAAA, ttl=0, rdata=AAAA(str(ip)))


def _soa(domain: str) -> RR:
    return RR(
        domain + ".",
        QTYPE.SOA,
        ttl=0,
        rdata=SOA(f"ns.{domain}.", f"hostmaster.{domain}.", (1, 3600, 600, 86400, 0)),
    )


def _pack(reply: DNSRecord, size: int) -> bytes:
    """Pack ``reply``, dropping answers (and their additional records) until it fits ``size``."""
    packed = bytes(reply.pack())
    while len(packed) > size and len(reply.rr) > 1:
        dropped = reply.rr.pop()
        if dropped.rtype == QTYPE.SRV:
            target = str(dropped.rdata.target).lower()
            if all(str(r.rdata.target).lower() != target for r in reply.rr):
                reply.ar = [r for r in reply.ar if str(r.rname).lower() != target]
        packed = bytes(reply.pack())
    return packed


def _formerr(data: bytes, rcode: int = RCODE.FORMERR) -> bytes | None:
    if len(data) < 12 or data[2] & 0x80:
        return None
    header = DNSHeader(id=int.from_bytes(data[:2], "big"), qr=1, rcode=rcode)
    packed = bytes(DNSRecord(header).pack())
    return packed
