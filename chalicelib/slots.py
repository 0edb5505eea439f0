"""Delivery-day capacity in the orders table: one counter item per day.

`slot#YYYY-MM-DD` holds `n`, the orders that hold a slot that day. A new order takes its slot
in the transaction that creates it (`take`: ADD n 1 only while n < capacity), so two orders can
never share the last slot and a replay (whose transaction is cancelled by its idempotency
record) never takes a second one. A cancelled order gives it back (chalicelib/lifecycle.py).
An order reads no counts: it tries the requested day, or the earliest day this container hasn't
seen full lately (chalicelib/lastseen.py, `slots_cache_seconds`), and a full day's cancelled
transaction hands back its count. Reads: one BatchGetItem for the catalog, or for the days
offered with a refusal.

The catalog's counts are reused in-process for `slots_cache_seconds` (30 s; keyed by
endpoint, table and days): a day shown available that filled up meanwhile only means a later
clear 422 from the order's own transaction, and CloudFront caches the catalog as long anyway.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

from chalicelib import clock, ddb
from chalicelib.obs import log


def slot_pk(day: date | str) -> str:
    return f"slot#{day if isinstance(day, str) else day.isoformat()}"


def keys(days: Iterable[date]) -> list[str]:
    return [slot_pk(d) for d in days]


def taken_from(items: dict[tuple[str, str], dict[str, Any]], table: str) -> dict[str, int]:
    """`"YYYY-MM-DD"` -> orders holding a slot, from batch_get's result."""
    return {
        pk.removeprefix("slot#"): int(item.get("n", 0))
        for (t, pk), item in items.items()
        if t == table and pk.startswith("slot#")
    }


def read_taken(client: Any, table: str, days: list[date]) -> dict[str, int]:
    """One BatchGetItem: the taken count of every day in `days`."""
    if not days:
        return {}
    return taken_from(ddb.batch_get(client, {table: keys(days)}), table)


_CacheKey = tuple[str, str, tuple[date, ...]]
_cache: dict[_CacheKey, tuple[float, dict[str, int]]] = {}
_cache_lock = threading.Lock()
_CACHE_MAX = 64  # distinct (endpoint, table, days) keys: a few per day at most


def clear_cache() -> None:
    """Forget the catalog's cached counts (tests that reset the store)."""
    with _cache_lock:
        _cache.clear()


def cached_taken(svc: Any, days: list[date]) -> dict[str, int]:
    """read_taken of the orders table, reused for `slots_cache_seconds` per (endpoint, table,
    days). A hit does not touch the DynamoDB client (nor create it)."""
    s = svc.settings
    ttl = s.slots_cache_seconds
    if ttl <= 0:
        return read_taken(svc.dynamodb, s.orders_table, days)
    key = (s.aws_endpoint_url, s.orders_table, tuple(days))
    now = clock.now().timestamp()  # the app's one clock
    hit = _cache.get(key)
    if hit is not None and 0 <= now - hit[0] < ttl:
        return hit[1]
    taken = read_taken(svc.dynamodb, s.orders_table, days)  # StoreUnavailable: nothing cached
    with _cache_lock:
        if len(_cache) >= _CACHE_MAX:
            _cache.clear()
        _cache[key] = (now, taken)
    return taken


def take(table: str, day: str, capacity: int) -> dict[str, Any]:
    """The transact item that takes one slot of `day` (fails once the day is full)."""
    return {
        "Update": {
            "TableName": table,
            "Key": {"pk": {"S": slot_pk(day)}},
            "UpdateExpression": "ADD #n :one SET #d = :day",
            "ConditionExpression": "attribute_not_exists(#n) OR #n < :cap",
            "ExpressionAttributeNames": {"#n": "n", "#d": "day"},
            "ExpressionAttributeValues": ddb.dump({":one": 1, ":cap": capacity, ":day": day}),
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
    }


def offer(svc: Any, now: datetime) -> list[dict[str, Any]]:
    """The catalog's `delivery_days`: every choosable day, earliest first, with whether it
    still has room. If DynamoDB can't be read the days are offered as available (the order
    itself is refused with a clear message if its day turns out full)."""
    from chalicelib.delivery import choosable_days
    from chalicelib.shop import load_shop

    rules = load_shop().delivery_rules()
    days = choosable_days(now, rules)
    try:
        taken = cached_taken(svc, days)
    except ddb.StoreUnavailable as e:
        log("delivery_days_unread", "warning", detail=str(e)[:200])
        taken = {}
    return [
        {"date": d.isoformat(), "available": taken.get(d.isoformat(), 0) < rules.capacity_per_day}
        for d in days
    ]
