"""Back office sign-in: magic link (single use, 15 min), session cookie, CSRF, 401s."""

from __future__ import annotations

import json
import time
from typing import Any
from unittest import mock

import pytest

from tests.api.adminkit import (
    CSRF,
    FORM,
    JSON,
    MERCHANT,
    ask_link,
    body,
    login_links,
    mail_to,
    session_cookie,
    sign_in,
)

ADMIN_GETS = ["/admin/orders", "/admin/orders/ABCDEFGHJK", "/admin/email-health",
              "/admin/orders.csv?from=2026-01-01&to=2026-01-02", "/admin/session"]  # fmt: skip
ADMIN_POSTS = ["/admin/orders/ABCDEFGHJK/actions", "/admin/suppression/remove", "/admin/erase",
               "/admin/logout"]  # fmt: skip


def test_login_always_202_and_mails_only_merchants(client: Any, aws: Any) -> None:
    stranger = ask_link(client, "someone@deliverable.test")
    merchant = ask_link(client, "Merchant+shop@Juice.Example.com")  # canonical form matches
    assert stranger.status_code == merchant.status_code == 202
    assert body(stranger) == body(merchant)
    assert mail_to(aws, "someone@deliverable.test") == []
    # the link goes to the configured address, never to the spelling typed in: a "+tag" or
    # dotted variant may be another mailbox at the merchant's provider
    assert mail_to(aws, "Merchant+shop@Juice.Example.com") == []
    [link] = login_links(aws, MERCHANT)
    assert link.startswith("/admin/login/")


def test_link_get_does_not_use_the_token_and_post_signs_in_once(client: Any, aws: Any) -> None:
    ask_link(client)
    [path] = login_links(aws)
    for _ in range(2):  # a mail scanner and then the merchant open it
        page = client.http.get(path)
        assert page.status_code == 200 and "Sign in" in page.body.decode()
        assert "Set-Cookie" not in page.headers
    used = client.http.post(path, headers=FORM, body="")
    assert used.status_code == 200 and 'url=/admin"' in used.body.decode()
    cookie = used.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/api/admin" in cookie
    assert "Max-Age=43200" in cookie
    assert "Secure" not in cookie  # the local stage is plain http
    who = client.http.get("/admin/session", headers={"Cookie": session_cookie(used)})
    assert who.status_code == 200 and body(who)["who"] == "m***@juice.example.com"
    again = client.http.post(path, headers=FORM, body="")
    assert again.status_code == 401 and "Set-Cookie" not in again.headers
    assert client.http.get(path).status_code == 200  # still shows the page (token is genuine)


def test_expired_and_forged_links_are_refused(client: Any, aws: Any) -> None:
    ask_link(client)
    [path] = login_links(aws)
    later = time.time() + 16 * 60
    from datetime import UTC, datetime

    with mock.patch("chalicelib.clock.now", return_value=datetime.fromtimestamp(later, UTC)):
        assert client.http.post(path, headers=FORM, body="").status_code == 401
        assert client.http.get(path).status_code == 401
    forged = path[:-3] + ("AAA" if not path.endswith("AAA") else "BBB")
    assert client.http.post(forged, headers=FORM, body="").status_code == 401
    assert client.http.post("/admin/login/nonsense", headers=FORM, body="").status_code == 401
    # a session token is not a login token (purpose-bound)
    headers = sign_in(client, aws)
    session = headers["Cookie"].split("=", 1)[1]
    assert client.http.post(f"/admin/login/{session}", headers=FORM, body="").status_code == 401


@pytest.mark.parametrize("path", ADMIN_GETS)
def test_every_admin_get_needs_a_session(client: Any, path: str) -> None:
    r = client.http.get(path)
    assert r.status_code == 401
    assert body(r)["error"]["code"] == "unauthorized"
    bad = client.http.get(path, headers={"Cookie": "admin_session=abc.def"})
    assert bad.status_code == 401


@pytest.mark.parametrize("path", ADMIN_POSTS)
def test_every_admin_post_needs_a_session_and_the_csrf_header(
    client: Any, aws: Any, path: str
) -> None:
    assert client.http.post(path, headers={**JSON, **CSRF}, body="{}").status_code == 401
    headers = sign_in(client, aws)
    no_csrf = {"Cookie": headers["Cookie"], **JSON}
    r = client.http.post(path, headers=no_csrf, body="{}")
    assert r.status_code == 403 and body(r)["error"]["code"] == "forbidden"


def test_expired_session_is_401(client: Any, aws: Any) -> None:
    headers = sign_in(client, aws)
    from datetime import UTC, datetime

    later = datetime.fromtimestamp(time.time() + 12 * 3600 + 5, UTC)
    with mock.patch("chalicelib.clock.now", return_value=later):
        r = client.http.get("/admin/session", headers=headers)
    assert r.status_code == 401


def test_login_bad_input_is_shaped(client: Any) -> None:
    r = client.http.post("/admin/login", headers=JSON, body="{nope")
    assert r.status_code == 400 and body(r)["error"]["code"] == "invalid_json"
    r = client.http.post("/admin/login", headers=JSON, body=json.dumps({"email": 5}))
    assert r.status_code == 422 and "email" in body(r)["error"]["fields"]
    r = client.http.post("/admin/login", headers={"Content-Type": "text/plain"}, body="x")
    assert r.status_code == 415


def test_login_is_rate_limited_per_address(client: Any, aws: Any) -> None:
    codes = [ask_link(client, "someone@deliverable.test").status_code for _ in range(6)]
    assert codes == [202] * 5 + [429]
    assert ask_link(client).status_code == 202  # another address still may
    r = ask_link(client, "someone@deliverable.test")
    assert body(r)["error"]["code"] == "rate_limited" and "Retry-After" in r.headers


def test_sign_out_clears_the_cookie(client: Any, aws: Any) -> None:
    headers = sign_in(client, aws)
    r = client.http.post("/admin/logout", headers=headers, body="")
    assert r.status_code == 200 and "Max-Age=0" in r.headers["Set-Cookie"]


def test_sign_in_is_audited_without_the_address_or_token(
    client: Any, aws: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    headers = sign_in(client, aws)
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    [audit] = [x for x in lines if x.get("event") == "admin_audit"]
    assert audit["what"] == "sign_in" and audit["who"] == "m***@juice.example.com"
    out = json.dumps(lines)
    assert MERCHANT not in out and headers["Cookie"].split("=", 1)[1] not in out


def test_login_is_rate_limited_per_ip(client: Any) -> None:
    codes = [ask_link(client, f"guess{i}@deliverable.test").status_code for i in range(11)]
    assert codes == [202] * 10 + [429]
    r = ask_link(client, "guess99@deliverable.test")
    assert r.status_code == 429 and body(r)["error"]["code"] == "rate_limited"
