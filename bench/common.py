"""Shared pieces of the benchmarks: local servers as child processes, the app's environment,
order bodies, statistics, quiet stdout.

Every server the app talks to runs in its own process (moto, the fake siteverify, the DNS
server), so CPU measured in the benchmark process is the handler's alone.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from devstack import inspect
from devstack.servers import free_port
from devstack.stack import die_with_parent, wait_until  # noqa: F401 - shared with benchmarks

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
PASS_SECRET = "1x0000000000000000000000000000000AA"  # Cloudflare's always-pass test secret
DUMMY_TOKEN = "XXXX.DUMMY.TOKEN.XXXX"  # the token test sitekeys hand out
BENCH_ZONE = "bench.test"


# --------------------------------------------------------------------------------------------
# statistics


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, int(round(p / 100 * len(ordered) + 0.5)) - 1))
    return ordered[k]


def summary(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50": statistics.median(values),
        "p95": percentile(values, 95),
        "p99": percentile(values, 99),
        "min": min(values),
        "max": max(values),
        "mean": statistics.fmean(values),
    }


# --------------------------------------------------------------------------------------------
# processes and ports


def http_json(url: str, body: Any = None, timeout: float = 30.0) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method="GET" if data is None else "POST")
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read() or b"null")


class Child:
    """A child process in its own session, stopped by its pid (SIGTERM, then SIGKILL)."""

    def __init__(self, name: str, args: list[str], env: dict[str, str] | None = None) -> None:
        self.name = name
        self.proc = subprocess.Popen(
            args,
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )

    def stop(self) -> None:
        if self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)


def bench_zone_file(path: Path, domains: int) -> list[str]:
    """A zone with `domains` distinct mail domains (MX only), so no verdict is ever cached:
    d0001.bench.test ... Returns the domain names."""
    names = [f"d{i:04d}.{BENCH_ZONE}" for i in range(1, domains + 1)]
    lines = [
        "$TTL 300",
        f"$ORIGIN {BENCH_ZONE}.",
        f"@ IN SOA ns1.{BENCH_ZONE}. hostmaster.{BENCH_ZONE}. 1 3600 600 86400 60",
        f"@ IN NS ns1.{BENCH_ZONE}.",
        "ns1 IN A 127.0.0.1",
        "mx1 IN A 127.0.0.1",
        f"@ IN MX 10 mx1.{BENCH_ZONE}.",
    ]
    lines += [f"{n.split('.')[0]} IN MX 10 mx1.{BENCH_ZONE}." for n in names]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return names


def forget_wiped_items() -> None:
    """After a moto reset: the app container's memory of the items just wiped (rate windows,
    full days: chalicelib/lastseen.py) goes too. DynamoDB never loses items, so no container
    ever remembers an item that vanished; kept, that memory would cost the next order one
    more transaction (the window it expects is gone): the harness's doing, not the app's.
    Clients, pools and the DNS cache stay warm."""
    services_mod = sys.modules.get("chalicelib.services")
    if services_mod is not None:
        services_mod.services().__dict__.pop("last_seen", None)  # a cached_property


class Servers:
    """moto (devstack.moto_server), the fake siteverify and the DNS server, each a child
    process on a free loopback port. `env` is what the app needs to use them."""

    def __init__(self, dns_delay_ms: int = 0, domains: int = 400) -> None:
        self.dns_delay_ms = dns_delay_ms
        self.domain_count = domains
        self.children: list[Child] = []
        self.tmp = tempfile.TemporaryDirectory(prefix="bench-")
        self.domains: list[str] = []

    def start(self) -> Servers:
        try:
            zone = Path(self.tmp.name) / "zone.txt"
            self.domains = bench_zone_file(zone, self.domain_count)
            self.moto_port, self.sv_port, self.dns_port = free_port(), free_port(), free_port()
            self.moto_url = f"http://127.0.0.1:{self.moto_port}"
            self.sv_base = f"http://127.0.0.1:{self.sv_port}"
            env = {"MOTO_ALLOW_NONEXISTENT_REGION": "1"}
            self.children.append(
                Child(
                    "moto",
                    [
                        PY,
                        "-m",
                        "devstack.moto_server",
                        "-H",
                        "127.0.0.1",
                        "-p",
                        str(self.moto_port),
                    ],
                    env,
                )
            )
            self.children.append(
                Child("siteverify", [PY, "-m", "devstack.siteverify", "--port", str(self.sv_port)])
            )
            dns_args = [PY, "-m", "devstack.dns_server", "--port", str(self.dns_port)]
            dns_args += ["--zone", str(zone), "--delay-ms", str(self.dns_delay_ms)]
            self.children.append(Child("dns", dns_args))
            wait_until(lambda: inspect.moto_data(self.moto_url, timeout=2) is not None, "moto")
            wait_until(
                lambda: http_json(self.sv_base + "/_requests", timeout=2) == [], "siteverify"
            )
            wait_until(self._dns_answers, "dns server")
            self.bootstrap()
        except BaseException:
            self.stop()
            raise
        return self

    def _dns_answers(self) -> bool:
        import dns.message
        import dns.query

        q = dns.message.make_query(f"d0001.{BENCH_ZONE}", "MX")
        return bool(dns.query.udp(q, "127.0.0.1", timeout=1, port=self.dns_port).answer)

    @property
    def env(self) -> dict[str, str]:
        return {
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": self.moto_url,
            "STAGE": "local",
            "BUSINESS_HOURS": "always",
            "EMAIL_TEST_ENVIRONMENT": "1",
            "TURNSTILE_SECRET": PASS_SECRET,
            "TURNSTILE_VERIFY_URL": self.sv_base + "/turnstile/v0/siteverify",
            "TURNSTILE_HOSTNAMES": "",
            "DNS_NAMESERVERS": f"127.0.0.1:{self.dns_port}",
            "DNS_TIMEOUT": "2",
            "RATE_LIMIT_IP": "10000000/600",
            "RATE_LIMIT_EMAIL": "10000000/600",
        }

    def bootstrap(self) -> None:
        from devstack.bootstrap import bootstrap

        bootstrap(self.moto_url, {**os.environ, **self.env})

    def reset_moto(self) -> None:
        """Empty every moto table (moto answers a Query by walking every item of the table, so
        a growing table slows every order down; real DynamoDB does not)."""
        req = urllib.request.Request(self.moto_url + "/moto-api/reset", method="POST", data=b"")
        urllib.request.urlopen(req, timeout=30).read()
        self.bootstrap()
        forget_wiped_items()

    def siteverify_delay(self, ms: int) -> None:
        http_json(self.sv_base + "/_control", {"delay_ms": ms})

    def siteverify_requests(self) -> int:
        return len(http_json(self.sv_base + "/_requests"))

    def stop(self) -> None:
        for child in reversed(self.children):
            child.stop()
        self.children.clear()
        self.tmp.cleanup()

    def __enter__(self) -> Servers:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def app_env(env: dict[str, str]) -> Iterator[None]:
    """Set the app's environment variables for the block (settings are read lazily)."""
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def quiet_stdout() -> Iterator[None]:
    """The app logs one JSON line per decision to stdout: send it to /dev/null meanwhile."""
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        yield


def order_body(email: str, name: str = "Bench Shopper") -> dict[str, Any]:
    """The test suite's standard order, for `email` (one shape everywhere)."""
    from tests.helpers import order_body as base

    return base(email=email, name=name, turnstile_token=DUMMY_TOKEN)


def machine() -> dict[str, Any]:
    import platform

    cpu = platform.processor() or ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
