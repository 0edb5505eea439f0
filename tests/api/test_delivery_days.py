"""Delivery days with capacity (issue 14, section 1), through the API against moto.

The shop profile gives the delivery weekdays, the horizon, the cut-off and the capacity per
day; `GET /catalog` lists the choosable days with whether each has room; an order takes a slot
in the transaction that creates it, a replay never takes a second one, and a cancelled order
gives it back once.
"""

from __future__ import annotations

import json
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from chalicelib import checkout
from chalicelib.services import services
from tests.helpers import error_of, order_body, post_order


@pytest.fixture()
def profile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Write a SHOP_PROFILE override (merged over chalicelib/data/shop.json)."""

    def use(**delivery: Any) -> Path:
        path = tmp_path / f"shop-{len(list(tmp_path.iterdir()))}.json"
        path.write_text(json.dumps({"delivery": delivery}))
        monkeypatch.setenv("SHOP_PROFILE", str(path))
        return path

    monkeypatch.setenv("RATE_LIMIT_EMAIL", "1000/600")
    monkeypatch.setenv("RATE_LIMIT_IP", "1000/600")
    return use


def days(client: Any) -> list[dict[str, Any]]:
    return list(json.loads(client.http.get("/catalog").body)["delivery_days"])


def slot_count(ddb: Any, day: str) -> int:
    item = ddb.get_item(TableName="orders", Key={"pk": {"S": f"slot#{day}"}}).get("Item")
    return int(item["n"]["N"]) if item else 0


def test_the_catalog_lists_choosable_days_with_room(client: Any, ddb: Any, profile: Any) -> None:
    profile(weekdays=["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"], capacity_per_day=1)
    offered = days(client)
    assert offered and all(d["available"] for d in offered)
    assert [d["date"] for d in offered] == sorted(d["date"] for d in offered)
    first = offered[0]["date"]
    assert date.fromisoformat(first) > date.today() - timedelta(days=1)
    assert post_order(client, order_body(delivery_day=first)).status_code == 201
    assert days(client)[0] == {"date": first, "available": False}


def test_an_order_takes_its_days_slot_and_a_replay_does_not(
    client: Any, ddb: Any, profile: Any
) -> None:
    profile(capacity_per_day=5)
    day = days(client)[0]["date"]
    for _ in range(3):  # one submission, retried
        r = post_order(client, order_body(delivery_day=day), "day-replay-01")
        assert r.status_code == 201 and json.loads(r.body)["delivery_day"] == day
    assert slot_count(ddb, day) == 1
    order = services().store.get_order(json.loads(r.body)["order_id"])
    assert order is not None and order["delivery_day"] == day and order["day"] == day


def test_no_day_given_takes_the_earliest_day_with_room(client: Any, ddb: Any, profile: Any) -> None:
    profile(capacity_per_day=1)
    first, second = (d["date"] for d in days(client)[:2])
    assert json.loads(post_order(client, order_body()).body)["delivery_day"] == first
    assert json.loads(post_order(client, order_body()).body)["delivery_day"] == second


def put_slot(ddb: Any, day: str, n: int) -> None:
    """Another container's orders: the day's counter, written from outside the app."""
    ddb.put_item(TableName="orders", Item={"pk": {"S": f"slot#{day}"}, "n": {"N": str(n)}})


def test_days_filled_elsewhere_send_the_order_to_the_next_day_with_room(
    client: Any, ddb: Any, profile: Any
) -> None:
    """Nothing is read first: the earliest day's slot fails in the transaction, the counts
    are read once, and the order goes to the earliest day that has room."""
    profile(weekdays=["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"], capacity_per_day=2)
    offered = [d["date"] for d in days(client)]
    for day in offered[:3]:
        put_slot(ddb, day, 2)
    r = post_order(client, order_body())
    assert r.status_code == 201, r.body
    assert json.loads(r.body)["delivery_day"] == offered[3]
    assert [slot_count(ddb, d) for d in offered[:4]] == [2, 2, 2, 1]


def test_every_day_full_without_a_day_asked_for_is_422_with_none_offered(
    client: Any, ddb: Any, profile: Any
) -> None:
    profile(capacity_per_day=1)
    offered = [d["date"] for d in days(client)]
    for day in offered:
        put_slot(ddb, day, 1)
    r = post_order(client, order_body())
    err = error_of(r)
    assert r.status_code == 422, r.body
    assert (err["code"], err["reason"], err["next_available"]) == (
        "delivery_day_unavailable",
        "full",
        [],
    )
    assert [slot_count(ddb, d) for d in offered] == [1] * len(offered)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("2026-13-01", "not_a_date"),
        ("tomorrow", "not_a_date"),
        (20261203, "not_a_date"),
        ("2020-01-07", "out_of_range"),
        ("2099-01-06", "out_of_range"),
    ],
)
def test_a_day_that_cannot_be_had_is_422_with_the_next_days(
    client: Any, profile: Any, value: Any, reason: str
) -> None:
    profile(capacity_per_day=5)
    r = post_order(client, order_body(delivery_day=value))
    err = error_of(r)
    assert r.status_code == 422 and err["code"] == "delivery_day_unavailable"
    assert err["reason"] == reason and "delivery_day" in err["fields"]
    assert err["next_available"] == [d["date"] for d in days(client) if d["available"]]


def test_a_weekday_without_deliveries_is_refused(client: Any, profile: Any) -> None:
    profile(weekdays=["Wed"], capacity_per_day=5)
    offered = [date.fromisoformat(d["date"]) for d in days(client)]
    thursday = offered[0] + timedelta(days=1)
    err = error_of(post_order(client, order_body(delivery_day=thursday.isoformat())))
    assert err["reason"] == "not_a_delivery_day"
    assert all(date.fromisoformat(d).weekday() == 2 for d in err["next_available"])


def test_thirty_concurrent_orders_for_a_day_with_ten_slots(
    aws: Any, guard_env: Any, ddb: Any, profile: Any
) -> None:
    """Exactly 10 x 201 and 20 x 422, the day's counter is 10, 20 emails sent."""
    profile(capacity_per_day=10)
    day = days_via_store()

    def one(i: int) -> int:
        raw = json.dumps(order_body(email=f"race{i}@deliverable.test", delivery_day=day)).encode()
        try:
            return checkout.place_order(
                checkout.IncomingOrder(raw, "application/json", f"race-key-{i:04d}", "127.0.0.1")
            ).status
        except checkout.ApiError as e:
            assert e.code == "delivery_day_unavailable", e.code
            return e.status

    with ThreadPoolExecutor(max_workers=30) as pool:
        results = list(pool.map(one, range(30)))
    assert Counter(results) == Counter({201: 10, 422: 20})
    assert slot_count(ddb, day) == 10
    assert len(aws.sent_mail()) == 20


def days_via_store() -> str:
    from datetime import UTC, datetime

    from chalicelib.slots import offer

    return str(offer(services(), datetime.now(UTC))[0]["date"])


def test_a_refused_day_offers_only_days_with_room(client: Any, ddb: Any, profile: Any) -> None:
    profile(capacity_per_day=1)
    first = days(client)[0]["date"]
    assert post_order(client, order_body(delivery_day=first)).status_code == 201  # now full
    err = error_of(post_order(client, order_body(delivery_day="2020-01-07")))
    assert err["reason"] == "out_of_range"
    assert first not in err["next_available"]
    assert err["next_available"] == [d["date"] for d in days(client) if d["available"]]
