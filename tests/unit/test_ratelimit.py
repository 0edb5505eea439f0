"""Sliding-window rate limits: `decide` on plain values, its updates against the real moto
server (DynamoDB over HTTP, table "rate-limits")."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib import ddb as codec
from chalicelib.ratelimit import Limit, count_now, counter_pk, decide, estimate, hashed_key

TABLE = "rate-limits"
EMAIL = "jane.doe@deliverable.test"
IP = "203.0.113.9"


def stored(client: Any, limit: Limit) -> dict[str, Any] | None:
    r = client.get_item(TableName=TABLE, Key={"pk": {"S": limit.pk}}, ConsistentRead=True)
    return codec.load(r["Item"]) if "Item" in r else None


def hit(client: Any, limit: Limit, now: float) -> bool:
    """decide + apply, the way checkout does (one attempt); True if counted."""
    d = decide(limit, stored(client, limit), now, TABLE)
    return d.allowed and count_now(client, d)


def test_under_the_limit_passes_and_stores_no_address(ddb: Any) -> None:
    lim = Limit("email", EMAIL, 3, 600)
    assert [hit(ddb, lim, 1000.0) for _ in range(3)] == [True, True, True]
    items = ddb.scan(TableName=TABLE)["Items"]
    assert len(items) == 1
    item = codec.load(items[0])
    assert item["pk"] == f"rl#email#{hashed_key(EMAIL)}" == counter_pk("email", EMAIL)
    assert (item["w"], item["c"], item["p"]) == (600, 3, 0)
    assert item["expires_at"] == 600 + 1200 + 60
    assert "jane" not in str(items) and "deliverable" not in str(items)


def test_over_the_limit_is_refused_and_not_counted(ddb: Any) -> None:
    lim = Limit("email", EMAIL, 3, 600)
    for _ in range(3):
        hit(ddb, lim, 1000.0)
    d = decide(lim, stored(ddb, lim), 1000.0, TABLE)
    assert not d.allowed and d.retry_after >= 1
    assert stored(ddb, lim)["c"] == 3  # type: ignore[index]


def test_a_burst_across_the_window_boundary_gets_the_limit_not_twice_it(ddb: Any) -> None:
    """Fixed windows let 2 x limit through around a boundary; the weighted window does not."""
    lim = Limit("ip", IP, 10, 600)
    first = sum(hit(ddb, lim, 1199.0) for _ in range(10))  # end of window 600..1200
    second = sum(hit(ddb, lim, 1201.0) for _ in range(10))  # just after the boundary
    assert first == 10
    assert second == 0  # 10 x (1 - 1/600) still weighs 9.98
    # half a window later the previous window weighs half: 5 more fit
    later = sum(hit(ddb, lim, 1500.0) for _ in range(10))
    assert later == 5


def test_retry_after_says_when_one_more_fits() -> None:
    lim = Limit("email", EMAIL, 3, 600)
    item = {"w": 600, "c": 3, "p": 0}
    d = decide(lim, item, 1000.0, TABLE)
    assert not d.allowed
    # one more fits once the weighted estimate drops to 2: 3 * (1 - t/600) <= 2 at t >= 200
    assert estimate(item, 1000.0 + d.retry_after, 600) + 1 <= 3
    assert estimate(item, 1000.0 + d.retry_after - 1, 600) + 1 > 3
    assert d.retry_after == 400  # 1200 (rollover) + 200 - 1000


def test_a_concurrent_hit_makes_the_stale_update_fail(ddb: Any) -> None:
    """Two requests decide on the same state; the second update must not overshoot."""
    lim = Limit("email", EMAIL, 2, 600)
    hit(ddb, lim, 10.0)
    seen = stored(ddb, lim)
    a, b = decide(lim, seen, 11.0, TABLE), decide(lim, seen, 11.0, TABLE)
    assert a.allowed and b.allowed
    assert count_now(ddb, a) is True
    assert count_now(ddb, b) is False  # c is now 2: the condition `c <= 0` fails
    assert stored(ddb, lim)["c"] == 2  # type: ignore[index]


@pytest.mark.parametrize(
    ("item", "now", "expected"),
    [
        (None, 5.0, 0.0),
        ({"w": 0, "c": 4, "p": 8}, 300.0, 8),  # same window: 8 * 0.5 + 4
        ({"w": 0, "c": 4, "p": 8}, 900.0, 2),  # next window: 4 * 0.5
        ({"w": 0, "c": 4, "p": 8}, 1500.0, 0),  # two windows later: nothing left
    ],
)
def test_estimate(item: dict[str, Any] | None, now: float, expected: float) -> None:
    assert estimate(item, now, 600) == pytest.approx(expected)


def test_other_dynamodb_errors_propagate(ddb: Any) -> None:
    from chalicelib.ddb import StoreUnavailable

    d = decide(Limit("ip", IP, 5, 600), None, 1.0, "no-such-table")
    with pytest.raises(StoreUnavailable):
        count_now(ddb, d)


def test_a_failed_bot_check_on_a_stale_guess_is_counted_on_the_real_item(ddb: Any) -> None:
    """count_checked: the guess (never seen: empty) was wrong; the failure hands back the item
    and the hit is counted on it, not dropped."""
    from chalicelib.ratelimit import count_checked

    lim = Limit("botfail_ip", IP, 3, 600)
    hit(ddb, lim, 10.0)  # another container's failure
    decision, item = count_checked(ddb, decide(lim, None, 11.0, TABLE), 11.0)
    assert decision.allowed and item is not None and item["c"] == 2
    assert stored(ddb, lim)["c"] == 2  # type: ignore[index]


def test_a_full_window_found_by_count_checked_is_refused_and_not_counted(ddb: Any) -> None:
    from chalicelib.ratelimit import count_checked

    lim = Limit("botfail_ip", IP, 2, 600)
    hit(ddb, lim, 10.0)
    hit(ddb, lim, 10.0)
    decision, item = count_checked(ddb, decide(lim, None, 11.0, TABLE), 11.0)
    assert not decision.allowed and decision.retry_after >= 1
    assert item is not None and item["c"] == 2
    assert stored(ddb, lim)["c"] == 2  # type: ignore[index]


def test_check_item_holds_while_the_window_is_as_decided_and_counts_nothing(ddb: Any) -> None:
    from chalicelib.ratelimit import check_item

    lim = Limit("botfail_ip", IP, 5, 600)
    d = decide(lim, None, 11.0, TABLE)
    ddb.transact_write_items(TransactItems=[check_item(d)])  # absent, as decided: holds
    assert stored(ddb, lim) is None
    hit(ddb, lim, 12.0)  # the window moves
    with pytest.raises(ddb.exceptions.TransactionCanceledException) as e:
        ddb.transact_write_items(TransactItems=[check_item(d)])
    reasons = e.value.response["CancellationReasons"]
    assert reasons[0]["Code"] == "ConditionalCheckFailed"
    assert codec.load(reasons[0]["Item"])["c"] == 1  # the item as it is, to decide again on
