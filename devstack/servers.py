"""The lifecycle shared by the local fakes (devstack/dns_server.py, devstack/siteverify.py).

A `LoopbackServer` binds one or more socketservers on `host:port` (port 0 = a free port, the
same one for all of them), serves each in a daemon thread and stops them all:

    with DnsServer() as dns: ...            # or .start() / .stop()

Subclasses implement `_bind(port)` (return the bound socketservers, raise OSError when the
port is taken) and may override `_stopping()` (release requests still held before shutdown).
`cli()` and `serve_until_interrupted()` are the shared `python -m devstack.<fake>` entry point:
--host / --port, a one-line banner, serve until SIGINT (how devstack.stack stops its children).
"""

from __future__ import annotations

import argparse
import socket
import socketserver
import threading
import time
from typing import Any, Self

BIND_ATTEMPTS = 20  # port 0: the free port of one socket may be taken for another; try again


def free_port() -> int:
    """A port free for both TCP and UDP on 127.0.0.1 right now (the DNS server needs both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
            t.bind(("127.0.0.1", 0))
            port = int(t.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                try:
                    u.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port
    raise RuntimeError("no free port")


def bound_port(server: socketserver.BaseServer) -> int:
    """The port a bound IPv4/IPv6 socketserver listens on."""
    address = server.server_address
    assert isinstance(address, tuple)
    return int(address[1])


class LoopbackServer:
    """Background socketservers on one `host:port`; start()/stop(), also a context manager."""

    thread_name = "loopback-server"

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self._requested_port = port
        self._port: int | None = None
        self._servers: list[socketserver.BaseServer] = []

    def _bind(self, port: int) -> list[socketserver.BaseServer]:
        """Bind every socket on `port` (0 = pick one); raise OSError if it can't."""
        raise NotImplementedError

    def _stopping(self) -> None:
        """Called first in stop(): release requests the server is holding (none by default)."""

    @property
    def port(self) -> int:
        """The bound port (the last one after stop())."""
        if self._port is None:
            raise RuntimeError("not started")
        return self._port

    @property
    def address(self) -> str:
        """The "host:port" it listens on."""
        return f"{self.host}:{self.port}"

    def start(self) -> Self:
        last: OSError | None = None
        for _ in range(1 if self._requested_port else BIND_ATTEMPTS):
            try:
                servers = self._bind(self._requested_port)
            except OSError as e:
                if self._requested_port:
                    raise
                last = e
                continue
            self._servers = servers
            self._port = bound_port(servers[0])
            for s in servers:
                threading.Thread(
                    target=s.serve_forever,
                    kwargs={"poll_interval": 0.05},  # quick stop()
                    name=self.thread_name,
                    daemon=True,
                ).start()
            return self
        raise RuntimeError(f"could not bind on one port: {last}")

    def stop(self) -> None:
        self._stopping()
        for s in self._servers:
            s.shutdown()
            s.server_close()
        self._servers = []

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def cli(doc: str, default_port: int) -> argparse.ArgumentParser:
    """The parser of a fake's `python -m` entry point: --host, --port (add your own)."""
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=default_port)
    return parser


def serve_until_interrupted(server: LoopbackServer, banner: str) -> None:
    """Print `banner`, then keep the started `server` up until SIGINT (Ctrl-C), then stop it."""
    try:
        print(banner, flush=True)  # inside: a SIGINT right after the banner still stops it
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


def serve_forever_until_interrupted(server: Any) -> None:
    """`server.serve_forever()` in this thread until Ctrl-C (SIGINT), then close its socket."""
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
