"""A small authoritative DNS server (dnslib) serving devstack/zone.txt on loopback.

Used by `make run` (DNS_NAMESERVERS=127.0.0.1:5353), the tests and the benchmarks:

    python -m devstack.dns_server --port 5353

It answers UDP and TCP on the same port. Behaviour, per query:

* names in a zone of zone.txt: the records (authoritative answer), NODATA with the zone's SOA
  in the authority section when the name exists without that type (or is an empty
  non-terminal), NXDOMAIN with the SOA otherwise. The SOA's TTL in negative answers is
  min(SOA TTL, SOA minimum) (RFC 2308), so a resolver can cache the negative answer.
* names outside every zone: REFUSED (authoritative-only server).
* `servfail.test` and names under it: SERVFAIL; `timeout.test` and names under it: no answer.
* server-wide knobs for tests (mutable while running): `mode` "normal" | "servfail" | "drop"
  and `delay_ms` (sleep before answering).

Every query received is recorded (`queries`, `query_count()`), so tests can assert that a
cached lookup cost no DNS traffic.
"""

from __future__ import annotations

import socketserver
import threading
import time
from pathlib import Path
from typing import Any

from dnslib import QTYPE, RCODE, RR, DNSError, DNSRecord
from dnslib.server import DNSHandler, DNSServer

from devstack.servers import LoopbackServer, bound_port, cli, serve_until_interrupted

DEFAULT_ZONE = Path(__file__).resolve().parent / "zone.txt"
SERVFAIL_NAMES = ("servfail.test",)
DROP_NAMES = ("timeout.test",)
MODES = ("normal", "servfail", "drop")


class _Drop(DNSError):
    """Raised by the resolver to send no reply (dnslib's handler swallows DNSError)."""


class _QuietLogger:
    """dnslib logger with every hook a no-op (the default prints every packet)."""

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: None


def _key(label: Any) -> str:
    return str(label).lower().rstrip(".")


def _under(name: str, suffixes: tuple[str, ...]) -> bool:
    return any(name == s or name.endswith("." + s) for s in suffixes)


class ZoneData:
    """The records of a zone file, indexed by owner name."""

    def __init__(self, text: str) -> None:
        self.records: dict[str, list[RR]] = {}
        for rr in RR.fromZone(text):
            self.records.setdefault(_key(rr.rname), []).append(rr)
        self.zones = {
            name for name, rrs in self.records.items() if any(r.rtype == QTYPE.SOA for r in rrs)
        }
        # every ancestor of an owner name exists in DNS (empty non-terminals)
        self.existing = set(self.records)
        for name in self.records:
            labels = name.split(".")
            for i in range(1, len(labels)):
                self.existing.add(".".join(labels[i:]))

    def zone_of(self, name: str) -> str | None:
        labels = name.split(".")
        for i in range(len(labels)):
            candidate = ".".join(labels[i:])
            if candidate in self.zones:
                return candidate
        return None

    def negative_soa(self, zone: str) -> RR:
        soa = next(r for r in self.records[zone] if r.rtype == QTYPE.SOA)
        ttl = min(soa.ttl, soa.rdata.times[4])  # (serial, refresh, retry, expire, minimum)
        return RR(soa.rname, QTYPE.SOA, rdata=soa.rdata, ttl=ttl)


class ZoneResolver:
    """dnslib resolver over ZoneData, with fault knobs and a query log."""

    def __init__(self, zone: ZoneData, delay_ms: int = 0, mode: str = "normal") -> None:
        self.zone = zone
        self.delay_ms = delay_ms
        self.mode = mode
        self.queries: list[tuple[str, str, str]] = []  # (name, type, protocol)
        self._lock = threading.Lock()

    def resolve(self, request: DNSRecord, handler: Any) -> DNSRecord:
        try:
            return self._resolve(request, handler)
        except DNSError:
            raise
        except Exception:  # noqa: BLE001 - a bug here must not look like a timeout
            reply = request.reply()
            reply.header.rcode = RCODE.SERVFAIL
            return reply

    def _resolve(self, request: DNSRecord, handler: Any) -> DNSRecord:
        qname = _key(request.q.qname)
        qtype = request.q.qtype
        with self._lock:
            self.queries.append((qname, QTYPE.get(qtype, str(qtype)), handler.protocol))
        mode = self.mode
        if mode == "drop" or _under(qname, DROP_NAMES):
            raise _Drop("dropped on purpose")
        if self.delay_ms:
            time.sleep(self.delay_ms / 1000)
        reply = request.reply()  # sets qr, aa, ra and copies the question
        if mode == "servfail" or _under(qname, SERVFAIL_NAMES):
            reply.header.rcode = RCODE.SERVFAIL
            reply.header.aa = 0
            return reply
        zone = self.zone.zone_of(qname)
        if zone is None:
            reply.header.rcode = RCODE.REFUSED
            reply.header.aa = 0
            return reply
        reply.header.ra = 0
        matches = [
            r for r in self.zone.records.get(qname, []) if r.rtype == qtype or qtype == QTYPE.ANY
        ]
        if matches:
            for r in matches:
                reply.add_answer(r)
            return reply
        if qname not in self.zone.existing:
            reply.header.rcode = RCODE.NXDOMAIN
        reply.add_auth(self.zone.negative_soa(zone))
        return reply


class DnsServer(LoopbackServer):
    """The zone server on `host:port` (port 0 = a free port), UDP and TCP, in background threads."""

    thread_name = "dns-server"

    def __init__(
        self,
        zone_path: str | Path = DEFAULT_ZONE,
        port: int = 0,
        delay_ms: int = 0,
        mode: str = "normal",
        host: str = "127.0.0.1",
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        super().__init__(host, port)
        self.resolver = ZoneResolver(
            ZoneData(Path(zone_path).read_text(encoding="utf-8")), delay_ms, mode
        )

    # knobs -------------------------------------------------------------------------------
    @property
    def mode(self) -> str:
        return self.resolver.mode

    @mode.setter
    def mode(self, value: str) -> None:
        if value not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        self.resolver.mode = value

    @property
    def delay_ms(self) -> int:
        return self.resolver.delay_ms

    @delay_ms.setter
    def delay_ms(self, value: int) -> None:
        self.resolver.delay_ms = int(value)

    @property
    def nameserver(self) -> str:
        """The "host:port" entry for DnsChecker / DNS_NAMESERVERS."""
        return self.address

    # query log ---------------------------------------------------------------------------
    @property
    def queries(self) -> list[tuple[str, str, str]]:
        with self.resolver._lock:
            return list(self.resolver.queries)

    def query_count(self, name: str | None = None, qtype: str | None = None) -> int:
        want = name.lower().rstrip(".") if name else None
        return sum(
            1
            for n, t, _ in self.queries
            if (want is None or n == want) and (qtype is None or t == qtype)
        )

    def clear_queries(self) -> None:
        with self.resolver._lock:
            self.resolver.queries.clear()

    # lifecycle (LoopbackServer) ----------------------------------------------------------
    def _bind(self, port: int) -> list[socketserver.BaseServer]:
        """UDP on `port` (0: a free one), then TCP on the same port."""

        def server(port: int, tcp: bool) -> socketserver.BaseServer:
            dns = DNSServer(
                self.resolver,
                address=self.host,
                port=port,
                tcp=tcp,
                logger=_QuietLogger(),
                handler=DNSHandler,
            )
            return dns.server

        udp = server(port, tcp=False)
        try:
            tcp = server(bound_port(udp), tcp=True)
        except OSError:
            udp.server_close()
            raise
        return [udp, tcp]


def main(argv: list[str] | None = None) -> None:
    parser = cli(__doc__, default_port=5353)
    parser.add_argument("--zone", default=str(DEFAULT_ZONE))
    parser.add_argument("--delay-ms", type=int, default=0)
    parser.add_argument("--mode", choices=MODES, default="normal")
    args = parser.parse_args(argv)
    server = DnsServer(args.zone, args.port, args.delay_ms, args.mode, args.host).start()
    serve_until_interrupted(
        server, f"dns server on {server.nameserver} (udp+tcp) serving {args.zone}"
    )


if __name__ == "__main__":
    main()
