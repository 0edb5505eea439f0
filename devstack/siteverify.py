"""A local stand-in for Cloudflare Turnstile's siteverify endpoint (stdlib HTTP server).

    python -m devstack.siteverify --host 127.0.0.1 --port 8788
    -> TURNSTILE_VERIFY_URL=http://127.0.0.1:8788/turnstile/v0/siteverify

`POST /turnstile/v0/siteverify` accepts form-encoded and JSON bodies (`secret`, `response`,
`remoteip`, `idempotency_key`) and answers like Cloudflare does for its documented test
secrets (https://developers.cloudflare.com/turnstile/troubleshooting/testing/):

* `1x0000000000000000000000000000000AA` passes, `2x...AA` fails with invalid-input-response,
  `3x...AA` fails with timeout-or-duplicate;
* test secrets accept only the dummy token `XXXX.DUMMY.TOKEN.XXXX` that the test sitekeys
  produce (any other token: invalid-input-response), as Cloudflare has done since 2024;
* a success carries `hostname: "example.com"`, an empty `action` and `cdata`, and
  `metadata.result_with_testing_key: true` (the shape Cloudflare's test secrets return);
* any other secret: invalid-input-secret; missing fields: missing-input-secret /
  missing-input-response; an unreadable body: 400 bad-request.

Test/bench control (also callable in-process: `control()`, `requests()`, `reset()`):

* `POST /_control` JSON `{"mode": "normal"|"http500"|"internal-error"|"hang", "delay_ms": N,
  "fail_times": N, "hostname": "...", "action": "..."}`: replaces the whole control state
  (omitted keys take their defaults). `fail_times` limits the fault to the next N siteverify
  requests (then normal); omitted = until changed. `delay_ms` applies to every request.
  `hostname`/`action` override what a success reports.
* `GET /_requests`: JSON list of the siteverify requests received, oldest first, as the
  fields sent (secret redacted) plus `"_format": "form"|"json"`.
* `POST /_reset`: default control state and an empty request log.
"""

from __future__ import annotations

import json
import socketserver
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

from devstack.servers import LoopbackServer, cli, serve_until_interrupted

VERIFY_PATH = "/turnstile/v0/siteverify"
PASS_SECRET = "1x0000000000000000000000000000000AA"
FAIL_SECRET = "2x0000000000000000000000000000000AA"
SPENT_SECRET = "3x0000000000000000000000000000000AA"
DUMMY_TOKEN = "XXXX.DUMMY.TOKEN.XXXX"
PASS_SITEKEY = "1x00000000000000000000AA"
FAIL_SITEKEY = "2x00000000000000000000AB"
MODES = ("normal", "http500", "internal-error", "hang")
HANG_SECONDS = 30.0


def _default_control() -> dict[str, Any]:
    return {"mode": "normal", "delay_ms": 0, "fail_times": None, "hostname": None, "action": None}


class _State:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.control = _default_control()
        self.requests: list[dict[str, Any]] = []
        self.stopping = threading.Event()

    def set_control(self, raw: dict[str, Any]) -> dict[str, Any]:
        new = _default_control()
        mode = raw.get("mode", "normal")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        new["mode"] = mode
        new["delay_ms"] = max(0, int(raw.get("delay_ms") or 0))
        ft = raw.get("fail_times")
        new["fail_times"] = None if ft is None else max(0, int(ft))
        for k in ("hostname", "action"):
            if raw.get(k) is not None:
                new[k] = str(raw[k])
        with self.lock:
            self.control = new
            return dict(new)

    def take_fault(self, fields: dict[str, Any], fmt: str) -> tuple[str, int, dict[str, Any]]:
        """Record a siteverify request; return (fault mode for it, delay_ms, control)."""
        logged = {k: ("***" if k == "secret" else v) for k, v in fields.items()}
        logged["_format"] = fmt
        with self.lock:
            self.requests.append(logged)
            c = self.control
            mode = c["mode"]
            if mode != "normal" and c["fail_times"] is not None:
                if c["fail_times"] > 0:
                    c["fail_times"] -= 1
                else:
                    mode = "normal"
            return mode, c["delay_ms"], dict(c)

    def logged(self) -> list[dict[str, Any]]:
        """The siteverify requests received, oldest first (copies)."""
        with self.lock:
            return [dict(r) for r in self.requests]

    def reset(self) -> None:
        """Default control state and an empty request log."""
        self.set_control({})
        with self.lock:
            self.requests.clear()


def _verdict(fields: dict[str, Any], control: dict[str, Any]) -> dict[str, Any]:
    secret = fields.get("secret") or ""
    token = fields.get("response") or ""
    meta = {"result_with_testing_key": True}
    if not secret:
        return {"success": False, "error-codes": ["missing-input-secret"], "messages": []}
    if secret not in (PASS_SECRET, FAIL_SECRET, SPENT_SECRET):
        return {"success": False, "error-codes": ["invalid-input-secret"], "messages": []}
    if not token:
        codes = ["missing-input-response"]
    elif token != DUMMY_TOKEN or secret == FAIL_SECRET:
        codes = ["invalid-input-response"]
    elif secret == SPENT_SECRET:
        codes = ["timeout-or-duplicate"]
    else:
        return {
            "success": True,
            "error-codes": [],
            "challenge_ts": datetime.now(UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "hostname": control["hostname"] if control["hostname"] is not None else "example.com",
            "action": control["action"] if control["action"] is not None else "",
            "cdata": "",
            "metadata": meta,
            "messages": [],
        }
    return {"success": False, "error-codes": codes, "messages": [], "metadata": meta}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # no 40 ms delayed-ACK stall between headers and body
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass

    def _send(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:  # the client gave up (hang mode): nothing to do
            self.close_connection = True

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        if self.path.split("?")[0] == "/_requests":
            self._send(200, self.server.state.logged())
        else:
            self._send(404, {"error": "not found"})

    def do_POST(self) -> None:  # noqa: N802 - stdlib naming
        path = self.path.split("?")[0]
        raw = self._body()
        if path == "/_control":
            try:
                self._send(200, self.server.state.set_control(json.loads(raw or b"{}")))
            except (ValueError, TypeError, AttributeError) as e:
                self._send(400, {"error": str(e)})
            return
        if path == "/_reset":
            self.server.state.reset()
            self._send(200, {"ok": True})
            return
        if path != VERIFY_PATH:
            self._send(404, {"error": "not found"})
            return
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        try:
            if ctype == "application/json":
                parsed = json.loads(raw or b"{}")
                if not isinstance(parsed, dict):
                    raise ValueError("not an object")
                fields = {k: v for k, v in parsed.items() if isinstance(v, str)}
                fmt = "json"
            else:
                qs = parse_qs(raw.decode("utf-8"), keep_blank_values=True)
                fields = {k: v[0] for k, v in qs.items()}
                fmt = "form"
        except (ValueError, UnicodeDecodeError):
            self.server.state.take_fault({}, "invalid")
            self._send(400, {"success": False, "error-codes": ["bad-request"], "messages": []})
            return
        mode, delay_ms, control = self.server.state.take_fault(fields, fmt)
        if delay_ms:
            time.sleep(delay_ms / 1000)
        if mode == "hang":
            self.server.state.stopping.wait(HANG_SECONDS)
            self.close_connection = True
            self._send(504, {"success": False, "error-codes": ["internal-error"]})
        elif mode == "http500":
            self._send(500, {"error": "simulated server error"})
        elif mode == "internal-error":
            self._send(200, {"success": False, "error-codes": ["internal-error"], "messages": []})
        else:
            self._send(200, _verdict(fields, control))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, addr: tuple[str, int], state: _State) -> None:
        self.state = state
        super().__init__(addr, _Handler)


class SiteverifyServer(LoopbackServer):
    """The fake siteverify service on host:port (port 0 = a free one) in a background thread."""

    thread_name = "siteverify"

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self._state = _State()

    @property
    def base_url(self) -> str:
        return f"http://{self.address}"

    @property
    def url(self) -> str:
        """The full verify URL (TURNSTILE_VERIFY_URL)."""
        return self.base_url + VERIFY_PATH

    def _bind(self, port: int) -> list[socketserver.BaseServer]:
        self._state.stopping.clear()
        return [_Server((self.host, port), self._state)]

    def _stopping(self) -> None:
        self._state.stopping.set()  # release hanging requests

    # the same API as the HTTP control endpoints -------------------------------------------
    def control(
        self,
        mode: str = "normal",
        delay_ms: int = 0,
        fail_times: int | None = None,
        hostname: str | None = None,
        action: str | None = None,
    ) -> dict[str, Any]:
        return self._state.set_control(
            {
                "mode": mode,
                "delay_ms": delay_ms,
                "fail_times": fail_times,
                "hostname": hostname,
                "action": action,
            }
        )

    def requests(self) -> list[dict[str, Any]]:
        return self._state.logged()

    def reset(self) -> None:
        self._state.reset()


def main(argv: list[str] | None = None) -> None:
    args = cli(__doc__, default_port=8788).parse_args(argv)
    server = SiteverifyServer(args.host, args.port).start()
    serve_until_interrupted(server, f"siteverify on {server.url}")


if __name__ == "__main__":
    main()
