"""The whole local stack as one object: moto, siteverify, DNS, chalice local, dev web server.

`make run` uses it through `python -m devstack.run`; the smoke and browser tests start it
on free ports. Every child runs in its own process group and is stopped with SIGINT, then
SIGKILL, so nothing is orphaned.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from devstack import inspect
from devstack.servers import free_port

ROOT = Path(__file__).resolve().parent.parent
TEST_SITEKEY = "1x00000000000000000000AA"


def _port(env: dict[str, str], name: str, default: int | None) -> int:
    """`make run` (a fixed default): $NAME overrides it. Tests (no default): a free port."""
    if default is None:
        return free_port()
    raw = env.get(name)
    return int(raw) if raw else default


def die_with_parent() -> None:
    """preexec_fn: have the kernel stop this child if the process that started it dies
    (a killed test run or a killed `make run` leaves no orphans). Linux only; a no-op elsewhere."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    """Send `sig` to the process group of `proc` (started with start_new_session), if any."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)


class StackDied(RuntimeError):
    """A child process exited while we waited for it."""


def wait_until(check: Any, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except StackDied:
            raise
        except Exception as e:  # noqa: BLE001 - keep polling until the deadline
            last = e
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not come up in {timeout:.0f}s ({last})")


def http_ok(url: str) -> bool:
    """`url` answers 2xx/3xx (urlopen raises on anything else)."""
    with urllib.request.urlopen(url, timeout=2) as r:
        return 200 <= r.status < 500


def _udp_port_bound(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


class Stack:
    """Start with `.start()`, stop with `.stop()` (also a context manager)."""

    def __init__(self, env: dict[str, str] | None = None, fixed_ports: bool = False) -> None:
        base = {**os.environ, **(env or {})}
        default = (lambda p: p) if fixed_ports else (lambda p: None)  # noqa: E731
        self.web_port = _port(base, "WEB_PORT", default(8000))
        self.moto_port = _port(base, "MOTO_PORT", default(4566))
        self.chalice_port = _port(base, "CHALICE_PORT", default(8001))
        self.siteverify_port = _port(base, "SITEVERIFY_PORT", default(8788))
        self.dns_port = _port(base, "DNS_PORT", default(5353))
        self.url = f"http://127.0.0.1:{self.web_port}"
        self.moto_url = f"http://127.0.0.1:{self.moto_port}"
        self.chalice_url = f"http://127.0.0.1:{self.chalice_port}"
        self.siteverify_url = f"http://127.0.0.1:{self.siteverify_port}/turnstile/v0/siteverify"
        self.env = {
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "STAGE": "local",
            "EMAIL_TEST_ENVIRONMENT": "1",
            "DEVSERVER_QUIET": "1",
            "PYTHONUNBUFFERED": "1",
            **base,
            "AWS_ENDPOINT_URL": self.moto_url,
            # links in emails point at this stack's own web server
            "PUBLIC_BASE_URL": base.get("PUBLIC_BASE_URL") or f"http://127.0.0.1:{self.web_port}",
            "TURNSTILE_VERIFY_URL": self.siteverify_url,
            "DNS_NAMESERVERS": f"127.0.0.1:{self.dns_port}",
        }
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []
        # `make run` logs to .devstack/; stacks on free ports (tests) each get their own folder
        self.log_dir = ROOT / ".devstack" / ("" if fixed_ports else f"stack-{self.web_port}")

    # --- lifecycle ------------------------------------------------------------------
    def _spawn(self, name: str, args: list[str], quiet: bool = True) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        out = open(self.log_dir / f"{name}.log", "ab") if quiet else None  # noqa: SIM115
        proc = subprocess.Popen(
            args,
            cwd=ROOT,
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT if quiet else None,
            start_new_session=True,
            preexec_fn=die_with_parent,  # noqa: PLW1509 - no threads started yet in the child
        )
        self.procs.append((name, proc))

    def start(self, quiet: bool = True) -> Stack:
        py = sys.executable
        try:
            self._spawn(
                "moto",
                [py, "-m", "devstack.moto_server", "-H", "127.0.0.1", "-p", str(self.moto_port)],
            )
            self._spawn(
                "siteverify",
                [py, "-m", "devstack.siteverify", "--port", str(self.siteverify_port)],
            )
            self._spawn("dns", [py, "-m", "devstack.dns_server", "--port", str(self.dns_port)])
            wait_until(lambda: http_ok(self.moto_url + "/moto-api/data.json"), "moto server")
            from devstack.bootstrap import bootstrap

            bootstrap(self.moto_url, self.env)
            self._spawn(
                "chalice",
                # chalice local, with our error shape for unknown routes/methods
                [
                    py,
                    "-m",
                    "devstack.chalice_local",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.chalice_port),
                    "--stage",
                    "local",
                ],
                quiet=quiet,
            )
            self._spawn(
                "web",
                [
                    py,
                    "-m",
                    "devstack.devserver",
                    "--port",
                    str(self.web_port),
                    "--chalice-url",
                    self.chalice_url,
                    "--moto-url",
                    self.moto_url,
                    "--sitekey",
                    TEST_SITEKEY,
                ],
            )
            wait_until(
                lambda: self._alive() and http_ok(self.chalice_url + "/catalog"),
                "chalice local",
                60,
            )
            wait_until(lambda: http_ok(self.url + "/api/catalog"), "dev web server")
            wait_until(
                lambda: http_ok(self.siteverify_url.rsplit("/", 3)[0] + "/_requests"),
                "siteverify server",
            )
            wait_until(lambda: _udp_port_bound(self.dns_port), "dns server")
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for _, proc in reversed(self.procs):
            if proc.poll() is None:
                signal_group(proc, signal.SIGINT)
        deadline = time.monotonic() + 5
        for _, proc in self.procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                signal_group(proc, signal.SIGKILL)
                proc.wait(5)
        self.procs.clear()

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _alive(self) -> bool:
        dead = self.dead()
        if dead:
            raise StackDied(f"{', '.join(dead)} exited; see {self.log_dir}")
        return True

    def dead(self) -> list[str]:
        return [name for name, p in self.procs if p.poll() is not None]

    # --- inspection -------------------------------------------------------------------
    def sent_mail(self, timeout: float = 10.0) -> list[dict[str, Any]]:
        """moto's recorded emails, oldest first (a big state wants a longer `timeout`)."""
        return inspect.sent_mail(self.moto_url, timeout)

    def orders(self, limit: int = 500) -> list[dict[str, Any]]:
        """Every order item in the local orders table (at most `limit`)."""
        return inspect.orders(self.moto_url, self.env.get("ORDERS_TABLE", "orders"), limit)
