"""The order-link pages through chalice.test.Client against the real moto server: GET is safe,
every transition, replays, tampered/expired/wrong tokens, junk forms; and the status emails."""

from __future__ import annotations

import html as html_lib
import json
import re
from datetime import UTC, datetime
from typing import Any
from unittest import mock
from urllib.parse import urlencode

import pytest

from chalicelib import links, tokens
from chalicelib.fulfilment import clean_reason
from chalicelib.settings import LOCAL_LINK_SECRET, load
from chalicelib.status_mail import render_status
from tests.unit.test_lifecycle import T0, sample_order, seed_order, seed_slot, slot, stored

SECRET = b"api-test-link-secret"
OID = "7MZK3Q0D9X"
DAY = "2026-12-03"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
NOW = datetime.fromtimestamp(T0 + 3600, UTC)


@pytest.fixture(autouse=True)
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LINK_SECRET", SECRET.decode())
    monkeypatch.setenv("SHOP_TIMEZONE", "America/New_York")


@pytest.fixture(autouse=True)
def clock() -> Any:
    with mock.patch("chalicelib.clock.now", return_value=NOW) as m:
        yield m


def action_tok(action: str, oid: str = OID, minted: int = T0, ttl: int = 14) -> str:
    return links.action_token(oid, action, SECRET, minted, ttl)


def get(client: Any, path: str) -> Any:
    return client.http.get(path)


def post(client: Any, token: str, body: str | bytes | dict[str, str], **headers: str) -> Any:
    raw = urlencode(body) if isinstance(body, dict) else body
    return client.http.post(f"/o/{token}", headers={**FORM, **headers}, body=raw)


def html(r: Any) -> str:
    return r.body.decode() if isinstance(r.body, bytes) else str(r.body)


def assert_page(r: Any, status: int) -> str:
    assert r.status_code == status, html(r)[:500]
    assert r.headers["Content-Type"] == "text/html; charset=utf-8"
    assert r.headers["Cache-Control"] == "no-store"
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Referrer-Policy"] == "no-referrer"
    assert "script-src" not in r.headers["Content-Security-Policy"]
    page = html(r)
    assert page.startswith("<!doctype html>")
    assert '<link rel="stylesheet" href="/css/pages.css">' in page
    assert "<script" not in page.lower() and "style=" not in page.lower() and "<style" not in page
    assert not re.search(r"\son[a-z]+\s*=", page), "inline event handler"
    assert "Traceback" not in page
    return page


def text(page: str) -> str:
    """What a reader sees: tags dropped, entities decoded."""
    return html_lib.unescape(re.sub(r"<[^>]+>", "", page))


def hrefs(page: str) -> list[str]:
    return re.findall(r'<a href="([^"]+)"', page)


# --- GET never changes anything -------------------------------------------------------------


@pytest.mark.parametrize(
    "status, action, question",
    [
        ("accepted", "confirm", "Confirm order 7MZK3Q0D9X?"),
        ("confirmed", "dispatch", "Mark order 7MZK3Q0D9X as out for delivery?"),
        ("out_for_delivery", "deliver", "Mark order 7MZK3Q0D9X as delivered?"),
        ("confirmed", "cancel", "Cancel order 7MZK3Q0D9X?"),
    ],
)
def test_get_shows_the_question_and_changes_nothing(
    client: Any, ddb: Any, status: str, action: str, question: str
) -> None:
    seed_order(ddb, status=status)
    seed_slot(ddb, DAY, 3)
    before = stored(ddb)
    for _ in range(2):
        page = assert_page(get(client, f"/o/{action_tok(action)}"), 200)
        assert f"<h1>{question}</h1>" in page
        assert '<form method="post" class="act">' in page
        assert f'<input type="hidden" name="action" value="{action}">' in page
        assert "Green Machine" in page and "$31.47" in page and "Thursday 3 December" in page
        assert ("<textarea" in page) == (action == "cancel")
    assert stored(ddb) == before
    assert slot(ddb, DAY) == 3


# --- every transition ------------------------------------------------------------------------


def test_every_transition_through_the_links(client: Any, ddb: Any) -> None:
    seed_order(ddb)
    token = action_tok("confirm")
    for action, state, label in [
        ("confirm", "confirmed", "confirmed"),
        ("dispatch", "out_for_delivery", "out for delivery"),
        ("deliver", "delivered", "delivered"),
    ]:
        r = post(client, token, {"action": action})
        page = assert_page(r, 200)
        assert f"Order {OID} is now {label}" in page
        assert stored(ddb)["status"] == state
        assert stored(ddb)["history"][-1] == {"status": state, "at": T0 + 3600, "by": "link"}
        # the done page links to the next actions' confirm pages (relative, GET)
        nxt = hrefs(page)
        if action == "deliver":
            assert nxt == []
            break
        claims = [links.parse_action_token(h, SECRET, T0 + 3600) for h in nxt]
        assert [c.action for c in claims][0] == {"confirm": "dispatch", "dispatch": "deliver"}[
            action
        ]
        token = nxt[0]
        assert_page(get(client, f"/o/{token}"), 200)  # follow it: the next confirm page
    assert [h["status"] for h in stored(ddb)["history"]] == [
        "accepted", "confirmed", "out_for_delivery", "delivered"]  # fmt: skip


def test_replayed_post_is_a_no_op(client: Any, ddb: Any) -> None:
    seed_order(ddb)
    token = action_tok("confirm")
    assert_page(post(client, token, {"action": "confirm"}), 200)
    page = assert_page(post(client, token, {"action": "confirm"}), 200)
    assert f"Order {OID} was already confirmed" in page
    assert len(stored(ddb)["history"]) == 2
    # and the GET of a done action says so instead of asking again
    page = assert_page(get(client, f"/o/{token}"), 200)
    assert "was already confirmed" in page and "<form" not in page


def test_cancel_with_a_reason_gives_the_slot_back_once(client: Any, ddb: Any) -> None:
    seed_order(ddb, status="confirmed")
    seed_slot(ddb, DAY, 3)
    token = action_tok("cancel")
    reason = "Out of <b>beets</b> \u202e\x00today\r\nSorry!"
    page = assert_page(post(client, token, {"action": "cancel", "reason": reason}), 200)
    assert f"Order {OID} is now cancelled" in page
    order = stored(ddb)
    assert order["status"] == "cancelled"
    assert order["history"][-1]["reason"] == "Out of <b>beets</b> today\nSorry!"
    assert slot(ddb, DAY) == 2
    again = assert_page(post(client, token, {"action": "cancel", "reason": "again"}), 200)
    assert "was already cancelled" in again
    assert slot(ddb, DAY) == 2
    # the shopper's status page shows the reason, escaped
    status = assert_page(get(client, f"/s/{links.status_token(OID, SECRET, T0)}"), 200)
    assert "Out of &lt;b&gt;beets&lt;/b&gt; today" in status and "<b>beets" not in status


def test_cancel_after_delivered_is_a_409_page(client: Any, ddb: Any) -> None:
    seed_order(ddb, status="delivered")
    seed_slot(ddb, DAY, 3)
    before = stored(ddb)
    token = action_tok("cancel")
    page = assert_page(post(client, token, {"action": "cancel", "reason": "late"}), 409)
    assert f"Order {OID} can't be cancelled" in text(page) and "delivered" in page
    assert stored(ddb) == before
    assert slot(ddb, DAY) == 3
    assert_page(get(client, f"/o/{token}"), 409)


@pytest.mark.parametrize("status", ["accepted", "cancelled"])
def test_out_of_order_actions_are_409(client: Any, ddb: Any, status: str) -> None:
    seed_order(ddb, status=status)
    before = stored(ddb)
    assert_page(post(client, action_tok("deliver"), {"action": "deliver"}), 409)
    assert stored(ddb) == before


# --- tokens ----------------------------------------------------------------------------------


def _tamper(token: str) -> str:
    payload, sig = token.split(".")
    return payload[:-2] + ("AA" if payload[-2:] != "AA" else "BB") + "." + sig


BAD_TOKENS = {
    "tampered": lambda: _tamper(action_tok("confirm")),
    "other_secret": lambda: links.action_token(OID, "confirm", b"not-the-secret", T0, 14),
    "expired": lambda: action_tok("confirm", minted=T0 - 15 * 86400),
    "status_token": lambda: links.status_token(OID, SECRET, T0),
    "unknown_action": lambda: tokens.sign(
        SECRET, "order-action", {"o": OID, "a": "refund"}, T0 + 86400
    ),  # fmt: skip
    "malformed": lambda: "not-a-token",
    "long": lambda: "a." + "b" * 3000,
}


@pytest.mark.parametrize("kind", sorted(BAD_TOKENS))
def test_bad_tokens_get_a_403_page_and_change_nothing(
    client: Any, ddb: Any, kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    seed_order(ddb)
    before = stored(ddb)
    token = BAD_TOKENS[kind]()
    capsys.readouterr()
    g = assert_page(get(client, f"/o/{token}"), 403)
    p = assert_page(post(client, token, {"action": "confirm"}), 403)
    title = "This link has expired" if kind == "expired" else "This link can't be used"
    assert title in text(g) and title in text(p)
    assert stored(ddb) == before
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    decisions = [x for x in lines if x.get("event", "").startswith("order_link")]
    assert [d["outcome"] for d in decisions] == ["refused", "refused"]
    assert all(d["token"] == tokens.fingerprint(token) for d in decisions)
    assert token not in json.dumps(lines)


def test_token_expires_with_the_clock(client: Any, ddb: Any, clock: Any) -> None:
    seed_order(ddb)
    token = action_tok("confirm", minted=T0)
    clock.return_value = datetime.fromtimestamp(T0 + 14 * 86400, UTC)
    assert "expired" in assert_page(get(client, f"/o/{token}"), 403)
    assert stored(ddb)["status"] == "accepted"


def test_wrong_action_in_the_form_is_403(client: Any, ddb: Any) -> None:
    seed_order(ddb)
    assert_page(post(client, action_tok("confirm"), {"action": "cancel"}), 403)
    assert stored(ddb)["status"] == "accepted"


def test_valid_token_for_a_missing_order_is_404(client: Any, ddb: Any) -> None:
    token = action_tok("confirm", oid="0000000000")
    assert "Order not found" in assert_page(get(client, f"/o/{token}"), 404)
    assert_page(post(client, token, {"action": "confirm"}), 404)
    assert_page(get(client, f"/s/{links.status_token('0000000000', SECRET, T0)}"), 404)


def test_an_idempotency_record_is_not_an_order(client: Any, ddb: Any) -> None:
    seed_order(ddb, kind="idem")
    assert_page(get(client, f"/o/{action_tok('confirm')}"), 404)


@pytest.mark.parametrize(
    "token",
    ["%00", "..%2F..%2Fs", "%ff%fe", "a" * 5000, "a.b", "%F0%9F%8D%8A.x", "x%0d%0aSet-Cookie:a"],
)
def test_odd_paths_are_403_pages(client: Any, ddb: Any, token: str) -> None:
    seed_order(ddb)
    for r in (get(client, f"/o/{token}"), post(client, token, {"action": "confirm"}),
              get(client, f"/s/{token}")):  # fmt: skip
        assert_page(r, 403)
    assert stored(ddb)["status"] == "accepted"


def test_times_are_shown_in_the_shops_timezone(client: Any, ddb: Any) -> None:
    seed_order(ddb, created_at=1_796_000_000)  # 2026-11-30 00:53:20 UTC
    page = assert_page(get(client, f"/s/{links.status_token(OID, SECRET, T0)}"), 200)
    assert "Sunday 29 November 2026, 7:53 PM EST" in page


# --- junk forms ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body, headers, status",
    [
        ("action=confirm", {"Content-Type": "text/plain"}, 415),
        ('{"action": "confirm"}', {"Content-Type": "application/json"}, 415),
        ("action=confirm", {"Content-Type": "multipart/form-data; boundary=x"}, 415),
        (b"action=confirm&reason=\xff\xfe", {}, 400),
        ("action=confirm&action=cancel", {}, 400),
        ("reason=hello", {}, 400),
        ("", {}, 400),
        ("&&&===", {}, 400),
        ("a=1&" * 20 + "action=confirm", {}, 400),
        ("action=confirm&reason=" + "x" * 9000, {}, 413),
    ],
)
def test_junk_forms_get_an_html_error_page(
    client: Any, ddb: Any, body: str | bytes, headers: dict[str, str], status: int
) -> None:
    seed_order(ddb)
    before = stored(ddb)
    r = post(client, action_tok("confirm"), body, **headers)
    assert_page(r, status)
    assert stored(ddb) == before


def test_a_too_long_reason_shows_the_form_again(client: Any, ddb: Any) -> None:
    seed_order(ddb)
    seed_slot(ddb, DAY, 3)
    r = post(client, action_tok("cancel"), {"action": "cancel", "reason": "x" * 501})
    page = assert_page(r, 400)
    assert "at most 500 characters" in page and '<textarea id="reason"' in page
    assert stored(ddb)["status"] == "accepted"
    assert slot(ddb, DAY) == 3
    ok = post(client, action_tok("cancel"), {"action": "cancel", "reason": "x" * 500})
    assert_page(ok, 200)


def test_a_reason_is_ignored_for_other_actions(client: Any, ddb: Any) -> None:
    seed_order(ddb)
    assert_page(post(client, action_tok("confirm"), {"action": "confirm", "reason": "hi"}), 200)
    assert "reason" not in stored(ddb)["history"][-1]


def test_dynamodb_trouble_is_a_503_page(
    client: Any, ddb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed_order(ddb)
    monkeypatch.setenv("ORDERS_TABLE", "no-such-table")  # an injected fault
    assert "Please try again" in assert_page(get(client, f"/o/{action_tok('confirm')}"), 503)
    assert_page(post(client, action_tok("confirm"), {"action": "confirm"}), 503)
    assert_page(get(client, f"/s/{links.status_token(OID, SECRET, T0)}"), 503)


# --- the shopper's status page ---------------------------------------------------------------


def test_status_page_shows_only_what_the_emails_say(client: Any, ddb: Any) -> None:
    seed_order(ddb, status="confirmed", flags=["dns_unverified"],
               history=[{"status": "accepted", "at": T0, "by": "shopper"},
                        {"status": "confirmed", "at": T0 + 60, "by": "link"}])  # fmt: skip
    before = stored(ddb)
    page = assert_page(get(client, f"/s/{links.status_token(OID, SECRET, T0)}"), 200)
    for shown in ("Your order 7MZK3Q0D9X", "Your order is confirmed.", "Thursday 3 December",
                  "Green Machine", "Beet It", "$31.47", "1 Main Street", "Apt 4", "New York",
                  "10001", "Jane Doe", "Received", "Confirmed"):  # fmt: skip
        assert shown in page, shown
    for hidden in ("jane@deliverable.test", "deliverable.test", "+12125550143", "555",
                   "dns_unverified", "shopper", ">link<", "<form", "<button"):  # fmt: skip
        assert hidden not in page, hidden
    assert hrefs(page) == []
    assert stored(ddb) == before


def test_status_page_refuses_action_tokens_and_junk(client: Any, ddb: Any) -> None:
    seed_order(ddb)
    for token in (action_tok("confirm"), "junk", _tamper(links.status_token(OID, SECRET, T0))):
        assert_page(get(client, f"/s/{token}"), 403)


def test_link_secret_defaults_only_in_the_local_stage(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LINK_SECRET")
    monkeypatch.setenv("STAGE", "local")
    assert load().link_secret == LOCAL_LINK_SECRET
    monkeypatch.setenv("STAGE", "prod")
    assert load().link_secret == ""


def test_no_secret_in_a_cloud_stage_is_503_not_a_forgeable_page(
    client: Any, ddb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chalicelib.fulfilment import Fulfilment
    from chalicelib.lifecycle import Lifecycle

    seed_order(ddb)
    f = Fulfilment(Lifecycle(ddb, "orders"), b"", shop_name="Shop", timezone="UTC")
    assert f.show_action(action_tok("confirm")).status == 503
    assert f.show_status(links.status_token(OID, SECRET, T0)).status == 503


@pytest.mark.parametrize(
    "raw, clean",
    [("  hi  ", "hi"), ("a\r\nb\rc", "a\nb\nc"), ("x\u202ey\u200bz\x07", "xyz"),
     ("\t\x00", ""), ("naïve — ok", "naïve — ok")],
)  # fmt: skip
def test_clean_reason(raw: str, clean: str) -> None:
    assert clean_reason(raw) == clean


# --- status emails (rendering; sending is the outbox's) -------------------------------------

URL = "https://juice.example.com/api/s/TOKEN"


@pytest.mark.parametrize(
    "status, subject, says",
    [
        ("confirmed", "Your Pressed & Co. order 7MZK3Q0D9X is confirmed",
         "We'll deliver on Thursday 3 December."),
        ("out_for_delivery", "Your Pressed & Co. order 7MZK3Q0D9X is on its way",
         "is out for delivery today, Thursday 3 December"),
        ("delivered", "Your Pressed & Co. order 7MZK3Q0D9X was delivered", "Thank you"),
        ("cancelled", "Your Pressed & Co. order 7MZK3Q0D9X was cancelled", "was cancelled."),
    ],
)  # fmt: skip
def test_status_emails(status: str, subject: str, says: str) -> None:
    order = sample_order(status=status)
    e = render_status(order, status, shop_name="Pressed & Co.",
                      merchant_email="merchant@juice.example.com", status_url=URL)  # fmt: skip
    assert (e.role, e.to, e.subject) == (f"status_{status}", "jane@deliverable.test", subject)
    assert e.reply_to == "merchant@juice.example.com"
    assert says in e.text
    assert says in " ".join(text(e.html).split())
    assert URL in e.text and f'href="{URL}"' in e.html
    assert "Pressed &amp; Co." in e.html and "Pressed & Co." in e.text


def test_cancelled_email_carries_the_reason_escaped() -> None:
    order = sample_order(status="cancelled", history=[
        {"status": "accepted", "at": T0}, {"status": "cancelled", "at": T0 + 1,
                                           "reason": "No <beets> & no kale"}])  # fmt: skip
    e = render_status(order, "cancelled", shop_name="Shop", merchant_email="m@x.test",
                      status_url=URL)  # fmt: skip
    assert "Reason: No <beets> & no kale" in e.text
    assert "No &lt;beets&gt; &amp; no kale" in e.html and "<beets>" not in e.html
    plain = render_status(sample_order(status="cancelled"), "cancelled", shop_name="Shop",
                          merchant_email="m@x.test", status_url=URL)  # fmt: skip
    assert "Reason" not in plain.text
    given = render_status(order, "cancelled", shop_name="Shop", merchant_email="m@x.test",
                          status_url=URL, reason="Given")  # fmt: skip
    assert "Reason: Given" in given.text


def test_status_email_escapes_the_customer_name_and_refuses_unknown_statuses() -> None:
    order = sample_order(customer={"name": "<img src=x>", "email": "a@b.test", "phone": "+1"})
    e = render_status(order, "delivered", shop_name="S", merchant_email="m@x.test",
                      status_url=URL)  # fmt: skip
    assert "Hi &lt;img," in e.html and "<img" not in e.html  # greeted by first name, escaped
    with pytest.raises(ValueError):
        render_status(order, "accepted", shop_name="S", merchant_email="m@x.test", status_url=URL)
