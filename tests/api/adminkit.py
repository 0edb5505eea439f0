"""Helpers of the back-office API tests: sign in through the mailed link like a merchant."""

from __future__ import annotations

import html
import json
import re
from typing import Any
from urllib.parse import urlparse

MERCHANT = "merchant@juice.example.com"
JSON = {"Content-Type": "application/json"}
CSRF = {"X-Requested-With": "admin"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def mail_to(aws: Any, address: str) -> list[dict[str, Any]]:
    return [m for m in aws.sent_mail() if address in m["destinations"]["ToAddresses"]]


def login_links(aws: Any, address: str = MERCHANT) -> list[str]:
    """Paths (`/admin/login/<token>`, as chalice.test sends them) of every sign-in link mailed
    to `address`, oldest first."""
    found = []
    for m in mail_to(aws, address):
        for url in re.findall(r'href="([^"]+/api/admin/login/[^"]+)"', m["body"]):
            found.append(urlparse(html.unescape(url)).path.removeprefix("/api"))
    return found


def ask_link(client: Any, email: str = MERCHANT, **headers: str) -> Any:
    return client.http.post(
        "/admin/login", headers={**JSON, **headers}, body=json.dumps({"email": email})
    )


def session_cookie(response: Any) -> str:
    """`admin_session=<token>` from a Set-Cookie header."""
    value = response.headers["Set-Cookie"]
    return value.split(";", 1)[0]


def sign_in(client: Any, aws: Any) -> dict[str, str]:
    """The headers of a signed-in, state-changing admin request (cookie + CSRF header)."""
    r = ask_link(client)
    assert r.status_code == 202, r.body
    path = login_links(aws)[-1]
    used = client.http.post(path, headers=FORM, body="")
    assert used.status_code == 200, used.body[:300]
    assert "signed in" in used.body.decode()
    return {"Cookie": session_cookie(used), **CSRF}


def body(response: Any) -> Any:
    return json.loads(response.body)
