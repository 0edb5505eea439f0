"""POST /orders and GET /catalog through chalice.test.Client against a real moto server."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timezone
from typing import Any
from unittest import mock

import pytest

from chalicelib.catalog import load_catalog
from tests.helpers import CUSTOMER_EMAIL, error_of, order_body, post_order


def _orders(aws: Any) -> list[dict[str, Any]]:
    from chalicelib.store import OrderStore

    ddb = aws.client("dynamodb")
    return OrderStore(ddb, "orders").scan_orders()


def _items(aws: Any) -> list[dict[str, Any]]:
    ddb = aws.client("dynamodb")
    return ddb.scan(TableName="orders")["Items"]


def test_catalog_shape(client: Any) -> None:
    r = client.http.get("/catalog")
    assert r.status_code == 200
    body = json.loads(r.body)
    assert body["currency"] == "USD" and body["min_items"] == 3
    assert 5 <= len(body["products"]) <= 8
    for p in body["products"]:
        assert set(p) == {"sku", "name", "description", "price_cents", "image"}
        assert isinstance(p["price_cents"], int) and p["price_cents"] > 0


def test_happy_path_stores_then_sends_two_emails(client: Any, aws: Any) -> None:
    r = post_order(client, order_body())
    assert r.status_code == 201, r.body
    body = json.loads(r.body)
    cat = load_catalog()
    gm, beet = cat.get("green-machine"), cat.get("beet-it")
    assert gm and beet
    assert body["status"] == "accepted" and body["currency"] == "USD"
    assert body["subtotal_cents"] == 2 * gm.price_cents + beet.price_cents
    assert body["total_cents"] == body["subtotal_cents"] + body["delivery_fee_cents"]
    assert body["items"][0] == {
        "sku": "green-machine",
        "name": gm.name,
        "qty": 2,
        "unit_price_cents": gm.price_cents,
        "line_total_cents": 2 * gm.price_cents,
    }
    oid = body["order_id"]
    assert len(oid) == 10

    [order] = _orders(aws)
    assert order["order_id"] == oid
    assert order["customer"] == {
        "name": "Jane Doe",
        "email": CUSTOMER_EMAIL,
        "phone": "+12125550143",
    }
    assert order["total_cents"] == body["total_cents"]
    for role in ("merchant", "customer"):
        assert order["emails"][role]["status"] == "sent"
        assert order["emails"][role]["attempts"] == 1
        assert order["emails"][role]["message_id"]
    assert "outbox" not in order  # nothing left for the sweeper

    mail = aws.sent_mail()
    assert len(mail) == 2
    by_to = {m["destinations"]["ToAddresses"][0]: m for m in mail}
    assert set(by_to) == {"merchant@juice.example.com", CUSTOMER_EMAIL}
    for m in mail:
        assert oid in m["subject"]
        assert m["source"] == "orders@juice.example.com"
    assert "Jane Doe" in by_to[CUSTOMER_EMAIL]["body"]
    ids = {order["emails"][r]["message_id"] for r in ("merchant", "customer")}
    assert ids == {m["id"] for m in mail}


def test_client_prices_and_totals_are_ignored(client: Any, aws: Any) -> None:
    body = order_body(
        items=[{"sku": "green-machine", "qty": 3, "price_cents": 1, "unit_price_cents": 1}],
        total_cents=3,
        price_cents=1,
    )
    r = post_order(client, body)
    assert r.status_code == 201
    gm = load_catalog().get("green-machine")
    assert gm is not None
    assert json.loads(r.body)["subtotal_cents"] == 3 * gm.price_cents
    assert _orders(aws)[0]["subtotal_cents"] == 3 * gm.price_cents


@pytest.mark.parametrize(
    ("raw", "headers", "status", "code"),
    [
        ("{not json", {}, 400, "invalid_json"),
        (b"\xff\xfe{}", {}, 400, "invalid_json"),
        ('{"a": NaN}', {}, 400, "invalid_json"),
        ("{}", {"Content-Type": "text/plain"}, 415, "unsupported_media_type"),
        (
            "{}",
            {"Content-Type": "application/x-www-form-urlencoded"},
            415,
            "unsupported_media_type",
        ),
        ("[]", {}, 422, "validation_failed"),
        ("{}", {}, 422, "validation_failed"),
        ('"text"', {}, 422, "validation_failed"),
    ],
)
def test_bad_bodies(client: Any, aws: Any, raw: Any, headers: dict, status: int, code: str) -> None:
    r = post_order(client, raw, **headers)
    assert r.status_code == status
    assert error_of(r)["code"] == code
    assert _items(aws) == [] and aws.sent_mail() == []


def test_payload_too_large(client: Any, aws: Any) -> None:
    r = post_order(client, order_body(name="x" * 17000))
    assert r.status_code == 413
    assert error_of(r)["code"] == "payload_too_large"
    assert _items(aws) == []


def test_validation_fields_name_each_bad_path(client: Any, aws: Any) -> None:
    body = order_body(
        phone="12",
        shipping__zip="ABCDE",
        shipping__state="XX",
        items=[
            {"sku": "green-machine", "qty": 2},
            {"sku": "nope", "qty": 1},
            {"sku": "beet-it", "qty": 0},
        ],
    )
    r = post_order(client, body)
    assert r.status_code == 422
    err = error_of(r)
    assert err["code"] == "validation_failed"
    assert set(err["fields"]) == {
        "phone",
        "shipping.zip",
        "shipping.state",
        "items[1].sku",
        "items[2].qty",
    }
    assert _items(aws) == [] and aws.sent_mail() == []


def test_crlf_in_name_is_rejected_and_nothing_sent(client: Any, aws: Any) -> None:
    r = post_order(client, order_body(name="Jane\r\nBcc: victim@example.org"))
    assert r.status_code == 422
    assert "name" in error_of(r)["fields"]
    assert _items(aws) == [] and aws.sent_mail() == []


def test_html_in_every_text_field_is_escaped_in_mail(client: Any, aws: Any) -> None:
    evil = '<script>alert(1)</script><img src=x onerror="x">'
    body = order_body(
        name="N" + evil[:80],
        shipping__line1="L1" + evil[:80],
        shipping__line2="L2" + evil[:80],
        shipping__city="C" + evil[:39],  # city: at most 40 characters
    )
    r = post_order(client, body)
    assert r.status_code == 201, r.body
    mail = aws.sent_mail()
    assert len(mail) == 2
    for m in mail:
        html = m["body"]
        assert "<script>" not in html and "<img src=x" not in html
        assert "&lt;script&gt;" in html
        for prefix in ("N&lt;script", "L1&lt;script", "L2&lt;script", "C&lt;script"):
            assert prefix in html, prefix


def test_idempotent_replay_returns_same_order_and_no_second_email(client: Any, aws: Any) -> None:
    body = order_body()
    first = post_order(client, body, key="checkout-0001")
    second = post_order(client, body, key="checkout-0001")
    assert first.status_code == second.status_code == 201
    assert json.loads(first.body) == json.loads(second.body)
    assert len(_orders(aws)) == 1
    assert len(aws.sent_mail()) == 2


def test_same_key_different_body_is_409(client: Any, aws: Any) -> None:
    assert post_order(client, order_body(), key="checkout-0002").status_code == 201
    r = post_order(client, order_body(name="Someone Else"), key="checkout-0002")
    assert r.status_code == 409
    assert error_of(r)["code"] == "idempotency_key_reused"
    assert len(_orders(aws)) == 1 and len(aws.sent_mail()) == 2


def test_without_key_each_post_is_a_new_order(client: Any, aws: Any) -> None:
    a = json.loads(post_order(client, order_body()).body)["order_id"]
    b = json.loads(post_order(client, order_body()).body)["order_id"]
    assert a != b
    assert len(_orders(aws)) == 2 and len(aws.sent_mail()) == 4


@pytest.mark.parametrize("key", ["short", "x" * 65, "has space!", "ünïcode-key"])
def test_malformed_idempotency_key(client: Any, aws: Any, key: str) -> None:
    r = client.http.post(
        "/orders",
        headers={"Content-Type": "application/json", "Idempotency-Key": key},
        body=json.dumps(order_body()),
    )
    assert r.status_code == 422
    assert "Idempotency-Key" in error_of(r)["fields"]
    assert _items(aws) == []


def test_concurrent_identical_requests_make_one_order(aws: Any, guard_env: Any) -> None:
    """Eight threads post the same keyed order at once: one order, two emails, same id."""
    from chalicelib import checkout

    raw = json.dumps(order_body()).encode()
    results: list[Any] = []
    barrier = threading.Barrier(8)

    def go() -> None:
        barrier.wait()
        try:
            results.append(
                checkout.place_order(
                    checkout.IncomingOrder(raw, "application/json", "same-key-123", "127.0.0.1")
                )
            )
        except Exception as e:  # noqa: BLE001 - collected and asserted below
            results.append(e)

    threads = [threading.Thread(target=go) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(isinstance(r, checkout.Result) for r in results), results
    assert {r.status for r in results} == {201}
    assert len({r.body["order_id"] for r in results}) == 1
    assert len(_orders(aws)) == 1
    assert len(aws.sent_mail()) == 2


def test_closed_outside_business_hours(client: Any, aws: Any, monkeypatch: Any) -> None:
    monkeypatch.setenv("BUSINESS_HOURS", "Mon-Sat 08:00-20:00")
    sunday_noon_ny = datetime(2026, 11, 29, 17, 0, tzinfo=timezone.utc)
    with mock.patch("chalicelib.clock.now", return_value=sunday_noon_ny):
        r = post_order(client, order_body())
    assert r.status_code == 422
    err = error_of(r)
    assert err["code"] == "closed"
    assert "Monday" in err["message"] and "8 AM" in err["message"]
    assert _items(aws) == []
    monday_9am_ny = datetime(2026, 11, 30, 14, 0, tzinfo=timezone.utc)
    with mock.patch("chalicelib.clock.now", return_value=monday_9am_ny):
        assert post_order(client, order_body()).status_code == 201


def test_dynamodb_down_is_503_and_nothing_sent(client: Any, aws: Any, monkeypatch: Any) -> None:
    from tests.servers import free_port

    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")  # nothing listens
    r = post_order(client, order_body())
    assert r.status_code == 503
    assert error_of(r)["code"] == "service_unavailable"
    assert int(r.headers["Retry-After"]) > 0
    assert aws.sent_mail() == []


def test_ses_rejects_then_order_stands_with_failed_status(
    client: Any, aws: Any, monkeypatch: Any
) -> None:
    monkeypatch.setenv("SENDER_EMAIL", "unverified@nowhere.example")  # moto rejects the send
    r = post_order(client, order_body())
    assert r.status_code == 201
    [order] = _orders(aws)
    for role in ("merchant", "customer"):
        st = order["emails"][role]
        assert st["status"] == "failed"
        assert "MessageRejected" in st["reason"]
        assert st["retryable"] is False
    assert aws.sent_mail() == []


def test_no_stack_trace_on_unexpected_error(client: Any, aws: Any, garbled_read: Any) -> None:
    # injected fault: a reply the app can't decode (tests/api/conftest.py) -> an unexpected error
    r = post_order(client, order_body())
    assert garbled_read.lost == 1
    assert r.status_code == 500
    assert "boom" not in r.body.decode() and "Traceback" not in r.body.decode()
    assert error_of(r)["code"] == "internal_error"


def test_retry_with_a_fresh_turnstile_token_is_the_same_order(client: Any, aws: Any) -> None:
    """The reply to the first attempt was lost and the old token expired: the retry carries a
    new token under the same key and must get the stored order, not a 409."""
    first = post_order(client, order_body(), key="lost-reply-01")
    retry = post_order(
        client, order_body(turnstile_token="XXXX.DUMMY.TOKEN.XXXX#2"), key="lost-reply-01"
    )
    assert first.status_code == retry.status_code == 201
    assert json.loads(first.body)["order_id"] == json.loads(retry.body)["order_id"]
    assert len(_orders(aws)) == 1 and len(aws.sent_mail()) == 2
