"""moto's server with each request handled atomically, over persistent connections.

`python -m moto.server` handles requests on many threads without a lock around the backend
calls, so two concurrent conditional writes to the same DynamoDB item can both succeed —
something real DynamoDB never allows (conditional writes on one item are serialised). Our
idempotency and outbox leases rely on that guarantee, so the local stack and the tests run
moto behind one lock: still threaded for connections, one backend call at a time.

Connections are kept alive (HTTP/1.1), as real AWS endpoints do. werkzeug's development
server answers every response with `Connection: close` (it cannot drain a request body it
did not read before the next request line), so every SDK call would pay a new TCP
connection — about half the client-side CPU of a DynamoDB call. Here the wrapper app reads
each request body completely before moto sees it (`wsgi.input` becomes a BytesIO), and
`KeepAliveHandler` writes the whole buffered answer with an exact Content-Length, then
waits for the next request on the same connection. A client that asks for
`Connection: close` (or speaks HTTP/1.0) still gets its connection closed.

    python -m devstack.moto_server --port 4566
"""

from __future__ import annotations

import argparse
import io
import sys
import threading
import traceback
from collections.abc import Callable
from typing import Any

from werkzeug.serving import WSGIRequestHandler

BODY_READ = "devstack.body_read"  # environ flag: the request body has been consumed


def read_body(environ: dict[str, Any]) -> bytes:
    """Read the whole request body (Content-Length or chunked) and put it back as a BytesIO,
    so the connection's stream is at the next request whatever the app reads."""
    stream = environ["wsgi.input"]
    if environ.get("wsgi.input_terminated"):  # chunked: werkzeug's DechunkedInput ends at EOF
        body = stream.read()
    else:
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        parts, left = [], max(length, 0)
        while left:
            chunk = stream.read(left)
            if not chunk:
                break
            parts.append(chunk)
            left -= len(chunk)
        body = b"".join(parts)
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    environ.pop("wsgi.input_terminated", None)
    environ[BODY_READ] = True
    return body


def make_app() -> Any:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    inner = DomainDispatcherApplication(create_backend_app)
    lock = threading.Lock()

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        read_body(environ)  # outside the lock: a slow upload does not stall other requests
        with lock:
            # materialise the body inside the lock: the backend call happens while iterating
            return list(inner(environ, start_response))

    return app


_NO_BODY = {204, 304}
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length"}


class KeepAliveHandler(WSGIRequestHandler):
    """werkzeug's request handler without the forced `Connection: close`.

    The answer is buffered and sent with an exact Content-Length in one write. The
    connection stays open unless the client asked to close it, the app did not read the
    request body (the stream would not be at the next request line) or the app failed.
    """

    protocol_version = "HTTP/1.1"
    _headers_buffer: list[bytes]  # http.server's, not in its stubs

    def run_wsgi(self) -> None:
        if self.headers.get("Expect", "").lower().strip(" \t") == "100-continue":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        self.environ = environ = self.make_environ()
        started: list[Any] = []

        chunks: list[bytes] = []

        def start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Callable[[bytes], None]:
            if started and not exc_info:
                raise AssertionError("Headers already set")
            started[:] = [status, headers]
            return chunks.append  # the legacy write(): buffered too

        try:
            result = self.server.app(environ, start_response)
            try:
                chunks.extend(result)
            finally:
                if hasattr(result, "close"):
                    result.close()
            if not started:
                raise RuntimeError("the app returned without start_response")
        except (ConnectionError, TimeoutError) as e:
            self.connection_dropped(e, environ)
            self.close_connection = True
            return
        except Exception:  # noqa: BLE001 - answer 500 and log, like werkzeug does
            self.server.log("error", f"Error on request:\n{traceback.format_exc()}")
            started[:] = ["500 Internal Server Error", [("Content-Type", "text/plain")]]
            chunks = [b"Internal Server Error"]
            self.close_connection = True
        if not environ.get(BODY_READ):
            self.close_connection = True
        status, headers = started
        code_str, _, msg = status.partition(" ")
        code = int(code_str)
        body = b"".join(chunks)
        head = environ["REQUEST_METHOD"] == "HEAD" or code in _NO_BODY or 100 <= code < 200
        declared = next((v for k, v in headers if k.lower() == "content-length"), None)
        self.send_response(code, msg)
        for key, value in headers:
            if key.lower() not in _HOP_BY_HOP:
                self.send_header(key, value)
        if head:
            # a HEAD answer may declare the GET's length (S3 HeadObject does); no body follows
            if declared is not None and code not in _NO_BODY:
                self.send_header("Content-Length", declared)
            body = b""
        else:
            self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        # one write for the headers (buffered by http.server) and the body: two small writes
        # could wait on Nagle + the client's delayed ACK
        self._headers_buffer.append(b"\r\n")
        self.wfile.write(b"".join(self._headers_buffer) + body)
        self._headers_buffer = []


def serve(host: str, port: int) -> None:
    """Serve moto on host:port until interrupted (threaded, persistent connections)."""
    from werkzeug.serving import make_server

    server = make_server(host, port, make_app(), threaded=True, request_handler=KeepAliveHandler)
    print(f" * moto on http://{host}:{server.server_port}", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("-H", "--host", default="127.0.0.1")
    p.add_argument("-p", "--port", type=int, default=4566)
    a = p.parse_args()
    serve(a.host, a.port)


if __name__ == "__main__":
    main()
