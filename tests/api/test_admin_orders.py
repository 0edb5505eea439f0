"""Back office orders: lists from the GSIs (by day, by status), newest first, paginated;
search by order id and email; detail; lifecycle actions through the same code path as the
email links; bounces and complaints recorded per message."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.api.adminkit import JSON, body, mail_to, sign_in
from tests.helpers import CUSTOMER_EMAIL, order_body, post_order
from tests.plugins.feedback import bounce_message, complaint_message, email_tags, ses_event


def place(client: Any, **overrides: Any) -> str:
    r = post_order(client, order_body(**overrides))
    assert r.status_code == 201, r.body
    return str(json.loads(r.body)["order_id"])


def delivery_day(oid: str) -> str:
    from chalicelib.services import services

    order = services().store.get_order(oid)
    assert order is not None
    return str(order["day"])


def today() -> str:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    return datetime.now(ZoneInfo("America/New_York")).date().isoformat()


@pytest.fixture()
def signed(client: Any, aws: Any) -> dict[str, str]:
    return sign_in(client, aws)


def get(client: Any, path: str, headers: dict[str, str]) -> Any:
    return client.http.get(path, headers={"Cookie": headers["Cookie"]})


def test_orders_carry_day_and_email_key(client: Any, aws: Any) -> None:
    from chalicelib.services import services

    oid = place(client, email="Jane.Doe+juice@Deliverable.test")
    order = services().store.get_order(oid)
    assert order is not None
    # `day` is the delivery day (the merchant's list of a day's deliveries), never earlier
    # than the day the order was placed
    assert order["day"] == order["delivery_day"] >= today()
    assert order["email_key"] == "jane.doe@deliverable.test"


def test_list_by_day_newest_first_paginated(client: Any, signed: dict[str, str]) -> None:
    oids = [place(client) for _ in range(3)]
    day = delivery_day(oids[0])
    assert {delivery_day(o) for o in oids} == {day}
    r = get(client, f"/admin/orders?day={day}&limit=2", signed)
    assert r.status_code == 200
    page1 = body(r)
    assert len(page1["orders"]) == 2
    assert page1["cursor"]
    row = page1["orders"][0]
    assert row["status"] == "accepted" and row["total_cents"] > 0 and row["name"] == "Jane Doe"
    assert set(row["emails"]) == {"merchant", "customer"}
    r2 = get(client, f"/admin/orders?day={day}&limit=2&cursor={page1['cursor']}", signed)
    page2 = body(r2)
    seen = [o["order_id"] for o in page1["orders"] + page2["orders"]]
    assert sorted(seen) == sorted(oids) and page2["cursor"] is None
    created = [o["created_at"] for o in page1["orders"] + page2["orders"]]
    assert created == sorted(created, reverse=True)
    everything = body(get(client, f"/admin/orders?day={day}&limit=100", signed))
    assert len(everything["orders"]) == 3
    # without `day`: today's deliveries (the shop's timezone)
    default = body(get(client, "/admin/orders", signed))
    assert default["query"]["day"] == today()
    assert all(o["day"] == today() for o in default["orders"])
    assert body(get(client, "/admin/orders?day=2020-01-01", signed))["orders"] == []


def test_cursor_is_opaque_and_checked(client: Any, signed: dict[str, str]) -> None:
    day = delivery_day(place(client))
    place(client)
    cursor = body(get(client, f"/admin/orders?day={day}&limit=1", signed))["cursor"]
    r = get(client, "/admin/orders?status=accepted&cursor=" + cursor, signed)  # another list
    assert r.status_code == 422 and "cursor" in body(r)["error"]["fields"]
    r = get(client, f"/admin/orders?day={day}&cursor=" + cursor[:-2] + "xx", signed)
    assert r.status_code == 422


@pytest.mark.parametrize(
    "query",
    ["day=2026-02-30", "day=yesterday", "status=lost", "limit=0", "limit=1000", "limit=x",
     "q=%3Cscript%3E", "colour=red"],
)  # fmt: skip
def test_bad_list_parameters_are_422(client: Any, signed: dict[str, str], query: str) -> None:
    r = get(client, f"/admin/orders?{query}", signed)
    assert r.status_code == 422 and body(r)["error"]["code"] == "validation_failed"


def test_list_by_status_and_search(client: Any, signed: dict[str, str]) -> None:
    a = place(client)
    b = place(client, email="other@deliverable.test")
    act = client.http.post(
        f"/admin/orders/{a}/actions", headers={**signed, **JSON}, body='{"action":"confirm"}'
    )
    assert act.status_code == 200
    confirmed = body(get(client, "/admin/orders?status=confirmed", signed))["orders"]
    assert [o["order_id"] for o in confirmed] == [a]
    accepted = body(get(client, "/admin/orders?status=accepted", signed))["orders"]
    assert [o["order_id"] for o in accepted] == [b]
    by_id = body(get(client, f"/admin/orders?q={b.lower()}", signed))["orders"]
    assert [o["order_id"] for o in by_id] == [b]
    by_mail = body(get(client, "/admin/orders?q=Other%2Btag@DELIVERABLE.test", signed))
    assert [o["order_id"] for o in by_mail["orders"]] == [b]
    assert body(get(client, "/admin/orders?q=ZZZZZZZZZZ", signed))["orders"] == []


def test_detail_has_everything_the_merchant_needs(client: Any, signed: dict[str, str]) -> None:
    oid = place(client)
    r = get(client, f"/admin/orders/{oid}", signed)
    assert r.status_code == 200
    d = body(r)
    assert d["customer"]["email"] == CUSTOMER_EMAIL and d["shipping"]["zip"] == "10001"
    assert [i["sku"] for i in d["items"]] == ["green-machine", "beet-it"]
    assert d["total_cents"] == d["subtotal_cents"] + d["delivery_fee_cents"]
    assert d["history"][0]["status"] == "accepted" and d["flags"] == []
    assert {r: e["status"] for r, e in d["emails"].items()} == {
        "merchant": "sent",
        "customer": "sent",
    }
    assert d["next_actions"] == ["confirm", "cancel"]
    assert not {"write_id", "request_hash", "pk", "outbox"} & set(d)
    assert get(client, "/admin/orders/ZZZZZZZZZZ", signed).status_code == 404
    assert get(client, "/admin/orders/not-an-id", signed).status_code == 404


def test_actions_use_the_link_code_path_and_email_once(
    client: Any, aws: Any, signed: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    oid = place(client)
    path = f"/admin/orders/{oid}/actions"
    h = {**signed, **JSON}
    capsys.readouterr()
    r = client.http.post(path, headers=h, body=json.dumps({"action": "confirm"}))
    assert r.status_code == 200 and body(r)["changed"] is True
    order = body(r)["order"]
    assert order["status"] == "confirmed" and order["history"][-1]["by"] == "admin"
    assert order["emails"]["status_confirmed"]["status"] == "sent"
    assert len(mail_to(aws, CUSTOMER_EMAIL)) == 2  # receipt + "confirmed"
    again = client.http.post(path, headers=h, body=json.dumps({"action": "confirm"}))
    assert body(again)["changed"] is False and len(mail_to(aws, CUSTOMER_EMAIL)) == 2
    audit = [
        json.loads(x)
        for x in capsys.readouterr().out.splitlines()
        if x.startswith("{") and '"admin_audit"' in x
    ]
    assert [a["what"] for a in audit] == ["order_confirm", "order_confirm"]
    assert audit[0]["order_id"] == oid and audit[0]["who"] == "m***@juice.example.com"
    bad = client.http.post(path, headers=h, body=json.dumps({"action": "deliver"}))
    assert bad.status_code == 409 and body(bad)["error"]["code"] == "invalid_transition"
    cancel = client.http.post(
        path, headers=h, body=json.dumps({"action": "cancel", "reason": "Out of beets"})
    )
    assert body(cancel)["order"]["history"][-1]["reason"] == "Out of beets"


@pytest.mark.parametrize(
    "raw,status",
    [("{nope", 400), ('{"action":"fly"}', 422), ('["confirm"]', 422),
     ('{"action":"cancel","reason":5}', 422)],
)  # fmt: skip
def test_bad_action_bodies(client: Any, signed: dict[str, str], raw: str, status: int) -> None:
    oid = place(client)
    r = client.http.post(f"/admin/orders/{oid}/actions", headers={**signed, **JSON}, body=raw)
    assert r.status_code == status and "error" in body(r)


def test_action_on_unknown_order_is_404(client: Any, signed: dict[str, str]) -> None:
    r = client.http.post(
        "/admin/orders/ZZZZZZZZZZ/actions", headers={**signed, **JSON}, body='{"action":"confirm"}'
    )
    assert r.status_code == 404 and body(r)["error"]["code"] == "not_found"


def test_bounce_and_complaint_are_recorded_per_message(client: Any, signed: dict[str, str]) -> None:
    from chalicelib.services import services

    oid = place(client)
    order = services().store.get_order(oid)
    assert order is not None
    receipt = order["emails"]["customer"]["message_id"]
    alert = order["emails"]["merchant"]["message_id"]
    to_customer, to_merchant = email_tags(oid, "customer"), email_tags(oid, "merchant")
    client.lambda_.invoke(
        "handle_ses_feedback",
        ses_event(bounce_message(CUSTOMER_EMAIL, message_id=receipt, tags=to_customer)),
    )
    client.lambda_.invoke(
        "handle_ses_feedback",
        ses_event(
            complaint_message("merchant@juice.example.com", message_id=alert, tags=to_merchant)
        ),
    )
    d = body(get(client, f"/admin/orders/{oid}", signed))
    assert (
        d["emails"]["customer"]["status"] == "bounced" and "bounced_at" in d["emails"]["customer"]
    )
    assert d["emails"]["merchant"]["status"] == "complained"
    soft = bounce_message(
        CUSTOMER_EMAIL, bounce_type="Transient", message_id=alert, tags=to_merchant
    )
    client.lambda_.invoke("handle_ses_feedback", ses_event(soft))
    d = body(get(client, f"/admin/orders/{oid}", signed))
    assert d["emails"]["merchant"]["status"] == "complained"  # a soft bounce is not recorded
