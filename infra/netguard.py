"""A process-wide guard: sockets may only reach loopback (used by `make rehearse`).

`install()` wraps `socket.socket.connect` / `connect_ex` / `sendto` and `socket.getaddrinfo`:
an IPv4 address outside 127.0.0.0/8, an IPv6 address other than ::1, a Unix socket (e.g.
Docker's) or a host name other than `localhost` raises `NetworkRefused` and is recorded.
Every allowed destination is counted too, so the caller can report both.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections import Counter
from typing import Any

allowed: Counter[str] = Counter()
refused: list[str] = []
_lock = threading.Lock()
_installed = False


class NetworkRefused(OSError):
    """A connection to something other than loopback was attempted."""


def _loopback_host(host: Any) -> bool:
    if isinstance(host, bytes):
        host = host.decode()
    if not isinstance(host, str):
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def _check(address: Any, family: int) -> None:
    if family == getattr(socket, "AF_UNIX", None):
        where = f"unix:{address}"
        ok = False
    elif isinstance(address, tuple) and address:
        where = f"{address[0]}:{address[1] if len(address) > 1 else ''}"
        ok = _loopback_host(address[0])
    else:
        where, ok = repr(address), False
    with _lock:
        if ok:
            allowed[where] += 1
        else:
            refused.append(where)
    if not ok:
        raise NetworkRefused(f"netguard: refused a connection to {where} (loopback only)")


def install() -> None:
    global _installed
    if _installed:
        return
    _installed = True
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex
    real_sendto = socket.socket.sendto
    real_getaddrinfo = socket.getaddrinfo

    def connect(self: socket.socket, address: Any) -> None:
        _check(address, self.family)
        real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        _check(address, self.family)
        return real_connect_ex(self, address)

    def sendto(self: socket.socket, data: Any, *args: Any) -> int:
        _check(args[-1], self.family)
        return real_sendto(self, data, *args)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host is not None and not _loopback_host(host):
            with _lock:
                refused.append(f"resolve:{host!r}")
            raise NetworkRefused(f"netguard: refused to resolve {host!r} (loopback only)")
        return real_getaddrinfo(host, *args, **kwargs)

    socket.socket.connect = connect  # type: ignore[method-assign, assignment]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign, assignment]
    socket.socket.sendto = sendto  # type: ignore[method-assign, assignment]
    socket.getaddrinfo = getaddrinfo


def summary() -> str:
    with _lock:
        hosts = sorted({w.rsplit(":", 1)[0] for w in allowed})
        return (
            f"{sum(allowed.values())} connections/datagrams to {len(allowed)} loopback ports "
            f"(hosts: {', '.join(hosts)}); "
            f"{len(refused)} refused{': ' + ', '.join(refused[:5]) if refused else ''}"
        )
