"""The orders table: orders, idempotency records and the SES message-id index.

Single table, key `pk`:
  order#<ID>     the order (customer, priced lines, total, per-email status, stored response)
  idem#<KEY>     Idempotency-Key -> order id + request hash (written atomically with the order)
  sesmsg#<MSGID> SES message id -> order id + role (for delivery notifications)
While any email of an order is not final, the order carries `outbox="pending"` and `due_at`,
which puts it in the sparse `outbox` GSI the sweeper reads.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

ROLES = ("merchant", "customer")
FINAL_STATUSES = ("sent", "delivered", "suppressed")
IDEMPOTENCY_TTL_SECONDS = 7 * 86400


class StoreUnavailable(Exception):
    """DynamoDB could not be reached or refused the call (maps to 503)."""


@dataclass(frozen=True)
class CreateOutcome:
    kind: str  # "created" | "replay" | "conflict"
    order: dict[str, Any] | None


def _codec() -> tuple[Any, Any]:
    from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

    return TypeSerializer(), TypeDeserializer()


class OrderStore:
    """A small DB class around a boto3 low-level DynamoDB client."""

    def __init__(self, ddb_client: Any, table: str) -> None:
        self.ddb = ddb_client
        self.table = table
        self._ser, self._de = _codec()

    # --- encoding -----------------------------------------------------------------
    def _dump(self, item: dict[str, Any]) -> dict[str, Any]:
        return {k: self._ser.serialize(v) for k, v in item.items()}

    def _load(self, raw: dict[str, Any]) -> dict[str, Any]:
        return _plain({k: self._de.deserialize(v) for k, v in raw.items()})

    def _call(self, name: str, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self.ddb, name)(**kwargs)
        except ClientError as e:
            code = e.response.get("Error", {}).get("Code", "")
            if code in ("ConditionalCheckFailedException", "TransactionCanceledException"):
                raise
            raise StoreUnavailable(f"{name}: {code}") from e
        except BotoCoreError as e:
            raise StoreUnavailable(f"{name}: {type(e).__name__}") from e

    # --- reads --------------------------------------------------------------------
    def get(self, pk: str, consistent: bool = True) -> dict[str, Any] | None:
        r = self._call(
            "get_item", TableName=self.table, Key={"pk": {"S": pk}}, ConsistentRead=consistent
        )
        return self._load(r["Item"]) if "Item" in r else None

    def get_order(self, order_id: str) -> dict[str, Any] | None:
        return self.get(f"order#{order_id}")

    def get_idempotency(self, key: str) -> dict[str, Any] | None:
        return self.get(f"idem#{key}")

    # --- writes -------------------------------------------------------------------
    def create(
        self,
        build: Callable[[str], dict[str, Any]],
        new_id: Callable[[], str],
        idempotency_key: str | None,
        request_hash: str,
        now: int,
        attempts: int = 5,
    ) -> CreateOutcome:
        """Store a new order with a conditional put (and its idempotency record atomically).

        `build(order_id)` returns the order item. An id collision retries with a new id; an
        existing idempotency record yields "replay" (same hash) or "conflict".
        """
        from botocore.exceptions import ClientError

        for _ in range(attempts):
            order = build(new_id())
            order_pk = f"order#{order['order_id']}"
            put_order = {
                "TableName": self.table,
                "Item": self._dump({"pk": order_pk, **order}),
                "ConditionExpression": "attribute_not_exists(pk)",
            }
            try:
                if idempotency_key is None:
                    self._call("put_item", **put_order)
                else:
                    idem = {
                        "pk": f"idem#{idempotency_key}",
                        "kind": "idem",
                        "order_id": order["order_id"],
                        "request_hash": request_hash,
                        "created_at": now,
                        "expires_at": now + IDEMPOTENCY_TTL_SECONDS,
                    }
                    put_idem = {
                        "TableName": self.table,
                        "Item": self._dump(idem),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                    self._call(
                        "transact_write_items",
                        TransactItems=[{"Put": put_order}, {"Put": put_idem}],
                    )
                return CreateOutcome("created", order)
            except ClientError as e:
                code = e.response.get("Error", {}).get("Code", "")
                reasons = [r.get("Code") for r in e.response.get("CancellationReasons", [])]
                if (
                    idempotency_key is not None
                    and len(reasons) > 1
                    and reasons[1] == ("ConditionalCheckFailed")
                ):
                    found = self.lookup_idempotent(idempotency_key, request_hash)
                    if found is None:
                        raise StoreUnavailable("idempotency record vanished") from e
                    return found
                if (
                    code == "TransactionCanceledException"
                    and "ConditionalCheckFailed" not in reasons
                ):
                    raise StoreUnavailable(f"transaction cancelled: {reasons}") from e
                continue  # order id collision: try a fresh id
        raise StoreUnavailable("could not allocate an order id")

    def lookup_idempotent(self, key: str, request_hash: str) -> CreateOutcome | None:
        """None if the key is new; else "replay" (same body) or "conflict"."""
        idem = self.get_idempotency(key)
        if idem is None:
            return None
        if idem.get("request_hash") != request_hash:
            return CreateOutcome("conflict", None)
        return CreateOutcome("replay", self.get_order(str(idem["order_id"])))

    def record_send(
        self,
        order_id: str,
        role: str,
        *,
        status: str,
        now: int,
        message_id: str | None = None,
        reason: str | None = None,
        retryable: bool = False,
        next_due: int | None = None,
    ) -> None:
        """Record the outcome of one send attempt of `role`'s email."""
        names = {"#e": "emails", "#r": role, "#s": "status", "#a": "attempts", "#u": "updated_at"}
        values: dict[str, Any] = {":s": status, ":one": 1, ":now": now}
        sets = ["#e.#r.#s = :s", "#e.#r.#u = :now"]
        removes = ["#e.#r.lease_until"]
        if message_id:
            names["#m"] = "message_id"
            values[":m"] = message_id
            sets.append("#e.#r.#m = :m")
        if reason:
            names["#why"] = "reason"
            values[":why"] = reason[:500]
            sets.append("#e.#r.#why = :why")
        names["#rt"] = "retryable"
        values[":rt"] = retryable
        sets.append("#e.#r.#rt = :rt")
        if next_due is not None:
            names["#d"] = "due_at"
            values[":d"] = next_due
            sets.append("#d = :d")
        update: dict[str, Any] = {
            "Update": {
                "TableName": self.table,
                "Key": {"pk": {"S": f"order#{order_id}"}},
                "UpdateExpression": f"SET {', '.join(sets)} ADD #e.#r.#a :one "
                f"REMOVE {', '.join(removes)}",
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": self._dump(values),
                "ConditionExpression": "attribute_exists(pk)",
            }
        }
        if message_id:
            # The index first (an idempotent put), then the order: no transaction, because two
            # concurrent transactions on one order item (merchant + customer) would cancel
            # each other with TransactionConflict on real DynamoDB.
            index = {
                "pk": f"sesmsg#{message_id}",
                "kind": "sesmsg",
                "order_id": order_id,
                "role": role,
                "created_at": now,
            }
            self._call("put_item", TableName=self.table, Item=self._dump(index))
        self._call("update_item", **update["Update"])

    def close_outbox_if_done(self, order_id: str) -> bool:
        """Take the order out of the outbox index once every email is final
        (sent, delivered, suppressed, or failed and not retryable)."""
        from botocore.exceptions import ClientError

        values: dict[str, Any] = {f":f{i}": s for i, s in enumerate(FINAL_STATUSES)}
        values.update({":failed": "failed", ":no": False})
        final = ", ".join(k for k in values if k.startswith(":f") and k != ":failed")
        cond = " AND ".join(
            f"(#e.{r}.#s IN ({final}) OR (#e.{r}.#s = :failed AND #e.{r}.retryable = :no))"
            for r in ROLES
        )
        try:
            self._call(
                "update_item",
                TableName=self.table,
                Key={"pk": {"S": f"order#{order_id}"}},
                UpdateExpression="REMOVE outbox, due_at",
                ConditionExpression=f"attribute_exists(pk) AND {cond}",
                ExpressionAttributeNames={"#e": "emails", "#s": "status"},
                ExpressionAttributeValues=self._dump(values),
            )
            return True
        except ClientError:
            return False

    def find_by_message_id(self, message_id: str) -> dict[str, Any] | None:
        return self.get(f"sesmsg#{message_id}", consistent=False)

    def mark_delivered(self, message_id: str, recipient: str, when: float) -> bool:
        """SES said `message_id` was delivered: mark that email of its order `delivered`."""
        from botocore.exceptions import ClientError

        index = self.get(f"sesmsg#{message_id}")
        if index is None:
            return False
        try:
            self._call(
                "update_item",
                TableName=self.table,
                Key={"pk": {"S": f"order#{index['order_id']}"}},
                UpdateExpression="SET #e.#r.#s = :d, #e.#r.delivered_at = :w",
                ConditionExpression="#e.#r.message_id = :m",
                ExpressionAttributeNames={"#e": "emails", "#r": str(index["role"]), "#s": "status"},
                ExpressionAttributeValues=self._dump(
                    {":d": "delivered", ":w": int(when), ":m": message_id}
                ),
            )
        except ClientError:
            return False
        return True

    def outbox_due(self, now: int, limit: int = 100) -> list[str]:
        """Order ids whose emails are not all final and whose due time has passed."""
        r = self._call(
            "query",
            TableName=self.table,
            IndexName="outbox",
            KeyConditionExpression="outbox = :p AND due_at <= :now",
            ExpressionAttributeValues=self._dump({":p": "pending", ":now": now}),
            Limit=limit,
        )
        return [self._load(i)["pk"].split("#", 1)[1] for i in r.get("Items", [])]

    def claim(
        self, order_id: str, role: str, observed: dict[str, Any], now: int, lease_seconds: int
    ) -> bool:
        """Take a lease on one email, only if nobody changed it since we read `observed`.

        Two sweepers reading the same state race on this conditional update: one wins.
        """
        from botocore.exceptions import ClientError

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
        try:
            self._call(
                "update_item",
                TableName=self.table,
                Key={"pk": {"S": f"order#{order_id}"}},
                UpdateExpression="SET #e.#r.#s = :sending, #e.#r.#l = :until",
                ConditionExpression=cond,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=self._dump(values),
            )
        except ClientError:
            return False
        return True

    def scan_orders(self, limit: int = 500) -> list[dict[str, Any]]:
        """Every order (local tooling and tests only: a scan)."""
        out: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"TableName": self.table}
        while True:
            r = self._call("scan", **kwargs)
            out.extend(self._load(i) for i in r.get("Items", []))
            if "LastEvaluatedKey" not in r or len(out) >= limit:
                break
            kwargs["ExclusiveStartKey"] = r["LastEvaluatedKey"]
        return [o for o in out if o.get("kind") == "order"][:limit]


def _plain(value: Any) -> Any:
    """Decimals from DynamoDB back to int/float, recursively."""
    from decimal import Decimal

    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, set):
        return {_plain(v) for v in value}
    return value
