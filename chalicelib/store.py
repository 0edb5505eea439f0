"""The orders table: orders, idempotency records and the SES message-id index.

Single table, key `pk`:
  order#<ID>     the order (customer, priced lines, totals, status, per-email status)
  idem#<KEY>     Idempotency-Key -> order id, request hash and the stored response
                 (written in the same transaction as the order; TTL `expires_at`)
  sesmsg#<MSGID> SES message id -> order id + role: written until 2026-12 for delivery/bounce
                 notifications; now every email carries SES tags naming its order and role
                 (TAG_ORDER, TAG_EMAIL), and these rows are only read, for older messages
While any email of an order is not final, the order carries `outbox="pending"` and `due_at`,
which puts it in the sparse `outbox` GSI the sweeper reads.

Exactly-once creation: every create carries a random `write_id`. The order and its
idempotency record are written in one TransactWriteItems (botocore gives it a
ClientRequestToken, so DynamoDB itself treats a retried call as the same transaction). If a
retry still finds the items there (a lost response seen by a server without request tokens,
or a retry after the token's window), `ReturnValuesOnConditionCheckFailure` hands back the
stored items and a matching `write_id` means "this was us": created, not a collision.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from chalicelib import ddb
from chalicelib.ddb import StoreUnavailable

__all__ = ["ROLES", "CreateOutcome", "Idempotency", "OrderStore", "SendOutcome", "StoreUnavailable"]

ROLES = ("merchant", "customer")
# SES message tags on every email we send: the order and which of its emails (a role, or
# status_<status>). SES publishes them with each bounce/complaint/delivery event.
TAG_ORDER = "order_id"
TAG_EMAIL = "email"
FINAL_STATUSES = ("sent", "delivered", "suppressed", "dropped", "bounced", "complained")
IDEMPOTENCY_TTL_SECONDS = 7 * 86400
FINAL_WRITE_ATTEMPTS = 3


@dataclass(frozen=True)
class Idempotency:
    key: str
    request_hash: str


@dataclass(frozen=True)
class CreateOutcome:
    kind: str  # "created" | "replay" | "conflict" | "refused"
    order: dict[str, Any] | None = None
    response: dict[str, Any] | None = None  # replay: the stored response body
    # "refused": index into `extra` -> that item as it is now ({} when absent), for every
    # extra item whose condition failed
    refused: dict[int, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class SendOutcome:
    """What one send attempt of one email came to (written by `record_sends`)."""

    status: str  # sent | failed | suppressed | held (waiting for DNS) | dropped
    message_id: str | None = None
    reason: str | None = None
    retryable: bool = False
    next_due: int | None = None


def is_final(state: dict[str, Any]) -> bool:
    status = state.get("status")
    return status in FINAL_STATUSES or (status == "failed" and not state.get("retryable"))


class OrderStore:
    """A small DB class around a boto3 low-level DynamoDB client."""

    def __init__(self, ddb_client: Any, table: str) -> None:
        self.ddb = ddb_client
        self.table = table

    # --- reads --------------------------------------------------------------------------
    def get(self, pk: str, consistent: bool = True) -> dict[str, Any] | None:
        r = ddb.call(
            self.ddb,
            "get_item",
            TableName=self.table,
            Key={"pk": {"S": pk}},
            ConsistentRead=consistent,
        )
        return ddb.load(r["Item"]) if "Item" in r else None

    def get_order(self, order_id: str) -> dict[str, Any] | None:
        return self.get(f"order#{order_id}")

    @staticmethod
    def idempotency_pk(key: str) -> str:
        return f"idem#{key}"

    def replay_of(
        self, idem: dict[str, Any] | None, request_hash: str, now: int
    ) -> CreateOutcome | None:
        """What a stored idempotency record means for a request with `request_hash`: None
        (no live record: a new order), "replay" (same body) or "conflict"."""
        if not idem or int(idem.get("expires_at", now + 1)) <= now:
            return None
        if idem.get("request_hash") != request_hash:
            return CreateOutcome("conflict")
        response = idem.get("response")
        if isinstance(response, str):
            return CreateOutcome("replay", response=json.loads(response))
        order = self.get_order(str(idem["order_id"]))  # records written before `response`
        if order is None:
            raise StoreUnavailable("idempotency record without its order")
        return CreateOutcome("replay", order=order)

    # --- create -------------------------------------------------------------------------
    def create(
        self,
        build: Callable[[str], dict[str, Any]],
        new_id: Callable[[], str],
        idem: Idempotency | None,
        now: int,
        respond: Callable[[dict[str, Any]], dict[str, Any]],
        extra: list[dict[str, Any]] | None = None,
        attempts: int = 5,
    ) -> CreateOutcome:
        """Write a new order, its idempotency record and `extra` transact items (e.g. rate
        counters, a delivery slot) in one transaction.

        `build(order_id)` returns the order item; `respond(order)` the response body stored
        with the idempotency record. An order-id collision retries with a fresh id.
        """
        write_id = secrets.token_hex(8)
        extra = list(extra or [])
        for _ in range(attempts):
            order = {**build(new_id()), "write_id": write_id}
            items: list[dict[str, Any]] = [
                {
                    "Put": {
                        "TableName": self.table,
                        "Item": ddb.dump({"pk": f"order#{order['order_id']}", **order}),
                        "ConditionExpression": "attribute_not_exists(pk)",
                        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                    }
                }
            ]
            if idem is not None:
                record = {
                    "pk": self.idempotency_pk(idem.key),
                    "kind": "idem",
                    "order_id": order["order_id"],
                    "request_hash": idem.request_hash,
                    "created_at": now,
                    "expires_at": now + IDEMPOTENCY_TTL_SECONDS,
                    "write_id": write_id,
                    "response": json.dumps(respond(order), separators=(",", ":")),
                }
                items.append(
                    {
                        "Put": {
                            "TableName": self.table,
                            "Item": ddb.dump(record),
                            "ConditionExpression": "attribute_not_exists(pk) OR expires_at < :now",
                            "ExpressionAttributeValues": {":now": {"N": str(now)}},
                            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                        }
                    }
                )
            first_extra = len(items)
            items.extend(extra)
            try:
                ddb.call(self.ddb, "transact_write_items", TransactItems=items)
                return CreateOutcome("created", order)
            except Exception as e:
                reasons = ddb.cancellation_reasons(e)
                if not reasons:
                    raise StoreUnavailable(f"transact_write_items: {ddb.error_code(e)}") from e
            codes = [str(r.get("Code") or "None") for r in reasons]
            failed = [i for i, c in enumerate(codes) if c == "ConditionalCheckFailed"]
            if any(c not in ("None", "ConditionalCheckFailed") for c in codes):
                raise StoreUnavailable(f"transaction cancelled: {codes}")

            def current(i: int, reasons: list[dict[str, Any]] = reasons) -> dict[str, Any]:
                raw = reasons[i].get("Item")
                return ddb.load(raw) if raw else {}

            if 0 in failed and current(0).get("write_id") == write_id:
                return CreateOutcome("created", order)  # our own earlier attempt was applied
            if idem is not None and 1 in failed:
                stored = current(1)
                if stored.get("write_id") == write_id:
                    return CreateOutcome("created", order)
                found = self.replay_of(stored, idem.request_hash, now)
                if found is None:  # expired between the two reads: try again
                    continue
                return found
            refused = {i - first_extra: current(i) for i in failed if i >= first_extra}
            if refused:
                return CreateOutcome("refused", refused=refused)
            # order id collision: try a fresh id
        raise StoreUnavailable("could not allocate an order id")

    # --- the outbox ---------------------------------------------------------------------
    def record_sends(
        self,
        order: dict[str, Any],
        outcomes: dict[str, SendOutcome],
        now: int,
    ) -> None:
        """Record the send attempts of one or more emails of `order` in one write.

        One UpdateItem: statuses, message ids, attempts, and the outbox closed when every
        email is final (as far as `order` shows the ones not in `outcomes`; a non-final email
        elsewhere keeps it open). No message-id index: each email's SES tags name its order
        and role. Retried a few times: a lost write here means a resend by the sweeper after
        the lease (the at-least-once window).
        """
        oid = str(order["order_id"])
        names: dict[str, str] = {"#e": "emails", "#s": "status", "#a": "attempts"}
        values: dict[str, Any] = {":one": 1, ":now": now}
        sets: list[str] = []
        adds: list[str] = []
        removes: list[str] = []
        states = {r: dict(st) for r, st in order.get("emails", {}).items()}
        dues: list[int] = []
        for n, (role, out) in enumerate(outcomes.items()):
            r = f"#r{n}"
            names[r] = role
            values[f":s{n}"] = out.status
            values[f":rt{n}"] = out.retryable
            sets += [
                f"#e.{r}.#s = :s{n}",
                f"#e.{r}.updated_at = :now",
                f"#e.{r}.retryable = :rt{n}",
            ]
            adds.append(f"#e.{r}.#a :one")
            removes.append(f"#e.{r}.lease_until")
            if out.message_id:
                values[f":m{n}"] = out.message_id
                sets.append(f"#e.{r}.message_id = :m{n}")
            if out.reason:
                values[f":why{n}"] = out.reason[:500]
                sets.append(f"#e.{r}.reason = :why{n}")
            if out.next_due is not None:
                dues.append(out.next_due)
                if out.status == "held":  # when the sweeper checks the domain again
                    values[f":ck{n}"] = out.next_due
                    sets.append(f"#e.{r}.check_at = :ck{n}")
            states[role] = {"status": out.status, "retryable": out.retryable}
        if all(is_final(st) for st in states.values()):
            removes += ["outbox", "due_at"]
        elif dues:
            values[":pending"] = "pending"
            values[":due"] = min(dues)
            sets += ["outbox = :pending", "due_at = :due"]
        expr = f"SET {', '.join(sets)} ADD {', '.join(adds)} REMOVE {', '.join(removes)}"
        update = {
            "TableName": self.table,
            "Key": {"pk": {"S": f"order#{oid}"}},
            "UpdateExpression": expr,
            "ConditionExpression": "attribute_exists(pk)",
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": ddb.dump(values),
        }
        for attempt in range(FINAL_WRITE_ATTEMPTS):
            try:
                ddb.call(self.ddb, "update_item", **update)
                return
            except Exception as e:
                if ddb.is_condition_failure(e):
                    raise StoreUnavailable(f"record_sends: order {oid} not found") from e
                if attempt + 1 == FINAL_WRITE_ATTEMPTS:
                    raise StoreUnavailable(f"record_sends: {ddb.error_code(e) or e}") from e

    def close_outbox_if_done(self, order_id: str, roles: tuple[str, ...] = ROLES) -> bool:
        """Take the order out of the outbox index once every email in `roles` (all the
        order has) is final: the sweeper's tidy-up for emails finished elsewhere."""
        values: dict[str, Any] = {f":f{i}": s for i, s in enumerate(FINAL_STATUSES)}
        values.update({":failed": "failed", ":no": False})
        final = ", ".join(k for k in values if k.startswith(":f") and k != ":failed")
        names = {"#e": "emails", "#s": "status"}
        conds = []
        for i, role in enumerate(roles or ROLES):
            names[f"#r{i}"] = role
            r = f"#r{i}"
            conds.append(
                f"(#e.{r}.#s IN ({final}) OR (#e.{r}.#s = :failed AND #e.{r}.retryable = :no))"
            )
        cond = " AND ".join(conds)
        return ddb.update_if(
            self.ddb,
            TableName=self.table,
            Key={"pk": {"S": f"order#{order_id}"}},
            UpdateExpression="REMOVE outbox, due_at",
            ConditionExpression=f"attribute_exists(pk) AND {cond}",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=ddb.dump(values),
        )

    def outbox_due(self, now: int, limit: int = 100) -> list[str]:
        """Order ids whose emails are not all final and whose due time has passed."""
        r = ddb.call(
            self.ddb,
            "query",
            TableName=self.table,
            IndexName="outbox",
            KeyConditionExpression="outbox = :p AND due_at <= :now",
            ExpressionAttributeValues=ddb.dump({":p": "pending", ":now": now}),
            Limit=limit,
        )
        return [ddb.load(i)["pk"].split("#", 1)[1] for i in r.get("Items", [])]

    def claim(
        self, order_id: str, role: str, observed: dict[str, Any], now: int, lease_seconds: int
    ) -> bool:
        """Take a lease on one email, only if nobody changed it since we read `observed`.

        Two sweepers reading the same state race on this conditional update: one wins.
        """
        names = {"#e": "emails", "#r": role, "#s": "status", "#a": "attempts", "#l": "lease_until"}
        values: dict[str, Any] = {
            ":sending": "sending",
            ":until": now + lease_seconds,
            ":st": observed.get("status"),
            ":att": int(observed.get("attempts", 0)),
        }
        cond = "#e.#r.#s = :st AND #e.#r.#a = :att"
        if "lease_until" in observed:
            values[":old"] = int(observed["lease_until"])
            cond += " AND #e.#r.#l = :old"
        else:
            cond += " AND attribute_not_exists(#e.#r.#l)"
        return ddb.update_if(
            self.ddb,
            TableName=self.table,
            Key={"pk": {"S": f"order#{order_id}"}},
            UpdateExpression="SET #e.#r.#s = :sending, #e.#r.#l = :until",
            ConditionExpression=cond,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=ddb.dump(values),
        )

    # --- SES feedback -------------------------------------------------------------------
    def find_by_message_id(self, message_id: str) -> dict[str, Any] | None:
        return self.get(f"sesmsg#{message_id}", consistent=False)

    def mark_delivered(self, message_id: str, recipient: str, when: float, **ref: str) -> bool:
        """SES said `message_id` was delivered: mark that email of its order `delivered`.
        Idempotent (a redelivered notification writes the same values). `ref`: the order_id
        and role from the message's tags (feedback.message_ref), if it had them."""
        return self._mark_email(message_id, "delivered", when, **ref)

    # --- local tooling ------------------------------------------------------------------
    def scan_orders(self, limit: int = 500) -> list[dict[str, Any]]:
        """Every order (local tooling and tests only: a scan)."""
        out: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"TableName": self.table}
        while True:
            r = ddb.call(self.ddb, "scan", **kwargs)
            out.extend(ddb.load(i) for i in r.get("Items", []))
            if "LastEvaluatedKey" not in r or len(out) >= limit:
                break
            kwargs["ExclusiveStartKey"] = r["LastEvaluatedKey"]
        return [o for o in out if o.get("kind") == "order"][:limit]

    # --- issue 15: the back office --------------------------------------------------------
    def _mark_email(
        self,
        message_id: str,
        status: str,
        when: float,
        order_id: str | None = None,
        role: str | None = None,
    ) -> bool:
        """Set the status (and `<status>_at`) of the email SES knows as `message_id`, found by
        its tags (`order_id`, `role`) or, for mail sent before the tags, the message index;
        False when the message is unknown or the order's email has been resent since (the
        order's email must carry this message id either way)."""
        if not (order_id and role):
            index = self.get(f"sesmsg#{message_id}")
            if index is None:
                return False
            order_id, role = str(index["order_id"]), str(index["role"])
        return ddb.update_if(
            self.ddb,
            TableName=self.table,
            Key={"pk": {"S": f"order#{order_id}"}},
            UpdateExpression=f"SET #e.#r.#s = :st, #e.#r.{status}_at = :w",
            ConditionExpression="#e.#r.message_id = :m",
            ExpressionAttributeNames={"#e": "emails", "#r": role, "#s": "status"},
            ExpressionAttributeValues=ddb.dump({":st": status, ":w": int(when), ":m": message_id}),
        )

    def mark_bounced(self, message_id: str, recipient: str, when: float, **ref: str) -> bool:
        """SES reported a permanent bounce of `message_id`: that email becomes `bounced`."""
        return self._mark_email(message_id, "bounced", when, **ref)

    def mark_complained(self, message_id: str, recipient: str, when: float, **ref: str) -> bool:
        """The recipient of `message_id` complained: that email becomes `complained`."""
        return self._mark_email(message_id, "complained", when, **ref)

    def mark_problem(
        self, message_id: str, recipient: str, status: str, when: float, **ref: str
    ) -> bool:
        """feedback.ProblemSink: `status` is "bounced" or "complained"."""
        if status == "complained":
            return self.mark_complained(message_id, recipient, when, **ref)
        return self.mark_bounced(message_id, recipient, when, **ref)

    def query_index(
        self,
        index: str,
        key: str,
        value: str,
        *,
        limit: int = 50,
        start: dict[str, Any] | None = None,
        newest_first: bool = True,
        created_before: int | None = None,
        projection: str | None = None,
    ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        """One page of orders from a GSI (`by_day`, `by_status`, `by_email`: HASH `key`,
        RANGE `created_at`), newest first: (orders, LastEvaluatedKey or None)."""
        cond = "#k = :v"
        values: dict[str, Any] = {":v": value}
        if created_before is not None:
            cond += " AND created_at < :before"
            values[":before"] = created_before
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": index,
            "KeyConditionExpression": cond,
            "ExpressionAttributeNames": {"#k": key},
            "ExpressionAttributeValues": ddb.dump(values),
            "ScanIndexForward": not newest_first,
            "Limit": limit,
        }
        if projection:
            kwargs["ProjectionExpression"] = projection
        if start:
            kwargs["ExclusiveStartKey"] = start
        r = ddb.call(self.ddb, "query", **kwargs)
        return [ddb.load(i) for i in r.get("Items", [])], r.get("LastEvaluatedKey")

    def erase_personal_data(self, order_id: str, now: int, why: str) -> bool:
        """Remove the customer's name, email, phone and address from one order; keep the
        items, totals, status, day and email statuses (the books). History entries and email
        states lose their free-text `reason`. Idempotent; False when the order is gone."""
        order = self.get_order(order_id)
        if order is None:
            return False
        history = [
            {k: v for k, v in h.items() if k != "reason"}
            for h in order.get("history") or []
            if isinstance(h, dict)
        ]
        # a send failure's reason may quote the address (SES: "... not verified: x@y")
        roles = [r for r, st in (order.get("emails") or {}).items() if isinstance(st, dict)]
        names = {f"#r{i}": role for i, role in enumerate(roles)}
        reasons = "".join(f", emails.#r{i}.reason" for i in range(len(roles)))
        return ddb.update_if(
            self.ddb,
            TableName=self.table,
            Key={"pk": {"S": f"order#{order_id}"}},
            UpdateExpression=(
                "SET customer = :c, shipping = :s, history = :h, pii_erased_at = :now, "
                f"pii_erased_why = :why REMOVE email_key{reasons}"
            ),
            ConditionExpression="attribute_exists(pk)",
            **({"ExpressionAttributeNames": names} if names else {}),
            ExpressionAttributeValues=ddb.dump(
                {
                    ":c": {"name": "", "email": "", "phone": ""},
                    ":s": {"line1": "", "line2": "", "city": "", "state": "", "zip": ""},
                    ":h": history,
                    ":now": now,
                    ":why": why,
                }
            ),
        )
