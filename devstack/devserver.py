"""Local dev web server (127.0.0.1:8000 by default).

- serves `website/` at `/` with the same security headers CloudFront adds in the cloud
- forwards `/api/*` to `chalice local` (same origin, like CloudFront's /api/* behaviour)
- `/_dev/mail` shows every email moto's SES recorded, newest first, plus each order's email
  statuses and the suppression list; `/_dev/mail.json` is the same as JSON.
Local tooling only: never deployed.
"""

from __future__ import annotations

import argparse
import html
import json
import mimetypes
import os
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
WEBSITE = ROOT / "website"
TURNSTILE = "https://challenges.cloudflare.com"
CSP = (
    "default-src 'self'; "
    f"script-src 'self' {TURNSTILE}; "
    f"frame-src {TURNSTILE}; "
    "style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'self'; object-src 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "X-Frame-Options": "DENY",
}
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
}
mimetypes.add_type("text/javascript", ".js")
mimetypes.add_type("text/javascript", ".mjs")
mimetypes.add_type("image/svg+xml", ".svg")
mimetypes.add_type("image/webp", ".webp")


def stage_config(stage: str, sitekey: str, api_base: str = "/api") -> dict[str, str]:
    return {"stage": stage, "apiBase": api_base, "turnstileSitekey": sitekey}


def write_stage_config(path: Path, stage: str, sitekey: str) -> None:
    """The per-stage config file the storefront reads (generated, never committed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(stage_config(stage, sitekey), indent=2) + "\n", encoding="utf-8")


def recorded_mail(moto_url: str) -> list[dict[str, Any]]:
    """moto's sent emails, newest first, in a simple shape."""
    with urllib.request.urlopen(moto_url + "/moto-api/data.json", timeout=5) as r:
        data = json.loads(r.read())
    out = []
    for m in reversed(data.get("ses", {}).get("Message", [])):
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


def local_state() -> dict[str, Any]:
    """Orders' email statuses and the suppression list, read from the local DynamoDB."""
    from devstack.inspect import email_statuses, suppression_list

    try:
        return {"orders": email_statuses(), "suppression": suppression_list()}
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
<title>Local mail ({len(mail)})</title><link rel="stylesheet" href="/_dev/mail.css"></head><body>
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


class Handler(BaseHTTPRequestHandler):
    server_version = "devserver"
    chalice_url = "http://127.0.0.1:8001"
    moto_url = "http://127.0.0.1:4566"
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt: str, *args: Any) -> None:
        if os.environ.get("DEVSERVER_QUIET") != "1":
            super().log_message(fmt, *args)

    def _send(self, status: int, body: bytes, ctype: str, headers: dict[str, str] | None = None):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802
        self._route()

    def do_HEAD(self) -> None:  # noqa: N802
        self._route()

    def do_POST(self) -> None:  # noqa: N802
        self._route()

    def do_PUT(self) -> None:  # noqa: N802
        self._route()

    def do_DELETE(self) -> None:  # noqa: N802
        self._route()

    def do_OPTIONS(self) -> None:  # noqa: N802
        self._route()

    def _route(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/api" or path.startswith("/api/"):
            return self._proxy()
        if path == "/_dev/mail.json":
            body = {"mail": recorded_mail(self.moto_url), **local_state()}
            return self._send(200, json.dumps(body).encode(), "application/json")
        if path == "/_dev/mail":
            page = render_mail_page(recorded_mail(self.moto_url), local_state())
            return self._send(200, page.encode(), "text/html; charset=utf-8")
        if path == "/_dev/mail.css":
            return self._send(200, MAIL_CSS.encode(), "text/css")
        if self.command not in ("GET", "HEAD"):
            return self._send(405, b"method not allowed", "text/plain")
        return self._static(path)

    def _static(self, path: str) -> None:
        rel = urllib.request.url2pathname(path).lstrip("/") or "index.html"
        target = (WEBSITE / rel).resolve()
        if target.is_dir():
            target = target / "index.html"
        if WEBSITE.resolve() not in target.parents or not target.is_file():
            return self._send(404, b"not found", "text/plain", SECURITY_HEADERS)
        ctype = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        if ctype.startswith("text/") or ctype in ("application/json", "image/svg+xml"):
            ctype += "; charset=utf-8"
        cache = "no-cache" if target.suffix in (".html", ".json") else "max-age=60"
        self._send(200, target.read_bytes(), ctype, {**SECURITY_HEADERS, "Cache-Control": cache})

    def _proxy(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        upstream = self.chalice_url + self.path[len("/api") :]
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        req = urllib.request.Request(upstream, data=body, headers=headers, method=self.command)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                status, rheaders, rbody = r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            status, rheaders, rbody = e.code, e.headers, e.read()
        except (urllib.error.URLError, TimeoutError, ConnectionError):
            msg = {
                "error": {
                    "code": "service_unavailable",
                    "message": "The API is not reachable. Please try again in a moment.",
                    "fields": {},
                    "retry_after": 2,
                }
            }
            body = json.dumps(msg).encode()
            return self._send(503, body, "application/json", {"Retry-After": "2"})
        extra = {k: v for k, v in rheaders.items() if k.lower() not in HOP_BY_HOP}
        extra.pop("Content-Type", None)
        self._send(status, rbody, rheaders.get("Content-Type", "application/json"), extra)


def serve(host: str, port: int, chalice_url: str, moto_url: str) -> ThreadingHTTPServer:
    handler = type("H", (Handler,), {"chalice_url": chalice_url, "moto_url": moto_url})
    return ThreadingHTTPServer((host, port), handler)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=int(os.environ.get("WEB_PORT") or "8000"))
    p.add_argument("--chalice-url", default="http://127.0.0.1:8001")
    p.add_argument("--moto-url", default="http://127.0.0.1:4566")
    a = p.parse_args()
    server = serve(a.host, a.port, a.chalice_url, a.moto_url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
