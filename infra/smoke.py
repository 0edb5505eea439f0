"""End-to-end checks against a deployed stage (or the rehearsal), pointable at any endpoints.

    python infra/deploy.py smoke --stage prod                       (endpoints from the stack)
    python infra/deploy.py smoke --stage prod --site-url URL --api-url URL --suppression-table T

Checks, one line each: the site and its security headers through CloudFront, the stage's
config.json, a 404 page for an unknown path, the catalog through CloudFront (cacheable for at
most 60 s), a junk order refused with the JSON error shape, the execute-api URL refused
without CloudFront's origin header, http -> https; then an order to SES's mailbox simulator
(success@simulator.amazonses.com) and one to bounce@simulator.amazonses.com whose bounce must
reach the suppression table through the real SES -> SNS -> Lambda path.

The orders need a Turnstile token the stage's secret accepts: Cloudflare's test token
(default) passes with its test secret keys (dev, the rehearsal). For prod, pass a real token
(`--turnstile-token`, e.g. copied from a browser session) or `--no-order`. Outside business
hours the shop answers 422 `closed`: the order checks then report "skipped".
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from typing import Any

SUCCESS = "success@simulator.amazonses.com"
BOUNCE = "bounce@simulator.amazonses.com"


def bounce_address() -> str:
    """A fresh bounce address per run (the simulator accepts +labels), so a redeploy's smoke
    sees its own bounce arrive rather than the one the retained table kept."""
    return f"bounce+smoke-{uuid.uuid4().hex[:10]}@simulator.amazonses.com"


@dataclass(frozen=True)
class Endpoints:
    site: str  # the shop's base URL, e.g. https://shop.example.com/
    api: str  # the execute-api stage URL, e.g. https://abc.execute-api.us-east-1.amazonaws.com/api/
    suppression_table: str = ""
    https: bool = True  # false for the rehearsal's loopback edge (no TLS, no redirect)
    bounce_wait_seconds: float = 120.0


def fetch(
    url: str, method: str = "GET", body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, method=method, data=body, headers=headers or {})  # noqa: S310

    class _NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *a: Any, **kw: Any) -> None:
            return None

    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(req, timeout=30) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


def _is_error_shape(body: bytes, code: str | None = None) -> bool:
    data = _json(body)
    if not isinstance(data, dict) or set(data) != {"error"}:
        return False
    err = data["error"]
    ok = isinstance(err, dict) and {"code", "message", "fields"} <= set(err)
    return ok and (code is None or err["code"] == code)


def _order(email: str, token: str) -> bytes:
    return json.dumps(
        {
            "name": "Smoke Test",
            "email": email,
            "phone": "(212) 555-0143",
            "shipping": {
                "line1": "1 Main Street",
                "line2": "",
                "city": "New York",
                "state": "NY",
                "zip": "10001",
            },
            "items": [{"sku": "green-machine", "qty": 2}, {"sku": "beet-it", "qty": 1}],
            "turnstile_token": token,
            "website": "",
        }
    ).encode()


def suppressed(table: str, email: str) -> bool:
    import boto3

    from chalicelib.suppression import SuppressionStore

    ddb = boto3.session.Session(region_name="us-east-1").client("dynamodb")
    return SuppressionStore(ddb, table).is_suppressed(email, time.time()) is not None


def run(stage: str, ep: Endpoints, order: bool = True, token: str = "") -> int:
    failures: list[str] = []

    def check(what: str, ok: bool, detail: str = "") -> None:
        print(("ok   " if ok else "FAIL ") + what + (f"  ({detail})" if detail else ""), flush=True)
        if not ok:
            failures.append(what)

    site = ep.site if ep.site.endswith("/") else ep.site + "/"
    api = ep.api if ep.api.endswith("/") else ep.api + "/"
    status, headers, _ = fetch(site)
    check("site answers 200", status == 200, str(status))
    if ep.https:
        check("HSTS header", "max-age=" in headers.get("strict-transport-security", ""))
    csp = headers.get("content-security-policy", "")
    check("CSP frame-ancestors 'none'", "frame-ancestors 'none'" in csp)
    check("nosniff", headers.get("x-content-type-options") == "nosniff")
    status, _, body = fetch(site + "config.json")
    config = _json(body) if status == 200 else None
    check("config.json is this stage", isinstance(config, dict) and config.get("stage") == stage)
    status, headers, body = fetch(site + f"no-such-page-{uuid.uuid4().hex[:8]}")
    check(
        "unknown path is the 404 page",
        status == 404 and headers.get("content-type", "").startswith("text/html"),
        f"{status} {headers.get('content-type', '')}",
    )
    status, headers, body = fetch(site + "api/catalog")
    check("GET /api/catalog via CloudFront", status == 200 and body.startswith(b"{"), str(status))
    cache = headers.get("cache-control", "")
    ages = [int(a) for a in re.findall(r"max-age=(\d+)", cache)]
    check("catalog cacheable for at most 60 s", bool(ages) and max(ages) <= 60, cache)
    status, _, body = fetch(
        site + "api/orders", "POST", b"{}", {"Content-Type": "application/json"}
    )
    check("junk order: 4xx in the JSON error shape", 400 <= status < 500 and _is_error_shape(body),
          str(status))  # fmt: skip
    status, headers, body = fetch(site + "admin")
    check(
        "/admin is the back office page",
        status == 200 and b"<title>Back office" in body and "frame-ancestors 'none'" in
        headers.get("content-security-policy", ""),
        str(status),
    )  # fmt: skip
    status, _, body = fetch(site + "api/admin/orders?day=2026-01-01")
    check("admin API without a session: 401 in the error shape",
          status == 401 and _is_error_shape(body, "unauthorized"), str(status))  # fmt: skip
    status, _, body = fetch(api + "catalog")
    check("execute-api URL without X-Origin-Verify is 403", status == 403, str(status))
    check("... in the JSON error shape", _is_error_shape(body, "forbidden"), body[:80].decode())
    if ep.https:
        status, _, _ = fetch(site.replace("https://", "http://", 1))
        check("http redirects to https", status in (301, 302, 307, 308), str(status))
    if order:
        _orders(site, ep, token, check)
    print(f"{len(failures)} failed")
    return 1 if failures else 0


def _orders(site: str, ep: Endpoints, token: str, check: Any) -> None:
    headers = {"Content-Type": "application/json"}
    bounce = bounce_address()
    for email in (SUCCESS, bounce):
        key = f"smoke-{uuid.uuid4().hex[:16]}"
        status, _, body = fetch(
            site + "api/orders", "POST", _order(email, token), {**headers, "Idempotency-Key": key}
        )
        data = _json(body) or {}
        if status == 422 and (data.get("error") or {}).get("code") == "closed":
            print(f"skip order to {email}: the shop is closed now ({data['error']['message']})")
            return
        check(f"order to {email} accepted", status == 201, f"{status} {body[:120].decode()}")
        if status != 201:
            return
    if not ep.suppression_table:
        print("skip bounce check: no suppression table given")
        return
    deadline = time.monotonic() + ep.bounce_wait_seconds
    found = suppressed(ep.suppression_table, bounce)
    while not found and time.monotonic() < deadline:
        time.sleep(1)
        found = suppressed(ep.suppression_table, bounce)
    check("bounce reached the suppression table (SES -> SNS -> Lambda)", found)
