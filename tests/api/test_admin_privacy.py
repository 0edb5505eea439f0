"""Erasure ("Erase this customer") and retention (ORDER_RETENTION_DAYS): personal data out of
orders, totals kept, a suppressed address kept only as a hash."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.api.adminkit import JSON, body, sign_in
from tests.api.test_admin_csv import seed, seeded_order
from tests.helpers import CUSTOMER_EMAIL, order_body, post_order
from tests.plugins.feedback import bounce_message, ses_event


@pytest.fixture()
def signed(client: Any, aws: Any) -> dict[str, str]:
    return sign_in(client, aws)


def all_items(ddb: Any, table: str) -> list[dict[str, Any]]:
    from chalicelib import ddb as codec

    return [codec.load(i) for i in ddb.scan(TableName=table)["Items"]]


def place(client: Any, **over: Any) -> str:
    r = post_order(client, order_body(**over))
    assert r.status_code == 201, r.body
    return str(json.loads(r.body)["order_id"])


def test_erase_a_suppressed_customer(client: Any, ddb: Any, signed: dict[str, str]) -> None:
    mine = [place(client), place(client, email="Shopper+x@Deliverable.test")]
    other = place(client, email="other@deliverable.test")
    client.lambda_.invoke("handle_ses_feedback", ses_event(bounce_message(CUSTOMER_EMAIL)))
    ddb.update_item(  # a send failure's reason quoting the address
        TableName="orders",
        Key={"pk": {"S": f"order#{mine[0]}"}},
        UpdateExpression="SET emails.customer.reason = :r",
        ExpressionAttributeValues={":r": {"S": f"MessageRejected: not verified: {CUSTOMER_EMAIL}"}},
    )
    h = {**signed, **JSON}
    assert (
        client.http.post("/admin/erase", headers=h, body='{"email":"x@y.test"}').status_code == 422
    )
    r = client.http.post(
        "/admin/erase", headers=h, body=json.dumps({"email": CUSTOMER_EMAIL, "confirm": True})
    )
    assert r.status_code == 200
    assert body(r) == {"orders": 2, "suppression_hash_kept": True}
    for oid in mine:
        d = body(client.http.get(f"/admin/orders/{oid}", headers={"Cookie": signed["Cookie"]}))
        assert d["customer"] == {"name": "", "email": "", "phone": ""}
        assert d["shipping"]["line1"] == "" and d["total_cents"] > 0 and d["items"]
        assert d["pii_erased_why"] == "customer_request"
    kept = body(client.http.get(f"/admin/orders/{other}", headers={"Cookie": signed["Cookie"]}))
    assert kept["customer"]["email"] == "other@deliverable.test"
    orders = json.dumps(all_items(ddb, "orders"))
    assert "shopper@" not in orders.lower() and "Jane Doe" in orders  # the other customer's
    suppression = all_items(ddb, "suppression")
    assert "shopper" not in json.dumps(suppression).lower()
    [row] = suppression
    assert row["pk"].startswith("sup#h:") and row["reason"] == "bounce"
    refused = post_order(client, order_body())  # still never mailed again
    assert refused.status_code == 422 and body(refused)["error"]["reason"] == "suppressed"
    search = client.http.get(
        f"/admin/orders?q={CUSTOMER_EMAIL}", headers={"Cookie": signed["Cookie"]}
    )
    assert body(search)["orders"] == []


def test_erase_a_customer_who_was_never_suppressed(
    client: Any, ddb: Any, signed: dict[str, str]
) -> None:
    place(client)
    r = client.http.post(
        "/admin/erase",
        headers={**signed, **JSON},
        body=json.dumps({"email": CUSTOMER_EMAIL, "confirm": True}),
    )
    assert body(r) == {"orders": 1, "suppression_hash_kept": False}
    assert all_items(ddb, "suppression") == []
    assert place(client)  # may order again


def test_retention_sweep_erases_old_orders_only(client: Any, ddb: Any) -> None:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    now = int(time.time())
    old = now - 366 * 86400
    old_day = datetime.fromtimestamp(old, ZoneInfo("America/New_York")).date().isoformat()
    seed(ddb, [seeded_order(1, day=old_day, created_at=old)])
    recent = place(client)
    event = client.events.generate_cw_event("Scheduled Event", "aws.events", {}, [])
    result = client.lambda_.invoke("sweep_retention", event).payload
    assert result == {"erased": 1}
    from chalicelib.services import services

    gone = services().store.get_order("AAAAAAAAAB")
    assert gone is not None and gone["customer"]["email"] == "" and gone["total_cents"] == 3147
    assert gone["pii_erased_why"] == "retention"
    fresh = services().store.get_order(recent)
    assert fresh is not None and fresh["customer"]["email"] == CUSTOMER_EMAIL
    assert client.lambda_.invoke("sweep_retention", event).payload == {"erased": 0}
