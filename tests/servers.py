"""Real local servers for tests: a moto server subprocess, a proxy that loses an answer."""

from __future__ import annotations

import http.server
import os
import socketserver
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from devstack import inspect
from devstack.servers import LoopbackServer, free_port
from devstack.stack import die_with_parent, http_ok, wait_until

__all__ = ["LostResponseProxy", "MotoServer", "app_behind", "free_port", "wait_http"]


@contextmanager
def app_behind(proxy: LostResponseProxy, monkeypatch: Any) -> Iterator[LostResponseProxy]:
    """The app's AWS clients talk to `proxy` (AWS_ENDPOINT_URL) inside the block: fresh
    clients before and after, so no pooled connection goes around the proxy or outlives it."""
    from chalicelib import aws as aws_clients

    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
    aws_clients.reset_clients()
    try:
        yield proxy
    finally:
        aws_clients.reset_clients()


def wait_http(url: str, timeout: float = 20.0) -> None:
    """Wait until `url` answers 2xx/3xx."""
    wait_until(lambda: http_ok(url), url, timeout)


class MotoServer:
    """`python -m moto.server` on a free loopback port."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> MotoServer:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "devstack.moto_server", "-H", "127.0.0.1", "-p", str(self.port)],
            cwd=str(Path(__file__).resolve().parent.parent),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "MOTO_ALLOW_NONEXISTENT_REGION": "1"},
            preexec_fn=die_with_parent,
        )
        wait_http(self.url + "/moto-api/data.json")
        return self

    def stop(self) -> None:
        if self.proc:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def client(self, service: str) -> Any:
        """A boto3 client for this server."""
        return inspect.client(service, self.url)

    def reset(self) -> None:
        req = urllib.request.Request(self.url + "/moto-api/reset", method="POST", data=b"")
        urllib.request.urlopen(req, timeout=10).read()

    def data(self) -> dict[str, Any]:
        return inspect.moto_data(self.url, timeout=120)

    def sent_mail(self) -> list[dict[str, Any]]:
        """Every email moto's SES recorded, oldest first."""
        return inspect.sent_mail(self.url, timeout=120)

    def orders(self, table: str = "orders", limit: int = 500) -> list[dict[str, Any]]:
        """Every order item in `table`."""
        return inspect.orders(self.url, table, limit)


class LostResponseProxy(LoopbackServer):
    """An HTTP proxy in front of a real server (moto) that can lose one answer.

    Every request is forwarded as it is. The first request whose `X-Amz-Target` header ends
    with `.{operation}` (e.g. "TransactWriteItems") is forwarded and *applied* by the server,
    then its answer is held for `hold_seconds` (past the client's read timeout) and the
    connection is closed without one: the client sees a read timeout for a write that did
    happen, and botocore retries it. `lost` counts the answers lost; `seen` every target.

    With `answer`, that request never reaches the server: the proxy answers it itself,
    `answer_status` (200) with `answer` as the body (a reply the SDK parses but the app can't
    use).

    With `release_when`, nothing is lost: that request's answer is held until
    `release_when()` is true (polled) or `hold_seconds` pass, then delivered; `released`
    records, per held answer, whether the condition came true (an order of events, not a
    stopwatch: "B happened while A's answer was still on its way").
    """

    thread_name = "lost-response-proxy"

    def __init__(
        self,
        upstream: str,
        operation: str,
        hold_seconds: float = 2.5,
        answer: bytes | None = None,
        answer_status: int = 200,
        release_when: Callable[[], bool] | None = None,
    ) -> None:
        super().__init__()
        self.upstream = upstream.rstrip("/")
        self.operation = operation
        self.hold_seconds = hold_seconds
        self.answer = answer
        self.answer_status = answer_status
        self.release_when = release_when
        self.lost = 0
        self.released: list[bool] = []
        self.seen: list[str] = []
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def _hold_until(self, condition: Callable[[], bool]) -> bool:
        end = time.monotonic() + self.hold_seconds
        while time.monotonic() < end:
            if condition():
                return True
            time.sleep(0.005)
        return bool(condition())

    def _bind(self, port: int) -> list[socketserver.BaseServer]:
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                target = self.headers.get("X-Amz-Target", "")
                with proxy._lock:
                    proxy.seen.append(target)
                    lose = target.endswith("." + proxy.operation) and proxy.lost == 0
                    if lose:
                        proxy.lost += 1
                if lose and proxy.answer is not None:  # answered here, never forwarded
                    self.send_response(proxy.answer_status)
                    self.send_header("Content-Type", "application/x-amz-json-1.0")
                    self.send_header("Content-Length", str(len(proxy.answer)))
                    self.end_headers()
                    self.wfile.write(proxy.answer)
                    return
                headers = {
                    k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")
                }
                req = urllib.request.Request(
                    proxy.upstream + self.path, data=body, method=self.command, headers=headers
                )
                try:
                    with urllib.request.urlopen(req, timeout=30) as r:
                        status, rh, data = r.status, r.headers.items(), r.read()
                except urllib.error.HTTPError as e:
                    status, rh, data = e.code, e.headers.items(), e.read()
                if lose and proxy.release_when is not None:  # held until the condition
                    proxy.released.append(proxy._hold_until(proxy.release_when))
                elif lose:  # the write is applied; its answer never arrives
                    time.sleep(proxy.hold_seconds)
                    self.close_connection = True
                    return
                self.send_response(status)
                for k, v in rh:
                    if k.lower() not in ("content-length", "connection", "transfer-encoding"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _forward

        server = http.server.ThreadingHTTPServer((self.host, port), Handler)
        server.daemon_threads = True
        return [server]
