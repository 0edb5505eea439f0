"""Every API response uses the error shape and carries nosniff (issue 12, finding 8, local part).

App routes go through chalice.test.Client (the app's middleware, chalicelib/http.py); what
Chalice's local server answers before the app runs (unknown routes, unknown methods,
protocol errors) goes through devstack/chalice_local.py started as a real server.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from devstack.stack import die_with_parent
from tests.conftest import BASE_ENV, ROOT
from tests.helpers import JSON, error_of, order_body, post_order
from tests.servers import free_port, wait_http

ERROR_KEYS = {"code", "message", "fields"}


def assert_error(status: int, headers: Any, body: bytes, code: str) -> dict[str, Any]:
    """The documented error shape, JSON, nosniff."""
    parsed = json.loads(body)
    assert set(parsed) == {"error"}, parsed
    assert ERROR_KEYS <= set(parsed["error"]), parsed
    assert parsed["error"]["code"] == code, (status, parsed)
    assert isinstance(parsed["error"]["message"], str) and parsed["error"]["message"]
    lower = {k.lower(): v for k, v in dict(headers).items()}
    assert lower.get("content-type", "").startswith("application/json"), lower
    assert lower.get("x-content-type-options") == "nosniff", lower
    return dict(parsed["error"])


# -- app routes through chalice.test.Client ----------------------------------------------------


def test_catalog_has_nosniff(client: Any) -> None:
    r = client.http.get("/catalog")

    assert r.status_code == 200
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Cache-Control"] == "public, max-age=60"


@pytest.mark.parametrize(
    ("body", "headers", "status", "code"),
    [
        (b"{", JSON, 400, "invalid_json"),
        (b"{}", {"Content-Type": "text/plain"}, 415, "unsupported_media_type"),
        (json.dumps(order_body(name="www.evil.example")), JSON, 422, "validation_failed"),
    ],
)
def test_our_own_errors_have_nosniff(
    client: Any, body: Any, headers: dict[str, str], status: int, code: str
) -> None:
    r = client.http.post("/orders", headers=headers, body=body)

    assert r.status_code == status
    assert_error(r.status_code, r.headers, r.body, code)


def test_an_order_has_nosniff(client: Any) -> None:
    r = post_order(client, order_body())

    assert r.status_code == 201, r.body
    assert r.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("POST", "/catalog", "GET"),
        ("DELETE", "/catalog", "GET"),
        ("PUT", "/orders", "POST"),
        ("PATCH", "/orders", "POST"),
        ("GET", "/orders", "POST"),
        ("TRACE", "/orders", "POST"),
    ],
)
def test_a_wrong_method_on_an_app_route_is_405_in_our_shape(
    client: Any, method: str, path: str, allow: str
) -> None:
    r = client.http.request(method, path, headers=JSON, body=b"{}")

    assert r.status_code == 405
    err = assert_error(r.status_code, r.headers, r.body, "method_not_allowed")
    assert method in err["message"]
    assert r.headers["Allow"] == allow
    assert "Code" not in json.loads(r.body)


def test_an_unhandled_exception_in_a_view_is_500_in_our_shape(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fault injection: the catalog can't be loaded; Chalice's own 500 body is reshaped."""
    from chalicelib import catalog

    def broken() -> None:
        raise RuntimeError("injected: catalog unreadable")

    monkeypatch.setattr(catalog, "load_catalog", broken)

    r = client.http.get("/catalog")

    assert r.status_code == 500
    assert_error(r.status_code, r.headers, r.body, "internal_error")
    assert b"injected" not in r.body and b"Traceback" not in r.body


# -- what Chalice's local server answers itself: devstack/chalice_local.py -------------------


class LocalServer:
    def __init__(self, port: int) -> None:
        self.host, self.port = "127.0.0.1", port

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            return r.status, dict(r.getheaders()), r.read()
        finally:
            conn.close()

    def raw(self, data: bytes) -> tuple[int, dict[str, str], bytes]:
        """Send raw bytes; parse the status line, headers and body of the answer."""
        with socket.create_connection((self.host, self.port), timeout=10) as s:
            s.sendall(data)
            chunks = []
            while chunk := s.recv(65536):
                chunks.append(chunk)
        head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
        return int(lines[0].split()[1]), headers, body


@pytest.fixture(scope="module")
def local_server() -> Iterator[LocalServer]:
    port = free_port()
    env = {**os.environ, **BASE_ENV, "STAGE": "local", "PYTHONUNBUFFERED": "1"}
    env.pop("AWS_LAMBDA_FUNCTION_NAME", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "devstack.chalice_local", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=die_with_parent,  # noqa: PLW1509 - no threads in the child yet
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/catalog", timeout=60)
        yield LocalServer(port)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_local_catalog_has_nosniff(local_server: LocalServer) -> None:
    status, headers, body = local_server.request("GET", "/catalog")

    assert status == 200 and json.loads(body)["products"]
    assert headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "DELETE", "PATCH", "TRACE", "OPTIONS"])
@pytest.mark.parametrize("path", ["/", "/nope", "/orders/123", "/catalog/../admin", "/%00"])
def test_an_unknown_route_is_404_in_our_shape(
    local_server: LocalServer, method: str, path: str
) -> None:
    status, headers, body = local_server.request(method, path)

    assert status == 404
    assert_error(status, headers, body, "not_found")
    assert b"Missing Authentication Token" not in body


def test_an_unknown_route_with_an_authorization_header_is_404_too(
    local_server: LocalServer,
) -> None:
    status, headers, body = local_server.request("GET", "/nope", headers={"Authorization": "x"})

    assert status == 404
    assert_error(status, headers, body, "not_found")
    assert b"Authorization" not in body  # Chalice echoes the header value otherwise


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("POST", "/catalog", "GET"),
        ("PATCH", "/catalog", "GET"),
        ("TRACE", "/catalog", "GET"),
        ("PATCH", "/orders", "POST"),
        ("TRACE", "/orders", "POST"),
        ("PROPFIND", "/orders", "POST"),
        ("GET", "/orders", "POST"),
    ],
)
def test_a_wrong_or_unknown_method_is_405_in_our_shape(
    local_server: LocalServer, method: str, path: str, allow: str
) -> None:
    status, headers, body = local_server.request(method, path, body=b"{}", headers=JSON)

    assert status == 405
    err = assert_error(status, headers, body, "method_not_allowed")
    assert method in err["message"]
    assert headers["Allow"] == allow
    assert b"<html" not in body.lower() and b"MethodNotAllowedError" not in body


def test_a_cors_preflight_has_nosniff(local_server: LocalServer) -> None:
    status, headers, _ = local_server.request("OPTIONS", "/catalog")

    assert status == 200
    assert headers["X-Content-Type-Options"] == "nosniff"


def test_an_unreadable_content_length_is_400_not_a_dropped_connection(
    local_server: LocalServer,
) -> None:
    status, headers, body = local_server.raw(
        b"POST /orders HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: abc\r\n\r\n{}"
    )

    assert status == 400
    assert_error(status, headers, body, "bad_request")


@pytest.mark.parametrize(
    ("request_bytes", "status", "code"),
    [
        (b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "uri_too_long"),
        (
            b"GET /catalog HTTP/1.1\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n",
            431,
            "headers_too_large",
        ),
        (
            b"GET /catalog HTTP/1.1\r\n"
            + b"".join(b"X-%d: y\r\n" % i for i in range(150))
            + b"\r\n",
            431,
            "headers_too_large",
        ),
    ],
)
def test_protocol_errors_are_json_not_html(
    local_server: LocalServer, request_bytes: bytes, status: int, code: str
) -> None:
    got, headers, body = local_server.raw(request_bytes)

    assert got == status
    assert_error(got, headers, body, code)
    assert b"<html" not in body.lower() and b"DOCTYPE" not in body


def test_the_shape_matches_the_api_helpers_error_of(local_server: LocalServer) -> None:
    """The local answers pass the same check the API tests use for app errors."""

    class Resp:
        def __init__(self, body: bytes) -> None:
            self.body = body

    _, _, body = local_server.request("TRACE", "/nope")
    assert error_of(Resp(body))["code"] == "not_found"
