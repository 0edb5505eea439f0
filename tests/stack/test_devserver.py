"""The dev web server (port 8000's role) over raw sockets: every request gets an HTTP answer,
with exactly one Server and one Date header, the security headers of infra/security_headers.json,
the local config and the Turnstile stand-in; 50 concurrent clients are all answered."""

from __future__ import annotations

import json
import socket
import threading
import urllib.parse
from typing import Any

import pytest

from devstack.devserver import STANDIN_PATH, security_headers
from devstack.siteverify import DUMMY_TOKEN
from devstack.stack import ROOT, Stack
from tests.helpers import order_body

HEADERS_FILE = ROOT / "infra" / "security_headers.json"


def raw_request(stack: Stack, data: bytes, timeout: float = 30.0) -> bytes:
    """Send bytes, read until the server closes; raises on a reset or a silent close."""
    host, port = urllib.parse.urlsplit(stack.url).netloc.split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        s.sendall(data)
        chunks = []
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    out = b"".join(chunks)
    assert out, f"no answer to {data[:60]!r}"
    return out


def parse(raw: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    version, status, *_ = lines[0].split(" ", 2)
    assert version.startswith("HTTP/1."), lines[0]
    headers = [tuple(x.strip() for x in line.split(":", 1)) for line in lines[1:]]
    return int(status), headers, body  # type: ignore[return-value]


def one(headers: list[tuple[str, str]], name: str) -> str:
    values = [v for k, v in headers if k.lower() == name.lower()]
    assert len(values) == 1, f"{name}: {values}"
    return values[0]


def dechunk(body: bytes) -> bytes:
    out, rest = b"", body
    while rest:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out, rest = out + rest[:size], rest[size + 2 :]
    return out


def answer(stack: Stack, data: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
    status, headers, body = parse(raw_request(stack, data))
    one(headers, "Server")
    one(headers, "Date")
    if any(k.lower() == "transfer-encoding" for k, _ in headers):
        body = dechunk(body)
    return status, headers, body


GET = "GET {} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


@pytest.mark.parametrize(
    ("path", "status"),
    [
        (b"/%00", 404),
        (b"/a\x00b", 404),
        (b"/js/%00.js", 404),
        (b"/%2e%2e/%2e%2e/etc/passwd", 404),
        (b"/../README.md", 404),
        (b"/%ff%fe", 404),
        (b"/" + b"a" * 4000, 404),
        (b"/", 200),
        (b"/js/app.js", 200),
    ],
)
def test_malformed_paths_get_an_http_answer(stack: Stack, path: bytes, status: int) -> None:
    got, headers, _ = answer(stack, b"GET " + path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert got == status
    assert one(headers, "Content-Security-Policy") == security_headers()["Content-Security-Policy"]


@pytest.mark.parametrize(
    ("length", "status", "code"),
    [
        (b"abc", 400, "bad_request"),
        (b"-5", 400, "bad_request"),
        (b"99999999999999999999999999", 413, "payload_too_large"),
        (b"2000000", 413, "payload_too_large"),
    ],
)
def test_bad_content_length_gets_a_json_error(
    stack: Stack, length: bytes, status: int, code: str
) -> None:
    req = (
        b"POST /api/orders HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + length + b"\r\n\r\n{}"
    )
    got, _, body = answer(stack, req)
    assert got == status
    assert json.loads(body)["error"]["code"] == code


def test_a_chunked_post_body_reaches_the_api(stack: Stack) -> None:
    payload = json.dumps(order_body(email="chunked@deliverable.test")).encode()
    chunks = b"".join(
        b"%x\r\n%s\r\n" % (len(payload[i : i + 100]), payload[i : i + 100])
        for i in range(0, len(payload), 100)
    )
    req = (
        b"POST /api/orders HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Idempotency-Key: chunked-post-0001\r\nTransfer-Encoding: chunked\r\n\r\n"
        + chunks
        + b"0\r\n\r\n"
    )
    status, headers, body = answer(stack, req)
    assert status == 201, body
    assert json.loads(body)["order_id"]


def test_proxied_answers_carry_one_server_and_one_date_header(stack: Stack) -> None:
    status, headers, body = answer(stack, GET.format("/api/catalog").encode())
    assert status == 200 and json.loads(body)["shop"]["name"]
    assert one(headers, "Content-Type").startswith("application/json")
    assert one(headers, "X-Content-Type-Options") == "nosniff"


def test_security_headers_come_from_the_one_source(stack: Stack) -> None:
    data = json.loads(HEADERS_FILE.read_text(encoding="utf-8"))
    _, headers, _ = answer(stack, GET.format("/").encode())
    csp = one(headers, "Content-Security-Policy")
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives == {k: " ".join(v) for k, v in data["content_security_policy"].items()}
    for name, value in data["headers"].items():
        assert one(headers, name) == value
    for name in data["https_only_headers"]:  # plain HTTP: no HSTS
        assert not [v for k, v in headers if k.lower() == name.lower()]


def test_local_config_points_at_the_turnstile_stand_in(stack: Stack) -> None:
    status, _, body = answer(stack, GET.format("/config.json").encode())
    config = json.loads(body)
    assert status == 200 and config["stage"] == "local"
    assert config["turnstileScript"].startswith(STANDIN_PATH)
    status, headers, js = answer(stack, GET.format(STANDIN_PATH).encode())
    assert status == 200 and one(headers, "Content-Type").startswith("text/javascript")
    assert DUMMY_TOKEN.encode() in js and b"__DUMMY_TOKEN__" not in js
    assert b"Local test check" in js


def test_unknown_method_and_garbage_get_answers(stack: Stack) -> None:
    status, _, _ = answer(stack, b"DELETE / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert status == 405
    status, _, _ = parse(raw_request(stack, b"GET / HTTP/9.9\r\n\r\n"))
    assert status == 505
    status, _, _ = parse(raw_request(stack, b"GARBAGE\r\n\r\n"))
    assert status == 400


def test_api_down_is_a_json_503(stack: Stack) -> None:
    """The proxy's upstream refusing connections: the shopper still gets an answer."""
    from devstack.devserver import serve

    server = serve("127.0.0.1", 0, "http://127.0.0.1:9", stack.moto_url)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        port = server.server_address[1]
        fake = type("S", (), {"url": f"http://127.0.0.1:{port}"})()
        status, headers, body = answer(fake, GET.format("/api/catalog").encode())  # type: ignore[arg-type]
        assert status == 503 and one(headers, "Retry-After") == "2"
        assert json.loads(body)["error"]["code"] == "service_unavailable"
    finally:
        server.shutdown()
        server.server_close()


def test_fifty_concurrent_clients_are_all_answered(stack: Stack) -> None:
    results: list[Any] = []
    lock = threading.Lock()
    start = threading.Barrier(50)

    def client(i: int) -> None:
        path = "/api/catalog" if i % 2 else "/"
        try:
            start.wait()
            status, _, _ = answer(stack, GET.format(path).encode())
            out: Any = status
        except Exception as e:  # noqa: BLE001 - a reset is the failure we count
            out = repr(e)
        with lock:
            results.append(out)

    for _ in range(2):  # two bursts of 50
        threads = [threading.Thread(target=client, args=(i,)) for i in range(50)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert results == [200] * 100, [r for r in results if r != 200]
