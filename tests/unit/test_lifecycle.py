"""Order lifecycle: the state machine, and its conditional writes against the real moto server."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from chalicelib import ddb as codec
from chalicelib.lifecycle import (
    ACTIONS,
    MAX_REASON_LENGTH,
    InvalidTransition,
    Lifecycle,
    LifecycleUnavailable,
    OrderNotFound,
    next_actions,
)

T0 = 1_796_000_000  # an epoch second in late 2026


def sample_order(order_id: str = "7MZK3Q0D9X", **overrides: Any) -> dict[str, Any]:
    """An order item as contracts.md describes it (after the rebuild)."""
    order: dict[str, Any] = {
        "pk": f"order#{order_id}",
        "kind": "order",
        "order_id": order_id,
        "created_at": T0,
        "status": "accepted",
        "history": [{"status": "accepted", "at": T0, "by": "shopper"}],
        "delivery_day": "2026-12-03",
        "customer": {"name": "Jane Doe", "email": "jane@deliverable.test", "phone": "+12125550143"},
        "shipping": {
            "line1": "1 Main Street",
            "line2": "Apt 4",
            "city": "New York",
            "state": "NY",
            "zip": "10001",
        },  # fmt: skip
        "items": [
            {
                "sku": "green-machine",
                "name": "Green Machine",
                "qty": 2,
                "unit_price_cents": 899,
                "line_total_cents": 1798,
            },
            {
                "sku": "beet-it",
                "name": "Beet It",
                "qty": 1,
                "unit_price_cents": 849,
                "line_total_cents": 849,
            },
        ],  # fmt: skip
        "subtotal_cents": 2647,
        "delivery_fee_cents": 500,
        "total_cents": 3147,
        "currency": "USD",
        "flags": [],
        "emails": {
            "merchant": {"status": "sent", "attempts": 1},
            "customer": {"status": "sent", "attempts": 1},
        },  # fmt: skip
    }
    order.update(overrides)
    return {k: v for k, v in order.items() if v is not None}


def seed_order(ddb: Any, table: str = "orders", **overrides: Any) -> dict[str, Any]:
    order = sample_order(**overrides)
    encode = codec.dump
    ddb.put_item(TableName=table, Item=encode(order))
    return order


def seed_slot(ddb: Any, day: str, n: int, table: str = "orders") -> None:
    ddb.put_item(TableName=table, Item={"pk": {"S": f"slot#{day}"}, "n": {"N": str(n)}})


def slot(ddb: Any, day: str, table: str = "orders") -> int | None:
    item = ddb.get_item(TableName=table, Key={"pk": {"S": f"slot#{day}"}}, ConsistentRead=True)
    return int(item["Item"]["n"]["N"]) if "Item" in item else None


def stored(ddb: Any, order_id: str = "7MZK3Q0D9X") -> dict[str, Any]:
    decode = codec.load
    r = ddb.get_item(TableName="orders", Key={"pk": {"S": f"order#{order_id}"}})
    return decode(r["Item"])  # type: ignore[no-any-return]


@pytest.fixture()
def lc(ddb: Any) -> Lifecycle:
    return Lifecycle(ddb, "orders")


# --- pure ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "status, actions",
    [
        ("accepted", ["confirm", "cancel"]),
        ("confirmed", ["dispatch", "cancel"]),
        ("out_for_delivery", ["deliver"]),
        ("delivered", []),
        ("cancelled", []),
        ("nonsense", []),
    ],
)
def test_next_actions(status: str, actions: list[str]) -> None:
    assert next_actions(status) == actions


# --- against moto --------------------------------------------------------------------------


def test_the_whole_happy_path_records_history(ddb: Any, lc: Lifecycle) -> None:
    seed_order(ddb)
    for i, (action, status) in enumerate(
        [("confirm", "confirmed"), ("dispatch", "out_for_delivery"), ("deliver", "delivered")]
    ):
        r = lc.apply("7MZK3Q0D9X", action, T0 + 100 * (i + 1), by="link")
        assert r.changed is True
        assert r.order["status"] == status
        assert r.order["history"][-1] == {"status": status, "at": T0 + 100 * (i + 1), "by": "link"}
    order = stored(ddb)
    assert [h["status"] for h in order["history"]] == [
        "accepted", "confirmed", "out_for_delivery", "delivered"]  # fmt: skip
    assert order["items"] == sample_order()["items"]  # nothing else touched
    assert isinstance(order["total_cents"], int)


def test_history_is_created_when_missing(ddb: Any, lc: Lifecycle) -> None:
    seed_order(ddb, history=None)
    r = lc.apply("7MZK3Q0D9X", "confirm", T0)
    assert r.order["history"] == [{"status": "confirmed", "at": T0, "by": "link"}]


def test_same_transition_twice_is_a_no_op(ddb: Any, lc: Lifecycle) -> None:
    seed_order(ddb)
    first = lc.apply("7MZK3Q0D9X", "confirm", T0 + 1)
    again = lc.apply("7MZK3Q0D9X", "confirm", T0 + 2)
    assert (first.changed, again.changed) == (True, False)
    assert again.order["status"] == "confirmed"
    assert len(stored(ddb)["history"]) == 2


@pytest.mark.parametrize(
    "status, action",
    [
        ("delivered", "cancel"),
        ("out_for_delivery", "cancel"),
        ("accepted", "dispatch"),
        ("accepted", "deliver"),
        ("out_for_delivery", "confirm"),
        ("cancelled", "confirm"),
        ("cancelled", "dispatch"),
        ("delivered", "confirm"),
    ],
)
def test_impossible_transitions_raise_and_change_nothing(
    ddb: Any, lc: Lifecycle, status: str, action: str
) -> None:
    seed_order(ddb, status=status)
    seed_slot(ddb, "2026-12-03", 3)
    before = stored(ddb)
    with pytest.raises(InvalidTransition) as e:
        lc.apply("7MZK3Q0D9X", action, T0 + 5)
    assert (e.value.action, e.value.current, e.value.code) == (action, status, "invalid_transition")
    assert e.value.order is not None and e.value.order["status"] == status
    assert stored(ddb) == before
    assert slot(ddb, "2026-12-03") == 3


@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_unknown_order(lc: Lifecycle, action: str) -> None:
    with pytest.raises(OrderNotFound):
        lc.apply("0000000000", action, T0)


def test_unknown_action(ddb: Any, lc: Lifecycle) -> None:
    seed_order(ddb)
    with pytest.raises(KeyError):
        lc.apply("7MZK3Q0D9X", "refund", T0)
    assert stored(ddb)["status"] == "accepted"


@pytest.mark.parametrize("status", ["accepted", "confirmed"])
def test_cancel_gives_the_slot_back_once(ddb: Any, lc: Lifecycle, status: str) -> None:
    seed_order(ddb, status=status)
    seed_slot(ddb, "2026-12-03", 3)
    r = lc.apply("7MZK3Q0D9X", "cancel", T0 + 9, reason="Customer called", by="link")
    assert r.changed is True
    assert r.order["status"] == "cancelled"
    assert r.order["history"][-1] == {
        "status": "cancelled", "at": T0 + 9, "by": "link", "reason": "Customer called"}  # fmt: skip
    assert slot(ddb, "2026-12-03") == 2
    again = lc.apply("7MZK3Q0D9X", "cancel", T0 + 10)
    assert again.changed is False
    assert slot(ddb, "2026-12-03") == 2
    assert len(stored(ddb)["history"]) == 2


def test_cancel_with_an_empty_counter_still_cancels_and_never_goes_negative(
    ddb: Any, lc: Lifecycle
) -> None:
    seed_order(ddb)
    seed_slot(ddb, "2026-12-03", 0)
    assert lc.apply("7MZK3Q0D9X", "cancel", T0).changed is True
    assert stored(ddb)["status"] == "cancelled"
    assert slot(ddb, "2026-12-03") == 0


def test_cancel_with_no_counter_item_creates_none(ddb: Any, lc: Lifecycle) -> None:
    seed_order(ddb)
    assert lc.apply("7MZK3Q0D9X", "cancel", T0).changed is True
    assert slot(ddb, "2026-12-03") is None


def test_cancel_without_a_delivery_day(ddb: Any, lc: Lifecycle) -> None:
    seed_order(ddb, delivery_day=None)
    seed_slot(ddb, "2026-12-03", 3)
    r = lc.apply("7MZK3Q0D9X", "cancel", T0)
    assert r.changed is True and r.order["status"] == "cancelled"
    assert slot(ddb, "2026-12-03") == 3


def test_reason_is_capped_and_only_kept_for_cancel(ddb: Any, lc: Lifecycle) -> None:
    seed_order(ddb)
    r = lc.apply("7MZK3Q0D9X", "confirm", T0, reason="not kept")
    assert "reason" not in r.order["history"][-1]
    r = lc.apply("7MZK3Q0D9X", "cancel", T0 + 1, reason="x" * 5000)
    assert len(r.order["history"][-1]["reason"]) == MAX_REASON_LENGTH


def test_also_set_is_written_with_the_transition_only(ddb: Any, lc: Lifecycle) -> None:
    seed_order(ddb)
    extra = {"emails.status_confirmed": {"status": "pending", "attempts": 0}, "outbox": "pending"}
    r = lc.apply("7MZK3Q0D9X", "confirm", T0, also_set=extra)
    assert r.order["emails"]["status_confirmed"] == {"status": "pending", "attempts": 0}
    assert r.order["emails"]["merchant"]["status"] == "sent"
    assert r.order["outbox"] == "pending"
    ddb.update_item(TableName="orders", Key={"pk": {"S": "order#7MZK3Q0D9X"}},
                    UpdateExpression="REMOVE outbox")  # fmt: skip
    assert lc.apply("7MZK3Q0D9X", "confirm", T0 + 1, also_set=extra).changed is False
    assert "outbox" not in stored(ddb)


def test_cancel_with_also_set(ddb: Any, lc: Lifecycle) -> None:
    seed_order(ddb)
    seed_slot(ddb, "2026-12-03", 1)
    r = lc.apply("7MZK3Q0D9X", "cancel", T0, also_set={"outbox": "pending"})
    assert r.order["outbox"] == "pending"
    assert slot(ddb, "2026-12-03") == 0


def _race(n: int, fn: Any) -> list[Any]:
    barrier = threading.Barrier(n)

    def run(_: int) -> Any:
        barrier.wait()
        return fn()

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(run, range(n)))


def test_ten_concurrent_confirms_change_the_order_once(ddb: Any, lc: Lifecycle) -> None:
    seed_order(ddb)
    results = _race(10, lambda: lc.apply("7MZK3Q0D9X", "confirm", T0))
    assert sum(r.changed for r in results) == 1
    assert all(r.order["status"] == "confirmed" for r in results)
    assert [h["status"] for h in stored(ddb)["history"]] == ["accepted", "confirmed"]


def test_ten_concurrent_cancels_give_back_one_slot(ddb: Any, lc: Lifecycle) -> None:
    seed_order(ddb)
    seed_slot(ddb, "2026-12-03", 5)
    results = _race(10, lambda: lc.apply("7MZK3Q0D9X", "cancel", T0))
    assert sum(r.changed for r in results) == 1
    assert slot(ddb, "2026-12-03") == 4
    assert [h["status"] for h in stored(ddb)["history"]] == ["accepted", "cancelled"]


def test_concurrent_cancel_and_dispatch_one_wins(ddb: Any, lc: Lifecycle) -> None:
    seed_order(ddb, status="confirmed")
    seed_slot(ddb, "2026-12-03", 5)

    def attempt(action: str) -> str:
        try:
            return "changed" if lc.apply("7MZK3Q0D9X", action, T0).changed else "noop"
        except InvalidTransition:
            return "invalid"

    barrier = threading.Barrier(2)

    def go(action: str) -> str:
        barrier.wait()
        return attempt(action)

    with ThreadPoolExecutor(2) as pool:
        got = sorted(pool.map(go, ["cancel", "dispatch"]))
    assert got == ["changed", "invalid"]
    final = stored(ddb)["status"]
    assert slot(ddb, "2026-12-03") == (4 if final == "cancelled" else 5)


def test_dynamodb_unreachable_is_unavailable(aws: Any) -> None:
    import boto3
    from botocore.config import Config

    from tests.servers import free_port

    dead = boto3.client(
        "dynamodb",
        endpoint_url=f"http://127.0.0.1:{free_port()}",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"max_attempts": 1}, connect_timeout=1),
    )
    for action in ("confirm", "cancel"):
        with pytest.raises(LifecycleUnavailable):
            Lifecycle(dead, "orders").apply("7MZK3Q0D9X", action, T0)


def test_missing_table_is_unavailable(ddb: Any) -> None:
    with pytest.raises(LifecycleUnavailable):
        Lifecycle(ddb, "no-such-table").apply("7MZK3Q0D9X", "confirm", T0)
