"""Sliding-window rate limits (two fixed windows, weighted), kept in DynamoDB.

One item per (scope, key): pk = "rl#{scope}#{sha256(key)[:32]}", `w` = start of the current
window, `c` = hits in it, `p` = hits in the window before, `expires_at` (the table's TTL) two
windows later. Keys are hashed: the table holds no email or IP addresses.

The estimate for "now" is `p * (1 - elapsed/window) + c` (the two-window weighted scheme), so
a burst across a window boundary can't get twice the limit through.

Nothing here calls AWS on its own, and POST /orders reads no window before it writes: it asks
`decide()` about the item as this container last saw it (chalicelib/lastseen.py; never seen:
absent) and puts `Decision.update` into the transaction that creates the order, so a request
is counted only once it has passed the bot check and the order is really written. The update
is conditional on the state `decide()` assumed; if that was wrong (another container, a
concurrent request), the transaction is cancelled with the item as it is and the caller
decides again on that. `check_item` is the same condition without the count (a window the
order must respect but doesn't add to: the IP's failed bot checks).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from typing import Any

from chalicelib import ddb

EXPIRY_SLACK_SECONDS = 60


def hashed_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


def counter_pk(scope: str, key: str) -> str:
    return f"rl#{scope}#{hashed_key(key)}"


@dataclass(frozen=True)
class Limit:
    scope: str  # "email", "ip", "botfail_ip"
    key: str
    count: int
    window: int

    @property
    def pk(self) -> str:
        return counter_pk(self.scope, self.key)


@dataclass(frozen=True)
class Decision:
    limit: Limit
    allowed: bool
    retry_after: int
    update: dict[str, Any]  # an Update for TransactWriteItems (or UpdateItem's kwargs)
    after: dict[str, Any] = field(default_factory=dict)  # the item once `update` is applied


def _state(item: dict[str, Any] | None, now: float, window: int) -> tuple[int, int, int]:
    """(current window start, hits in it, hits in the previous window) at `now`."""
    ws = int(now // window) * window
    if not item:
        return ws, 0, 0
    w, c = int(item.get("w", 0)), int(item.get("c", 0))
    if w == ws:
        return ws, c, int(item.get("p", 0))
    if w == ws - window:
        return ws, 0, c
    return ws, 0, 0


def estimate(item: dict[str, Any] | None, now: float, window: int) -> float:
    """Weighted hits in the sliding window ending at `now`."""
    ws, cur, prev = _state(item, now, window)
    return prev * (1 - (now - ws) / window) + cur


def _retry_after(item: dict[str, Any] | None, now: float, limit: int, window: int) -> int:
    """Whole seconds until one more hit fits (if nothing else is counted meanwhile)."""
    for t in range(1, 2 * window + 1):
        if estimate(item, now + t, window) + 1 <= limit:
            return t
    return 2 * window


def decide(limit: Limit, item: dict[str, Any] | None, now: float, table: str) -> Decision:
    """May one more hit be counted, given the stored `item` (None if absent)?"""
    window = limit.window
    ws, cur, prev = _state(item, now, window)
    weighted = prev * (1 - (now - ws) / window)
    allowed = weighted + cur + 1 <= limit.count
    values: dict[str, Any] = {
        ":one": 1,
        ":ws": ws,
        ":exp": ws + 2 * window + EXPIRY_SLACK_SECONDS,
    }
    if item and int(item.get("w", 0)) == ws:
        expr = "ADD c :one SET expires_at = :exp"
        cond = "w = :ws AND c <= :cmax"
        values[":cmax"] = max(-1, math.floor(limit.count - 1 - weighted))
    elif item and int(item.get("w", 0)) == ws - window:
        expr = "SET p = c, c = :one, w = :ws, expires_at = :exp"
        cond = "w = :prev"
        values[":prev"] = ws - window
    else:
        expr = "SET p = :zero, c = :one, w = :ws, expires_at = :exp"
        cond = "attribute_not_exists(pk) OR w < :prev"
        values[":prev"] = ws - window
        values[":zero"] = 0
    update = {
        "TableName": table,
        "Key": {"pk": {"S": limit.pk}},
        "UpdateExpression": expr,
        "ConditionExpression": cond,
        "ExpressionAttributeValues": ddb.dump(values),
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }
    retry = 0 if allowed else _retry_after(item, now, limit.count, window)
    after = {"w": ws, "c": cur + 1, "p": prev, "expires_at": values[":exp"]}
    return Decision(limit, allowed, retry, update, after)


def check_item(decision: Decision) -> dict[str, Any]:
    """A ConditionCheck for TransactWriteItems: the window is still as `decide()` assumed
    (so its verdict holds), nothing counted."""
    update = decision.update
    cond = str(update["ConditionExpression"])
    values = {k: v for k, v in update["ExpressionAttributeValues"].items() if k in cond}
    return {
        "ConditionCheck": {
            "TableName": update["TableName"],
            "Key": update["Key"],
            "ConditionExpression": cond,
            "ExpressionAttributeValues": values,
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
    }


def count_now(client: Any, decision: Decision) -> bool:
    """Count one hit outside a transaction; best effort: False when a concurrent hit changed
    the item first (that hit was counted, this one is dropped)."""
    kwargs = {
        k: v for k, v in decision.update.items() if k != "ReturnValuesOnConditionCheckFailure"
    }
    try:
        ddb.call(client, "update_item", **kwargs)
    except Exception as e:
        if ddb.is_condition_failure(e):
            return False
        raise
    return True


COUNT_ATTEMPTS = 3


def count_checked(
    client: Any, decision: Decision, now: float
) -> tuple[Decision, dict[str, Any] | None]:
    """Count one hit outside a transaction (a failed bot check) unless the window is full.

    The update is conditional on the state `decision` assumed; when the item turned out
    different, it is decided again on the item the failure hands back (a few times). Returns
    the decision that held and the item as last seen (None: absent, or not seen).
    """
    current: dict[str, Any] | None = None
    for _ in range(COUNT_ATTEMPTS):
        if not decision.allowed:
            return decision, current
        try:
            ddb.call(client, "update_item", **decision.update)
            return decision, decision.after
        except Exception as e:
            if not ddb.is_condition_failure(e):
                raise
            current = ddb.condition_failure_item(e)
            decision = decide(decision.limit, current, now, str(decision.update["TableName"]))
    return decision, current
