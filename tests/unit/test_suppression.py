"""SuppressionStore against the real moto DynamoDB server."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.suppression import SuppressionStore

DAY = 86400
T0 = 1_790_000_000.0  # a fixed "now" (2026); tests pass time explicitly
LIMIT, WINDOW, SUPPRESS = 3, 7 * DAY, 14 * DAY


def transient(store: SuppressionStore, email: str, message_id: str, now: float) -> bool:
    return store.record_transient(
        email, message_id, now, limit=LIMIT, window_seconds=WINDOW, suppress_seconds=SUPPRESS
    )


def test_permanent_suppression_is_stored_lowercased_and_found_in_any_case(
    suppression_store: SuppressionStore, suppression_items: Any
) -> None:
    written = suppression_store.suppress(
        "Jane.Doe@Example.COM", "bounce", {"bounceType": "Permanent"}, "ses-1", T0
    )

    assert written is True
    items = suppression_items()
    assert list(items) == ["sup#jane.doe@example.com"]
    item = items["sup#jane.doe@example.com"]
    assert item["email"] == {"S": "jane.doe@example.com"}
    assert item["reason"] == {"S": "bounce"}
    assert item["message_id"] == {"S": "ses-1"}
    assert item["permanent"] == {"BOOL": True}
    assert "expires_at" not in item
    for form in ("jane.doe@example.com", "JANE.DOE@EXAMPLE.COM", " Jane.Doe@example.com "):
        record = suppression_store.is_suppressed(form, T0 + 365 * DAY)
        assert record is not None
        assert record["reason"] == "bounce"
        assert record["detail"] == {"bounceType": "Permanent"}
        assert record["suppressed_at"] == int(T0)
    assert suppression_store.is_suppressed("someone.else@example.com", T0) is None


def test_temporary_suppression_honours_expires_at_even_before_ttl_deletes_it(
    suppression_store: SuppressionStore, suppression_items: Any
) -> None:
    suppression_store.suppress(
        "soft@example.org", "transient", {}, "ses-2", T0, expires_at=T0 + SUPPRESS
    )

    # moto (like DynamoDB, lazily) still holds the item after it expired...
    assert suppression_items()["sup#soft@example.org"]["expires_at"] == {
        "N": str(int(T0 + SUPPRESS))
    }
    # ...but the store treats it as gone from expires_at on.
    active = suppression_store.is_suppressed("soft@example.org", T0 + SUPPRESS - 1)
    assert active is not None and active["expires_at"] == int(T0 + SUPPRESS)
    assert active["permanent"] is False
    assert suppression_store.is_suppressed("soft@example.org", T0 + SUPPRESS) is None
    assert "sup#soft@example.org" in suppression_items()


def test_permanent_is_never_downgraded_by_a_later_temporary(
    suppression_store: SuppressionStore, suppression_items: Any
) -> None:
    suppression_store.suppress("hard@example.com", "complaint", {}, "ses-c", T0)

    written = suppression_store.suppress(
        "HARD@example.com", "transient", {}, "ses-t", T0 + 10, expires_at=T0 + SUPPRESS
    )

    assert written is False
    item = suppression_items()["sup#hard@example.com"]
    assert item["reason"] == {"S": "complaint"}
    assert "expires_at" not in item
    assert suppression_store.is_suppressed("hard@example.com", T0 + 100 * DAY) is not None


def test_permanent_upgrades_a_temporary_and_temporary_never_shortens(
    suppression_store: SuppressionStore, suppression_items: Any
) -> None:
    store = suppression_store
    assert store.suppress("x@example.com", "transient", {}, "m1", T0, expires_at=T0 + 10 * DAY)
    # a shorter temporary suppression does not replace the longer one
    assert not store.suppress("x@example.com", "transient", {}, "m2", T0, expires_at=T0 + DAY)
    assert suppression_items()["sup#x@example.com"]["message_id"] == {"S": "m1"}
    # a longer one extends it
    assert store.suppress("x@example.com", "transient", {}, "m3", T0, expires_at=T0 + 20 * DAY)
    assert store.is_suppressed("x@example.com", T0 + 15 * DAY) is not None
    # a permanent one replaces it and removes the expiry
    assert store.suppress("x@example.com", "bounce", {}, "m4", T0)
    item = suppression_items()["sup#x@example.com"]
    assert "expires_at" not in item and item["reason"] == {"S": "bounce"}
    assert store.is_suppressed("x@example.com", T0 + 1000 * DAY) is not None


def test_three_soft_bounces_in_the_window_suppress_temporarily(
    suppression_store: SuppressionStore, suppression_items: Any
) -> None:
    store = suppression_store
    assert transient(store, "Busy@Example.org", "m1", T0) is False
    assert transient(store, "busy@example.org", "m2", T0 + 2 * DAY) is False
    assert "sup#busy@example.org" not in suppression_items()
    assert store.is_suppressed("busy@example.org", T0 + 2 * DAY) is None

    third = T0 + 5 * DAY
    assert transient(store, "busy@example.org", "m3", third) is True

    item = suppression_items()["sup#busy@example.org"]
    assert item["reason"] == {"S": "transient"}
    assert item["expires_at"] == {"N": str(int(third + SUPPRESS))}
    assert item["detail"]["M"]["soft_bounces"] == {"S": "3"}
    assert store.is_suppressed("busy@example.org", third + SUPPRESS - 1) is not None
    assert store.is_suppressed("busy@example.org", third + SUPPRESS) is None
    # the counter item carries a TTL too (end of the window)
    counter = suppression_items()["tb#busy@example.org"]
    assert counter["expires_at"] == {"N": str(int(third + WINDOW))}


def test_two_soft_bounces_do_not_suppress(
    suppression_store: SuppressionStore, suppression_items: Any
) -> None:
    assert transient(suppression_store, "two@example.org", "m1", T0) is False
    assert transient(suppression_store, "two@example.org", "m2", T0 + 60) is False

    assert [k for k in suppression_items() if k.startswith("sup#")] == []
    assert suppression_store.is_suppressed("two@example.org", T0 + 120) is None


def test_soft_bounces_outside_the_window_restart_the_count(
    suppression_store: SuppressionStore, suppression_items: Any
) -> None:
    store = suppression_store
    assert transient(store, "slow@example.org", "m1", T0) is False
    assert transient(store, "slow@example.org", "m2", T0 + DAY) is False
    # the third comes after both earlier ones left the 7-day window: count is 1 again
    assert transient(store, "slow@example.org", "m3", T0 + DAY + WINDOW + 1) is False
    assert "sup#slow@example.org" not in suppression_items()
    hits = suppression_items()["tb#slow@example.org"]["hits"]["M"]
    assert set(hits) == {"m3"}
    # two more inside the new window reach the limit
    assert transient(store, "slow@example.org", "m4", T0 + DAY + WINDOW + 2) is False
    assert transient(store, "slow@example.org", "m5", T0 + DAY + WINDOW + 3) is True


def test_sliding_window_drops_only_the_old_bounce(suppression_store: SuppressionStore) -> None:
    store = suppression_store
    transient(store, "slide@example.org", "m1", T0)
    transient(store, "slide@example.org", "m2", T0 + 6 * DAY)
    # at T0+8d the first bounce has slid out, the second has not: 2 in the window
    assert transient(store, "slide@example.org", "m3", T0 + 8 * DAY) is False
    assert transient(store, "slide@example.org", "m4", T0 + 9 * DAY) is True


def test_redelivered_soft_bounce_is_counted_once(
    suppression_store: SuppressionStore, suppression_items: Any
) -> None:
    store = suppression_store
    for _ in range(3):  # SNS delivering the same notification three times
        assert transient(store, "dup@example.org", "same-ses-id", T0) is False
    assert set(suppression_items()["tb#dup@example.org"]["hits"]["M"]) == {"same-ses-id"}
    assert store.is_suppressed("dup@example.org", T0) is None


def test_soft_bounce_threshold_does_not_downgrade_a_permanent_suppression(
    suppression_store: SuppressionStore, suppression_items: Any
) -> None:
    store = suppression_store
    store.suppress("gone@example.com", "bounce", {"bounceType": "Permanent"}, "hard", T0)
    results = [transient(store, "gone@example.com", f"m{i}", T0 + i) for i in range(1, 4)]

    assert results == [False, False, False]
    item = suppression_items()["sup#gone@example.com"]
    assert item["reason"] == {"S": "bounce"} and "expires_at" not in item


def test_suppress_many_writes_more_than_one_batch_and_dedupes_case(
    suppression_store: SuppressionStore, suppression_items: Any
) -> None:
    entries = [(f"user{i:02d}@example.com", {"status": "5.1.1"}) for i in range(60)]
    entries.append(("USER07@example.com", {"status": "5.1.1"}))  # same address, other case

    written = suppression_store.suppress_many(entries, "bounce", "ses-big", T0)

    assert len(written) == 60
    items = suppression_items()
    assert set(items) == {f"sup#user{i:02d}@example.com" for i in range(60)}
    assert all(item["message_id"] == {"S": "ses-big"} for item in items.values())


class _Throttling:
    """Fault injection: the real client, but the first BatchWriteItem only half succeeds."""

    def __init__(self, real: Any) -> None:
        self._real = real
        self.batch_calls: list[int] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def batch_write_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:  # noqa: N803
        ((table, requests),) = RequestItems.items()
        self.batch_calls.append(len(requests))
        if len(self.batch_calls) == 1:
            half = len(requests) // 2
            self._real.batch_write_item(RequestItems={table: requests[:half]})
            return {"UnprocessedItems": {table: requests[half:]}}
        return dict(self._real.batch_write_item(RequestItems=RequestItems))


def test_unprocessed_batch_items_are_retried(ddb: Any, suppression_items: Any) -> None:
    client = _Throttling(ddb)
    store = SuppressionStore(client, "suppression")

    store.suppress_many(
        [(f"r{i}@example.com", {}) for i in range(30)], "bounce", "ses-throttled", T0
    )

    assert client.batch_calls[0] == 25  # never more than the BatchWriteItem limit
    assert max(client.batch_calls) <= 25
    assert len(suppression_items()) == 30


def test_list_returns_newest_first_and_can_hide_expired(
    suppression_store: SuppressionStore,
) -> None:
    store = suppression_store
    store.suppress("old@example.com", "bounce", {}, "m1", T0)
    store.suppress("temp@example.com", "transient", {}, "m2", T0 + 1, expires_at=T0 + DAY)
    store.suppress("new@example.com", "complaint", {"complaintFeedbackType": "abuse"}, "m3", T0 + 2)
    transient(store, "counter@example.com", "m4", T0)  # counters are not listed

    everything = store.list()
    assert [r["email"] for r in everything] == [
        "new@example.com",
        "temp@example.com",
        "old@example.com",
    ]
    assert everything[0]["detail"] == {"complaintFeedbackType": "abuse"}
    assert [r["email"] for r in store.list(now=T0 + 2 * DAY)] == [
        "new@example.com",
        "old@example.com",
    ]
    assert len(store.list(limit=1)) == 1


def test_rejects_bad_input(suppression_store: SuppressionStore) -> None:
    with pytest.raises(ValueError):
        suppression_store.suppress("x@example.com", "spam", {}, "m", T0)
    with pytest.raises(ValueError):
        suppression_store.suppress("no-at-sign", "bounce", {}, "m", T0)
    assert suppression_store.is_suppressed("", T0) is None
