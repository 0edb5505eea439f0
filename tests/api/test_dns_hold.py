"""A receipt to a domain whose DNS did not answer waits in the outbox (issue 12, finding 5).

The order is accepted and the merchant alerted at once; the receipt is `held` until the
sweeper sees the domain verify (then it is sent), and dropped - never sent blind - when the
hold window runs out or the domain turns out undeliverable. Unverified orders are capped per
domain and per IP, so a throwaway domain can't be turned into a bounce cannon.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any
from unittest import mock

import pytest

from chalicelib.outbox import sweep
from chalicelib.recipients import clear_cache
from chalicelib.services import services
from tests.helpers import order_body, post_order

MERCHANT = "merchant@juice.example.com"
SHOPPER = "jane@deliverable.test"


@pytest.fixture()
def held_env(aws: Any, guard_env: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("RATE_LIMIT_EMAIL", "1000/600")
    monkeypatch.setenv("DNS_TIMEOUT", "0.5")
    return aws


def later(seconds: int) -> Any:  # the clock only
    target = datetime.now(timezone.utc) + timedelta(seconds=seconds)
    return mock.patch("chalicelib.clock.now", return_value=target)


def receipts(aws: Any) -> list[dict[str, Any]]:
    return [m for m in aws.sent_mail() if m["destinations"]["ToAddresses"] != [MERCHANT]]


def held_order(client: Any, dns_server: Any) -> str:
    dns_server.mode = "servfail"  # the shopper's domain does not answer right now
    r = post_order(client, order_body(email=SHOPPER))
    assert r.status_code == 201, r.body
    clear_cache()
    return str(json.loads(r.body)["order_id"])


def customer_state(oid: str) -> dict[str, Any]:
    order = services().store.get_order(oid)
    assert order is not None
    return dict(order["emails"]["customer"])


def test_held_receipt_is_sent_once_the_domain_verifies(
    client: Any, held_env: Any, dns_server: Any
) -> None:
    oid = held_order(client, dns_server)
    assert receipts(held_env) == [] and customer_state(oid)["status"] == "held"
    with later(400):  # first recheck: still failing -> still held, nothing sent
        counts = sweep(services())
    assert counts.get("held") == 1 and receipts(held_env) == []
    dns_server.mode = "normal"
    clear_cache()
    with later(3600):
        counts = sweep(services())
    assert counts["sent"] == 1
    assert [m["destinations"]["ToAddresses"] for m in receipts(held_env)] == [[SHOPPER]]
    assert customer_state(oid)["status"] == "sent"
    with later(7200):
        assert sweep(services())["sent"] == 0  # and only once


def test_held_receipt_is_dropped_after_the_window_not_sent_blind(
    client: Any, held_env: Any, dns_server: Any
) -> None:
    oid = held_order(client, dns_server)
    with later(25 * 3600):
        counts = sweep(services())
    assert counts.get("dropped") == 1
    state = customer_state(oid)
    assert state["status"] == "dropped" and "dns_unverified" in state["reason"]
    assert receipts(held_env) == []
    order = services().store.get_order(oid)
    assert order is not None and "outbox" not in order  # nothing left to do


def test_unverified_orders_are_capped_per_domain(
    client: Any, held_env: Any, dns_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RATE_LIMIT_UNVERIFIED", "2/3600")
    dns_server.mode = "servfail"
    codes = []
    for i in range(3):
        clear_cache()
        codes.append(post_order(client, order_body(email=f"buyer{i}@deliverable.test")).status_code)
    assert codes == [201, 201, 503]
    dns_server.mode = "normal"
    clear_cache()  # a verified domain is not capped
    assert post_order(client, order_body(email="buyer9@deliverable.test")).status_code == 201
