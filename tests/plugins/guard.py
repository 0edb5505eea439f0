"""pytest fixtures for the guard tests: a real DNS server and a real siteverify server on loopback.

* `dns_server`: devstack/zone.txt served by dnslib (UDP+TCP) on a free port; `.nameserver` is
  the "127.0.0.1:port" entry for DnsChecker / DNS_NAMESERVERS; `.queries` / `.query_count()`
  count what it received; `.mode` / `.delay_ms` can be changed while it runs.
* `slow_dns_server`: the same server, but it never answers (mode "drop").
* `siteverify`: the fake Cloudflare siteverify (`.url`, `.control()`, `.requests()`).
* `guard_env`: both servers plus the environment variables the app reads for them.

The DNS verdict cache is process-wide: these fixtures clear it before and after each test.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chalicelib.recipients import clear_cache
from devstack.dns_server import DnsServer
from devstack.siteverify import PASS_SECRET, SiteverifyServer


@pytest.fixture()
def dns_server() -> Iterator[DnsServer]:
    clear_cache()
    server = DnsServer().start()
    yield server
    server.stop()
    clear_cache()


@pytest.fixture()
def slow_dns_server() -> Iterator[DnsServer]:
    """Receives queries and never answers (an unreachable/overloaded resolver)."""
    clear_cache()
    server = DnsServer(mode="drop").start()
    yield server
    server.stop()
    clear_cache()


@pytest.fixture()
def siteverify() -> Iterator[SiteverifyServer]:
    server = SiteverifyServer().start()
    yield server
    server.stop()


@pytest.fixture()
def guard_env(
    dns_server: DnsServer, siteverify: SiteverifyServer, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """Point the app's bot guard and recipient checks at the local servers (test secret that
    always passes; the browser-side test sitekey 1x00000000000000000000AA yields the token
    devstack.siteverify.DUMMY_TOKEN)."""
    env = {
        "TURNSTILE_SECRET": PASS_SECRET,
        "TURNSTILE_VERIFY_URL": siteverify.url,
        "TURNSTILE_HOSTNAMES": "",  # Cloudflare's test secrets report hostname example.com
        "TURNSTILE_TIMEOUT": "2",
        "DNS_NAMESERVERS": dns_server.nameserver,
        "DNS_TIMEOUT": "1",
        "EMAIL_TEST_ENVIRONMENT": "1",
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return env
