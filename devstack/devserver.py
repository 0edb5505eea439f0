"""Local dev web server (127.0.0.1:8000 by default), a werkzeug WSGI app.

- serves `website/` at `/` with the security headers of infra/security_headers.json (the one
  source: CloudFront's ResponseHeadersPolicy is built from the same file)
- `/config.json`: the local stage's config, generated here (the Turnstile stand-in below,
  Cloudflare's always-pass test sitekey); a website/config.json on disk is not used locally
- `/_dev/turnstile/v0/api.js`: a stand-in for Cloudflare's Turnstile script (same explicit
  render API) so the shop works offline; its token is the one devstack/siteverify.py accepts
- forwards `/api/*` to `chalice local` (same origin, like CloudFront's /api/* behaviour),
  reading the whole body first (Content-Length or chunked), at most MAX_BODY bytes
- `/_dev/mail` shows every email moto's SES recorded, newest first, plus each order's email
  statuses and the suppression list; `/_dev/mail.json` is the same as JSON.
Every request gets an HTTP answer (malformed paths, bad Content-Length, a dead upstream), with
one Server and one Date header. Local tooling only: never deployed.
"""

from __future__ import annotations

import argparse
import gzip
import html
import json
import mimetypes
import os
import urllib.error
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from devstack import inspect
from devstack.servers import serve_forever_until_interrupted
from devstack.siteverify import DUMMY_TOKEN, FAIL_SITEKEY, PASS_SITEKEY

ROOT = Path(__file__).resolve().parent.parent
WEBSITE = ROOT / "website"
HEADERS_FILE = ROOT / "infra" / "security_headers.json"
STANDIN_JS = Path(__file__).resolve().parent / "turnstile_standin.js"
STANDIN_PATH = "/_dev/turnstile/v0/api.js"
CLOUDFLARE_SCRIPT = "https://challenges.cloudflare.com/turnstile/v0/api.js?render=explicit"
MAX_BODY = 1024 * 1024  # the API refuses more than 16 KiB itself; this only bounds the proxy
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "proxy-authorization",
    "proxy-authenticate",
    "host",
    "content-length",
    # the dev server sends its own (exactly one of each)
    "server",
    "date",
}
mimetypes.add_type("text/javascript", ".js")
mimetypes.add_type("text/javascript", ".mjs")
mimetypes.add_type("image/svg+xml", ".svg")
mimetypes.add_type("image/webp", ".webp")


def security_headers(path: Path = HEADERS_FILE, https: bool = False) -> dict[str, str]:
    """The site's security headers from infra/security_headers.json (CSP built from its
    directives; the HTTPS-only ones only over HTTPS)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    csp = "; ".join(f"{k} {' '.join(v)}" for k, v in data["content_security_policy"].items())
    out = {"Content-Security-Policy": csp, **data["headers"]}
    if https:
        out.update(data.get("https_only_headers", {}))
    return out


SECURITY_HEADERS = security_headers()


def stage_config(
    stage: str, sitekey: str, api_base: str = "/api", turnstile_script: str = ""
) -> dict[str, str]:
    config = {"stage": stage, "apiBase": api_base, "turnstileSitekey": sitekey}
    if turnstile_script:
        config["turnstileScript"] = turnstile_script
    return config


def local_config(sitekey: str = PASS_SITEKEY) -> dict[str, str]:
    """What the dev server answers for /config.json: the local Turnstile stand-in."""
    return stage_config("local", sitekey, turnstile_script=STANDIN_PATH + "?render=explicit")


def write_stage_config(path: Path, stage: str, sitekey: str, turnstile_script: str = "") -> None:
    """A per-stage config file the storefront reads (generated, never committed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    body = stage_config(stage, sitekey, turnstile_script=turnstile_script)
    path.write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")


def standin_script() -> bytes:
    """The Turnstile stand-in, with the token and test sitekeys siteverify.py knows."""
    js = STANDIN_JS.read_text(encoding="utf-8")
    for name, value in (
        ("__DUMMY_TOKEN__", DUMMY_TOKEN),
        ("__PASS_SITEKEY__", PASS_SITEKEY),
        ("__FAIL_SITEKEY__", FAIL_SITEKEY),
    ):
        js = js.replace(name, value)
    return js.encode("utf-8")


def recorded_mail(moto_url: str) -> list[dict[str, Any]]:
    """moto's sent emails, newest first, in a simple shape."""
    out = []
    for m in reversed(inspect.sent_mail(moto_url, timeout=5)):
        dest = m.get("destinations") or {}
        out.append(
            {
                "id": m.get("id"),
                "to": dest.get("ToAddresses", []) if isinstance(dest, dict) else [],
                "from": m.get("source"),
                "subject": m.get("subject"),
                "body": m.get("body"),
            }
        )
    return out


def local_state(moto_url: str) -> dict[str, Any]:
    """Orders' email statuses and the suppression list, read from the local DynamoDB."""
    orders_table = os.environ.get("ORDERS_TABLE", "orders")
    suppression_table = os.environ.get("SUPPRESSION_TABLE", "suppression")
    try:
        return {
            "orders": inspect.email_statuses(moto_url, orders_table),
            "suppression": inspect.suppression_list(moto_url, suppression_table),
        }
    except Exception as e:  # noqa: BLE001 - a viewer must render even if a table is missing
        return {"orders": [], "suppression": [], "error": type(e).__name__}


def render_mail_page(mail: list[dict[str, Any]], state: dict[str, Any]) -> str:
    esc = html.escape
    rows = []
    for m in mail:
        rows.append(
            "<article class='mail'>"
            f"<h2>{esc(str(m['subject']))}</h2>"
            f"<p><b>To:</b> {esc(', '.join(m['to']))} &middot; <b>From:</b> {esc(str(m['from']))}"
            f" &middot; <b>SES id:</b> <code>{esc(str(m['id']))}</code></p>"
            f"<iframe sandbox title='{esc(str(m['subject']))}' "
            f'srcdoc="{esc(str(m["body"]), quote=True)}"></iframe>'
            "</article>"
        )
    orders = "".join(
        f"<tr><td><code>{esc(o['order_id'])}</code></td><td>{esc(o['created'])}</td>"
        + "".join(
            f"<td>{esc(o['emails'].get(r, {}).get('status', ''))}"
            f" ({o['emails'].get(r, {}).get('attempts', 0)})</td>"
            for r in ("merchant", "customer")
        )
        + "</tr>"
        for o in state.get("orders", [])
    )
    sup = "".join(
        f"<tr><td>{esc(s.get('email', ''))}</td><td>{esc(str(s.get('reason', '')))}</td>"
        f"<td>{esc(str(s.get('expires_at') or 'permanent'))}</td></tr>"
        for s in state.get("suppression", [])
    )
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Local mail ({len(mail)})</title><link rel="icon" href="/img/logo.svg" type="image/svg+xml">
<link rel="stylesheet" href="/_dev/mail.css"></head><body>
<h1>Local mail viewer</h1><p>{len(mail)} email(s) sent through the local SES (moto), newest first.
<a href="/_dev/mail">Refresh</a> &middot; <a href="/">Shop</a></p>
{"".join(rows) or "<p>No email yet. Place an order in the shop.</p>"}
<h1>Orders: email status (attempts)</h1>
<table><thead><tr><th>Order</th><th>Created</th><th>Merchant alert</th><th>Receipt</th></tr>
</thead><tbody>{orders}</tbody></table>
<h1>Suppression list</h1>
<table><thead><tr><th>Address</th><th>Reason</th><th>Until</th></tr></thead><tbody>{sup}</tbody>
</table></body></html>"""


MAIL_CSS = """body{font:15px/1.4 system-ui,sans-serif;margin:2rem;max-width:60rem;color:#1d2b1d}
.mail{border:1px solid #ccd;border-radius:8px;padding:1rem;margin:1rem 0}
.mail iframe{width:100%;height:22rem;border:1px solid #eee}
table{border-collapse:collapse}td,th{border:1px solid #ccd;padding:.3rem .6rem;text-align:left}"""


COMPRESSIBLE = ("text/", "application/json", "image/svg+xml")


def compress(request: Request, response: Response) -> None:
    """gzip text responses for clients that accept it, as CloudFront does (Compress: true)."""
    response.vary.add("Accept-Encoding")
    ctype = response.mimetype or ""
    if (
        "gzip" not in request.headers.get("Accept-Encoding", "").lower()
        or response.headers.get("Content-Encoding")
        or not ctype.startswith(COMPRESSIBLE)
        or response.status_code < 200
        or response.status_code in (204, 304)
    ):
        return
    data = response.get_data()
    if len(data) < 1000:  # CloudFront compresses from 1,000 bytes
        return
    response.set_data(gzip.compress(data, compresslevel=6, mtime=0))
    response.headers["Content-Encoding"] = "gzip"


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    body = {"error": {"code": code, "message": message, "fields": {}}}
    r = Response(json.dumps(body), status, content_type="application/json", headers=headers)
    return r


class DevServer:
    """The WSGI app: static site, /config.json, the Turnstile stand-in, /api proxy, /_dev/mail."""

    def __init__(
        self,
        chalice_url: str = "http://127.0.0.1:8001",
        moto_url: str = "http://127.0.0.1:4566",
        sitekey: str = PASS_SITEKEY,
    ) -> None:
        self.chalice_url = chalice_url
        self.moto_url = moto_url
        self.config = local_config(sitekey)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        try:
            response = self.route(request)
        except Exception as e:  # noqa: BLE001 - a dev server answers, whatever happened
            response = _error(500, "internal_error", f"dev server: {type(e).__name__}")
        if not request.path.startswith("/_dev/mail"):  # the viewer shows emails' inline styles
            for k, v in SECURITY_HEADERS.items():
                response.headers.setdefault(k, v)
        compress(request, response)
        return response(environ, start_response)

    def route(self, request: Request) -> Response:
        path = request.path
        if path == "/api" or path.startswith("/api/"):
            return self.proxy(request)
        if request.method not in ("GET", "HEAD"):
            return Response("method not allowed\n", 405, {"Allow": "GET, HEAD"})
        if path == "/config.json":
            return self.json(self.config, cache="no-cache")
        if path == STANDIN_PATH:
            return Response(
                standin_script(),
                content_type="text/javascript; charset=utf-8",
                headers={"Cache-Control": "no-cache"},
            )
        if path == "/_dev/mail.json":
            return self.json({"mail": recorded_mail(self.moto_url), **local_state(self.moto_url)})
        if path == "/_dev/mail":
            page = render_mail_page(recorded_mail(self.moto_url), local_state(self.moto_url))
            return Response(page, content_type="text/html; charset=utf-8")
        if path == "/favicon.ico":  # browsers ask for it on pages without an icon (JSON views)
            path = "/img/logo.svg"
        if path == "/_dev/mail.css":
            return Response(MAIL_CSS, content_type="text/css; charset=utf-8")
        return self.static(path)

    @staticmethod
    def json(body: Any, cache: str = "no-store") -> Response:
        return Response(
            json.dumps(body), content_type="application/json", headers={"Cache-Control": cache}
        )

    @staticmethod
    def static(path: str) -> Response:
        not_found = Response("not found\n", 404, content_type="text/plain; charset=utf-8")
        rel = path.lstrip("/") or "index.html"
        if rel == "admin":  # the back office's short address (CloudFront: AdminPathFunction)
            rel = "admin.html"
        if "\x00" in rel or "\\" in rel or any(p in ("..", "") for p in rel.split("/")[:-1]):
            return not_found
        try:
            target = (WEBSITE / rel).resolve()
            if target.is_dir():
                target = target / "index.html"
            if WEBSITE.resolve() not in target.parents or not target.is_file():
                return not_found
            data = target.read_bytes()
        except (OSError, ValueError):  # a name the file system refuses
            return not_found
        if target.name == "config.json" and target.parent == WEBSITE.resolve():
            return not_found  # the dev server's own /config.json is the local one
        ctype = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        if ctype.startswith("text/") or ctype in ("application/json", "image/svg+xml"):
            ctype += "; charset=utf-8"
        cache = "no-cache" if target.suffix in (".html", ".json") else "max-age=60"
        return Response(data, content_type=ctype, headers={"Cache-Control": cache})

    def proxy(self, request: Request) -> Response:
        raw_length = request.headers.get("Content-Length")
        chunked = "chunked" in request.headers.get("Transfer-Encoding", "").lower()
        if raw_length is not None and not chunked:
            if not raw_length.strip().isdigit():
                return _error(400, "bad_request", "Content-Length must be a number of bytes.")
            if int(raw_length) > MAX_BODY:
                msg = "The request body is too large."
                return _error(413, "payload_too_large", msg, {"Connection": "close"})
        body = request.stream.read(MAX_BODY + 1) if (raw_length or chunked) else b""
        if len(body) > MAX_BODY:
            return _error(413, "payload_too_large", "The request body is too large.")
        query = request.query_string.decode("latin-1")
        upstream = self.chalice_url + request.path[len("/api") :] + ("?" + query if query else "")
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        req = urllib.request.Request(
            upstream,
            data=body if request.method not in ("GET", "HEAD") or body else None,
            headers=headers,
            method=request.method,
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as r:  # noqa: S310 - loopback only
                status, rheaders, rbody = r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            status, rheaders, rbody = e.code, e.headers, e.read()
        except (urllib.error.URLError, TimeoutError, ConnectionError, ValueError):
            r503 = _error(
                503,
                "service_unavailable",
                "The API is not reachable. Please try again in a moment.",
                {"Retry-After": "2"},
            )
            return r503
        out = Response(rbody, status)
        for k, v in rheaders.items():
            if k.lower() not in HOP_BY_HOP:
                out.headers.add(k, v) if k.lower() != "content-type" else out.headers.set(k, v)
        return out


class _Handler(WSGIRequestHandler):
    # a request line we can't parse still gets a status line (http.server would answer it
    # HTTP/0.9 style: a bare body)
    default_request_version = "HTTP/1.0"

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        if os.environ.get("DEVSERVER_QUIET") != "1":
            super().log_request(code, size)


def serve(
    host: str, port: int, chalice_url: str, moto_url: str, sitekey: str = PASS_SITEKEY
) -> BaseWSGIServer:
    """A threaded werkzeug server for the dev app (listen backlog 128: bursts are queued)."""
    app = DevServer(chalice_url, moto_url, sitekey)
    return make_server(host, port, app, threaded=True, request_handler=_Handler)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=int(os.environ.get("WEB_PORT") or "8000"))
    p.add_argument("--chalice-url", default="http://127.0.0.1:8001")
    p.add_argument("--moto-url", default="http://127.0.0.1:4566")
    p.add_argument("--sitekey", default=PASS_SITEKEY, help="Turnstile sitekey in /config.json")
    a = p.parse_args()
    serve_forever_until_interrupted(serve(a.host, a.port, a.chalice_url, a.moto_url, a.sitekey))


if __name__ == "__main__":
    main()
