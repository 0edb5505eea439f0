"""POST /orders with the bot guard and recipient checks, against real local servers:
moto (AWS), the local siteverify server (Turnstile) and a dnslib DNS server."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from devstack.siteverify import FAIL_SECRET, SPENT_SECRET
from tests.helpers import error_of, order_body, post_order


def _rows(aws: Any) -> list[dict[str, Any]]:
    ddb = aws.client("dynamodb")
    return [i for i in ddb.scan(TableName="orders")["Items"] if i["pk"]["S"].startswith("order#")]


def _metrics(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.startswith('{"_aws"')]


def _rejections(out: str) -> list[str]:
    return [m["reason"] for m in _metrics(out) if "OrderRejected" in m]


def assert_nothing_stored_or_sent(aws: Any) -> None:
    assert _rows(aws) == []
    assert aws.sent_mail() == []


def test_honeypot_looks_like_success_but_stores_and_sends_nothing(
    client: Any, aws: Any, capsys: Any
) -> None:
    real = json.loads(post_order(client, order_body()).body)
    capsys.readouterr()
    aws.reset()
    from devstack.bootstrap import bootstrap

    bootstrap(aws.url)
    r = post_order(client, order_body(website="http://spam.example"))
    assert r.status_code == 201
    fake = json.loads(r.body)
    assert set(fake) == set(real) and fake["status"] == "accepted"
    assert len(fake["order_id"]) == 10 and fake["order_id"] != real["order_id"]
    assert fake["total_cents"] == real["total_cents"]
    assert_nothing_stored_or_sent(aws)
    assert _rejections(capsys.readouterr().out) == ["honeypot"]


@pytest.mark.parametrize(
    ("email", "reason"),
    [
        ("jane@null-mx.test", "null_mx"),
        ("jane@nope.test", "no_such_domain"),
        ("jane@no-ns.test", "no_mail_server"),
        ("jane@no-mail.test", "no_mail_server"),
        ("jane@mailinator.com", "disposable"),
        ("jane@x.mailinator.com", "disposable"),
        ("jane@throwaway.test", "disposable"),
    ],
)
def test_undeliverable_addresses_are_refused_before_anything_happens(
    client: Any, aws: Any, capsys: Any, email: str, reason: str
) -> None:
    r = post_order(client, order_body(email=email))
    assert r.status_code == 422
    err = error_of(r)
    assert err["code"] == "email_undeliverable" and err["reason"] == reason
    assert "email" in err["fields"]
    assert_nothing_stored_or_sent(aws)
    out = capsys.readouterr().out
    assert _rejections(out) == [reason]
    assert email not in out  # addresses are masked in logs


@pytest.mark.parametrize("email", ["jane@a-only.test", "jane@aaaa-only.test"])
def test_implicit_mx_is_accepted(client: Any, email: str) -> None:
    assert post_order(client, order_body(email=email)).status_code == 201


def test_dns_trouble_accepts_the_order_but_holds_the_receipt(client: Any, aws: Any) -> None:
    r = post_order(client, order_body(email="jane@servfail.test"))
    assert r.status_code == 201
    [row] = _rows(aws)
    assert {"S": "dns_unverified"} in row["flags"]["L"]
    assert row["emails"]["M"]["customer"]["M"]["status"]["S"] == "held"
    # the merchant hears about the order; nothing goes to the unverified domain yet
    assert [m["destinations"]["ToAddresses"] for m in aws.sent_mail()] == [
        ["merchant@juice.example.com"]
    ]


def test_dns_fail_closed_is_503(client: Any, aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DNS_FAIL_OPEN", "0")
    r = post_order(client, order_body(email="jane@servfail.test"))
    assert r.status_code == 503 and "Retry-After" in r.headers
    assert_nothing_stored_or_sent(aws)


@pytest.mark.parametrize("secret", [FAIL_SECRET, SPENT_SECRET])
def test_turnstile_refusal_is_403(
    client: Any, aws: Any, monkeypatch: pytest.MonkeyPatch, secret: str
) -> None:
    monkeypatch.setenv("TURNSTILE_SECRET", secret)
    r = post_order(client, order_body())
    assert r.status_code == 403
    err = error_of(r)
    assert err["code"] == "bot_check_failed" and "again" in err["message"]
    assert_nothing_stored_or_sent(aws)


@pytest.mark.parametrize("token", [None, "", "x" * 2049, "tok\ud800en", "tök€n", "a\nb"])
def test_missing_or_oversized_token_is_403_without_calling_cloudflare(
    client: Any, aws: Any, siteverify: Any, token: Any
) -> None:
    r = post_order(client, order_body(turnstile_token=token))
    assert r.status_code == 403
    assert siteverify.requests() == []
    assert_nothing_stored_or_sent(aws)


def test_turnstile_outage_is_503_with_retry_after(client: Any, aws: Any, siteverify: Any) -> None:
    siteverify.control(mode="http500")
    r = post_order(client, order_body())
    assert r.status_code == 503
    assert error_of(r)["code"] == "service_unavailable" and int(r.headers["Retry-After"]) > 0
    assert len(siteverify.requests()) == 2  # one retry, then fail closed
    assert_nothing_stored_or_sent(aws)


def test_turnstile_hiccup_is_retried_once_and_the_order_goes_through(
    client: Any, aws: Any, siteverify: Any
) -> None:
    siteverify.control(mode="internal-error", fail_times=1)
    assert post_order(client, order_body()).status_code == 201
    assert len(siteverify.requests()) == 2


def test_retry_with_same_key_is_not_a_duplicate_token(client: Any, siteverify: Any) -> None:
    body = order_body()
    assert post_order(client, body, key="retry-key-42").status_code == 201
    assert post_order(client, body, key="retry-key-42").status_code == 201


def test_checks_run_concurrently(client: Any, dns_server: Any, siteverify: Any) -> None:
    """Turnstile and DNS both slow (1.5 s each): the DNS query reaches the DNS server while
    siteverify is still holding its answer - they overlap. Order, not a stopwatch."""
    import threading

    post_order(client, order_body(email="warm@a-only.test"))  # warm clients and imports
    siteverify.control(delay_ms=1500)
    dns_server.delay_ms = 1500
    sv_before, dns_before = len(siteverify.requests()), len(dns_server.queries)
    seen: dict[str, bool] = {}
    done = threading.Event()

    def watch() -> None:
        while not done.is_set() and len(siteverify.requests()) == sv_before:
            time.sleep(0.005)
        received = time.monotonic()  # siteverify answers 1.5 s after this
        while time.monotonic() - received < 1.2:
            if len(dns_server.queries) > dns_before:
                seen["dns_during_turnstile"] = True
                return
            time.sleep(0.005)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        r = post_order(client, order_body(email="cold@deliverable.test"))
    finally:
        done.set()
        watcher.join()
    assert r.status_code == 201
    assert seen.get("dns_during_turnstile") is True


def test_second_order_from_a_domain_costs_no_dns_query(client: Any, dns_server: Any) -> None:
    assert post_order(client, order_body(email="a@deliverable.test")).status_code == 201
    before = len(dns_server.queries)
    assert post_order(client, order_body(email="b@deliverable.test")).status_code == 201
    assert len(dns_server.queries) == before


def test_rate_limit_per_email_and_replays_do_not_count(
    client: Any, aws: Any, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.setenv("RATE_LIMIT_EMAIL", "2/600")
    body = order_body()
    for _ in range(4):  # one submission, retried: counted once
        assert post_order(client, body, key="one-submission").status_code == 201
    assert post_order(client, order_body(name="Second Order")).status_code == 201
    r = post_order(client, order_body(name="Third Order"))
    assert r.status_code == 429
    err = error_of(r)
    # sliding window: the earlier window still weighs in, so the wait can pass one window
    assert err["code"] == "rate_limited" and 0 < err["retry_after"] <= 2 * 600
    assert len(_rows(aws)) == 2
    assert "rate_limited_email" in _rejections(capsys.readouterr().out)


def test_schema_rejections_are_logged_and_counted_without_pii(client: Any, capsys: Any) -> None:
    post_order(client, "{not json")
    post_order(client, order_body(phone="12", name="Jane\nDoe"))
    post_order(client, order_body(email="not-an-address"))
    out = capsys.readouterr().out
    assert _rejections(out) == ["invalid_json", "validation_failed", "syntax"]
    lines = [json.loads(x) for x in out.splitlines() if '"order_rejected"' in x]
    assert lines[1]["fields"] == ["name", "phone"]
    assert "not-an-address" not in out and "555" not in out
