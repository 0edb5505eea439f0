"""The order lifecycle: a small state machine and the one DynamoDB write per transition.

    accepted -> confirmed -> out_for_delivery -> delivered
    accepted | confirmed -> cancelled

Each transition is one conditional write on the order's current `status` that also appends
`{status, at, by, reason?}` to `history`. Applying a transition whose target the order already
has is a no-op (`changed=False`); anything else that is not allowed raises InvalidTransition.
Cancelling an order that holds a delivery-day slot gives the slot back in the same transaction,
so it is given back exactly once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from chalicelib import ddb
from chalicelib.ddb import StoreUnavailable

# --- the state machine (pure) ---------------------------------------------------------------
STATUSES = ("accepted", "confirmed", "out_for_delivery", "delivered", "cancelled")
ACTIONS: dict[str, tuple[frozenset[str], str]] = {
    "confirm": (frozenset({"accepted"}), "confirmed"),
    "dispatch": (frozenset({"confirmed"}), "out_for_delivery"),
    "deliver": (frozenset({"out_for_delivery"}), "delivered"),
    "cancel": (frozenset({"accepted", "confirmed"}), "cancelled"),
}
# the order actions are offered in (links in the alert, buttons on pages)
_ORDER = ("confirm", "dispatch", "deliver", "cancel")
MAX_REASON_LENGTH = 500
MAX_BY_LENGTH = 64


def target(action: str) -> str:
    return ACTIONS[action][1]


def next_actions(status: str) -> list[str]:
    """The actions allowed from `status`, in display order (empty for final states)."""
    return [a for a in _ORDER if status in ACTIONS[a][0]]


def can_apply(status: str, action: str) -> bool:
    return action in ACTIONS and status in ACTIONS[action][0]


class InvalidTransition(Exception):
    """`action` is not possible from the order's `current` status (-> 409 invalid_transition)."""

    code = "invalid_transition"

    def __init__(self, action: str, current: str, order: dict[str, Any] | None = None) -> None:
        super().__init__(f"cannot {action} an order that is {current}")
        self.action = action
        self.current = current
        self.order = order


LifecycleUnavailable = StoreUnavailable  # DynamoDB unreachable or refused (503)


class OrderNotFound(Exception):
    pass


@dataclass(frozen=True)
class TransitionResult:
    changed: bool
    order: dict[str, Any]


def _entry(status: str, now: int, by: str, reason: str | None) -> dict[str, Any]:
    entry: dict[str, Any] = {"status": status, "at": int(now), "by": str(by)[:MAX_BY_LENGTH]}
    if reason:
        entry["reason"] = reason[:MAX_REASON_LENGTH]
    return entry


class Lifecycle:
    """Order transitions against the orders table (boto3 low-level client passed in)."""

    def __init__(self, ddb_client: Any, table: str) -> None:
        self.ddb = ddb_client
        self.table = table
        self._encode, self._decode = ddb.dump, ddb.load

    # --- helpers ----------------------------------------------------------------------------
    @staticmethod
    def _key(order_id: str) -> dict[str, Any]:
        return {"pk": {"S": f"order#{order_id}"}}

    def _call(self, name: str, **kwargs: Any) -> Any:
        return ddb.call(self.ddb, name, **kwargs)

    def get(self, order_id: str) -> dict[str, Any] | None:
        r = self._call(
            "get_item", TableName=self.table, Key=self._key(order_id), ConsistentRead=True
        )
        item = r.get("Item")
        return self._decode(item) if item else None

    def _update_args(
        self, order_id: str, action: str, entry: dict[str, Any], also_set: Mapping[str, Any]
    ) -> dict[str, Any]:
        sources, to = ACTIONS[action]
        names = {"#s": "status", "#h": "history", "#pk": "pk"}
        values: dict[str, Any] = {":to": to, ":entry": [entry], ":empty": []}
        sets = ["#s = :to", "#h = list_append(if_not_exists(#h, :empty), :entry)"]
        for i, (path, value) in enumerate(also_set.items()):
            parts = []
            for j, part in enumerate(path.split(".")):
                names[f"#x{i}_{j}"] = part
                parts.append(f"#x{i}_{j}")
            values[f":x{i}"] = value
            sets.append(f"{'.'.join(parts)} = :x{i}")
        froms = sorted(sources)
        for i, s in enumerate(froms):
            values[f":from{i}"] = s
        condition = "attribute_exists(#pk) AND #s IN ({})".format(
            ", ".join(f":from{i}" for i in range(len(froms)))
        )
        return {
            "TableName": self.table,
            "Key": self._key(order_id),
            "UpdateExpression": "SET " + ", ".join(sets),
            "ConditionExpression": condition,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": self._encode(values),
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }

    def _refused(
        self, order_id: str, action: str, order: dict[str, Any] | None
    ) -> TransitionResult:
        """After a failed condition: the no-op result, or raise NotFound / InvalidTransition."""
        if not order:
            raise OrderNotFound(order_id)
        current = str(order.get("status", "")) or "unknown"
        if current == target(action):
            return TransitionResult(False, order)
        raise InvalidTransition(action, current, order)

    def _old(self, raw: Mapping[str, Any] | None) -> dict[str, Any] | None:
        return self._decode(dict(raw)) if raw else None

    # --- the one public operation ---------------------------------------------------------
    def apply(
        self,
        order_id: str,
        action: str,
        now: int,
        reason: str | None = None,
        by: str = "link",
        also_set: Mapping[str, Any] | None = None,
    ) -> TransitionResult:
        """Move the order on by `action` at `now` (epoch seconds).

        `also_set` (top-level or dotted attribute paths -> values) is written in the same
        update when the transition happens, e.g. to enqueue the status email in the outbox.
        Raises KeyError (unknown action), OrderNotFound, InvalidTransition or
        LifecycleUnavailable."""
        if action not in ACTIONS:
            raise KeyError(action)
        entry = _entry(target(action), now, by, reason if action == "cancel" else None)
        extra = dict(also_set or {})
        if action == "cancel":
            return self._cancel(order_id, entry, extra)
        return self._update(order_id, action, entry, extra)

    def _update(
        self, order_id: str, action: str, entry: dict[str, Any], extra: dict[str, Any]
    ) -> TransitionResult:
        from botocore.exceptions import ClientError

        args = self._update_args(order_id, action, entry, extra)
        try:
            r = self._call("update_item", ReturnValues="ALL_NEW", **args)
        except ClientError as e:
            return self._refused(order_id, action, self._old(e.response.get("Item")))
        return TransitionResult(True, self._decode(r["Attributes"]))

    def _cancel(
        self, order_id: str, entry: dict[str, Any], extra: dict[str, Any]
    ) -> TransitionResult:
        from botocore.exceptions import ClientError

        current = self.get(order_id)
        if current is None:
            raise OrderNotFound(order_id)
        day = current.get("delivery_day")
        if not isinstance(day, str) or not day:
            return self._update(order_id, "cancel", entry, extra)
        if current.get("status") not in ACTIONS["cancel"][0]:
            return self._refused(order_id, "cancel", current)
        args = self._update_args(order_id, "cancel", entry, extra)
        # the slot we give back must be the one this order holds
        args["ConditionExpression"] += " AND #day = :day"
        args["ExpressionAttributeNames"]["#day"] = "delivery_day"
        args["ExpressionAttributeValues"][":day"] = {"S": day}
        slot = {
            "TableName": self.table,
            "Key": {"pk": {"S": f"slot#{day}"}},
            "UpdateExpression": "ADD #n :minus_one",
            "ConditionExpression": "#n > :zero",
            "ExpressionAttributeNames": {"#n": "n"},
            "ExpressionAttributeValues": {":minus_one": {"N": "-1"}, ":zero": {"N": "0"}},
        }
        try:
            self._call("transact_write_items", TransactItems=[{"Update": args}, {"Update": slot}])
        except ClientError as e:
            reasons = e.response.get("CancellationReasons") or []
            first = reasons[0] if reasons else {}
            if first.get("Code") == "ConditionalCheckFailed":
                return self._refused(order_id, "cancel", self._old(first.get("Item")))
            second = reasons[1] if len(reasons) > 1 else {}
            if second.get("Code") != "ConditionalCheckFailed":
                raise LifecycleUnavailable(f"transact_write_items: {reasons}") from e
            # the day's counter is already 0 or missing (an order from before slots existed,
            # or a counter fixed by hand): still cancel; there is nothing to give back
            from chalicelib.obs import log

            log("slot_release_skipped", "warning", order_id=order_id, day=day)
            return self._update(order_id, "cancel", entry, extra)
        order = self.get(order_id)
        if order is None:  # deleted between our write and read: report what we wrote
            order = {**current, "status": entry["status"]}
        return TransitionResult(True, order)
