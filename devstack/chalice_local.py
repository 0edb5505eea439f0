"""`chalice local` with the API's error shape and nosniff on every response.

Chalice's local server answers some requests before the app runs, in its own formats:
unknown routes `{"message": "Missing Authentication Token"}` (403, like API Gateway),
methods `BaseHTTPRequestHandler` has no `do_*` for (TRACE, PROPFIND...) an HTML 501, a bad
request line or headers an HTML 400/414/431, an unreadable Content-Length a dropped
connection. This module starts the same server (same config loading as `chalice local
--stage X --no-autoreload`) with a request handler that:

* sends every method through the local gateway, so the app (and its middleware, see
  chalicelib/http.py) answers: a known route with a wrong method is 405 `method_not_allowed`;
* answers unknown routes 404 `not_found` and every gateway/protocol error in the JSON error
  shape `{"error": {"code", "message", "fields"}}`;
* rewrites Chalice's `{"Code", "Message"}` bodies too (when the app's middleware is missing);
* adds `X-Content-Type-Options: nosniff` to every response.

    python -m devstack.chalice_local --host 127.0.0.1 --port 8001 --stage local
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from chalice.local import (
    ChaliceRequestHandler,
    CustomLocalChalice,
    LocalChalice,
    LocalDevServer,
    LocalGatewayException,
)

from chalicelib.http import (
    NOSNIFF_HEADER,
    gateway_error_body,
    has_header,
    is_chalice_error,
    reshape_chalice_error,
    status_error_body,
)

ROOT = Path(__file__).resolve().parent.parent


class JsonErrorHandler(ChaliceRequestHandler):
    """ChaliceRequestHandler whose every answer is JSON-shaped and carries nosniff."""

    def __getattr__(self, name: str) -> Any:
        # BaseHTTPRequestHandler looks up `do_<METHOD>`; any method goes to the gateway
        if name.startswith("do_"):
            return self._generic_handle
        raise AttributeError(name)

    def _generic_handle(self) -> None:
        try:
            super()._generic_handle()
        except ValueError:  # e.g. Content-Length: abc
            self._send_json(400, status_error_body(400), close=True)
        except Exception as e:  # noqa: BLE001 - never a dropped connection or a trace
            self.log_error("unhandled %s in the local gateway", type(e).__name__)
            self._send_json(500, status_error_body(500), close=True)

    # the base class binds its own _generic_handle to these names: rebind to ours
    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = do_PATCH = do_OPTIONS = _generic_handle

    def _send_error_response(self, error: LocalGatewayException) -> None:
        status, body = gateway_error_body(error.CODE, error.body)
        request_id = {
            k: v for k, v in (error.headers or {}).items() if k.lower() == "x-amzn-requestid"
        }
        self._send_json(status, body, headers=request_id)

    def _send_http_response(self, code: int, headers: Any, body: Any) -> None:
        if code >= 400 and body:
            try:
                parsed = json.loads(body)
            except (ValueError, UnicodeDecodeError):
                parsed = None
            if is_chalice_error(parsed):
                reshaped = reshape_chalice_error(code, parsed, self.command)
                body = json.dumps(reshaped, separators=(",", ":"))
                headers = {k: v for k, v in headers.items() if k.lower() != "content-type"}
                headers["Content-Type"] = "application/json"
        super()._send_http_response(code, headers, body)

    def _send_headers(self, headers: Any) -> None:
        if not has_header(headers, NOSNIFF_HEADER):
            headers = {**headers, NOSNIFF_HEADER: "nosniff"}
        super()._send_headers(headers)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Protocol errors (bad request line, URI or headers too long) as JSON, not HTML."""
        self.log_error("code %d, message %s", code, message)
        self._send_json(code, status_error_body(code, getattr(self, "command", "") or ""), True)

    def _send_json(
        self,
        status: int,
        body: dict[str, Any],
        close: bool = False,
        headers: dict[str, str] | None = None,
    ) -> None:
        raw = json.dumps(body, separators=(",", ":")).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Length", str(len(raw)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self._send_headers(dict(headers or {}))
        if getattr(self, "command", "") != "HEAD":
            self.wfile.write(raw)


def create_server(app_dir: str | Path, host: str, port: int, stage: str = "local") -> Any:
    """Load the Chalice app and config of `app_dir` for `stage` (the stage's environment
    variables go into os.environ, as `chalice local` does) and bind the server."""
    from chalice.cli.factory import CLIFactory
    from chalice.deploy.validate import validate_routes

    factory = CLIFactory(str(app_dir), environ=os.environ)
    config = factory.create_config_obj(chalice_stage_name=stage)
    app_obj = config.chalice_app
    validate_routes(app_obj.routes)
    # what chalice.local.create_local_server does: a thread-local current_request
    CustomLocalChalice.__bases__ = (LocalChalice, app_obj.__class__)
    app_obj.__class__ = CustomLocalChalice
    return LocalDevServer(app_obj, config, host, port, handler_cls=JsonErrorHandler)


def serve(app_dir: str | Path, host: str, port: int, stage: str = "local") -> None:
    """Run the server until interrupted (SIGINT / Ctrl-C)."""
    logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(message)s")
    server = create_server(app_dir, host, port, stage)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server.server_close()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8001)
    p.add_argument("--stage", default="local")
    p.add_argument("--app-dir", default=str(ROOT))
    a = p.parse_args(argv)
    serve(a.app_dir, a.host, a.port, a.stage)


if __name__ == "__main__":
    main()
