"""The suppression list: addresses we must not mail (hard bounces, complaints, soft-bounce runs).

One DynamoDB table (key `pk` (S), TTL attribute `expires_at` (N)) holds two kinds of item:

* `sup#{email}` - a suppression. Permanent ones have no `expires_at`; temporary ones do.
  A permanent suppression is never replaced by a temporary one (conditional write), and a
  temporary one never shortens a longer temporary one.
* `tb#{email}` - the soft-bounce counter: `hits` maps SES message id -> epoch seconds, pruned
  to a sliding window; the item's `expires_at` is the end of the window so TTL cleans it up.

Addresses are stored and looked up with the whole address lower-cased (`Jane.Doe@Example.COM`
and `jane.doe@example.com` are one entry). DynamoDB's TTL deletion is lazy (up to days late),
so every read honours `expires_at` itself against the caller's `now`.
The client is a boto3 low-level DynamoDB client passed in; nothing here touches AWS at import.
"""

from __future__ import annotations

import builtins
import time
from collections.abc import Iterable
from typing import Any

from chalicelib import ddb
from chalicelib.identity import canonical_or_lower, lookup_keys

SUPPRESSION_PREFIX = "sup#"
# The back office lists suppressions newest first from a sparse GSI (never a Scan): every
# suppression row carries `listed = "sup"` and its `suppressed_at`. Counter rows (`tb#`) do not.
LIST_INDEX = "recent"
LISTED = "sup"
TRANSIENT_PREFIX = "tb#"
REASONS = ("bounce", "complaint", "transient")
BATCH_LIMIT = 25  # BatchWriteItem accepts at most 25 put/delete requests per call
_MAX_HITS = 50  # cap on remembered soft-bounce message ids per address (bounds item size)
_CAS_ATTEMPTS = 5  # optimistic-lock retries for the soft-bounce counter
_BATCH_ATTEMPTS = 6  # rounds of UnprocessedItems retries before giving up


class SuppressionError(RuntimeError):
    """A write could not be completed (e.g. throttled past every retry)."""


def normalize(email: str) -> str:
    """The storage form of an address: trimmed and lower-cased as a whole."""
    return str(email).strip().lower()


def _key(email: str) -> str:
    """The pk a suppression of `email` is written under: its canonical mailbox (one identity
    per mailbox: `Jane+x@Example.com` and `jane@example.com` are one entry)."""
    if "@" not in normalize(email):
        raise ValueError("not an email address")
    return SUPPRESSION_PREFIX + canonical_or_lower(email)


def _num(value: float) -> str:
    """DynamoDB number text; whole seconds stay integers."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _from_item(item: dict[str, Any]) -> dict[str, Any]:
    return ddb.load(item)


def keys_for(email: str) -> list[str]:
    """Every pk an active suppression of `email` may be stored under: the canonical key, and
    the key rows written before canonical keys used (whole address lower-cased)."""
    if "@" not in normalize(email):
        return []
    return [SUPPRESSION_PREFIX + k for k in lookup_keys(email)] + [hashed_key(email)]


def address_hash(email: str) -> str:
    """SHA-256 of the canonical mailbox: what an erased customer's suppression keeps."""
    import hashlib

    return hashlib.sha256(canonical_or_lower(email).encode("utf-8")).hexdigest()


def hashed_key(email: str) -> str:
    """The pk of a suppression whose address was erased (issue 15): only its hash is kept,
    so the address stays unmailable without being stored."""
    return f"{SUPPRESSION_PREFIX}h:{address_hash(email)}"


def not_suppressed(table: str, pk: str, now: float) -> dict[str, Any]:
    """A ConditionCheck for TransactWriteItems: no active suppression is stored under `pk`
    (`active()`'s rule, evaluated by DynamoDB). Its failure hands back the suppression."""
    return {
        "ConditionCheck": {
            "TableName": table,
            "Key": {"pk": {"S": pk}},
            "ConditionExpression": "attribute_not_exists(pk) OR expires_at <= :now",
            "ExpressionAttributeValues": {":now": {"N": _num(now)}},
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
    }


def active(record: dict[str, Any] | None, now: float) -> dict[str, Any] | None:
    """`record` (a decoded item) if it suppresses at `now`, else None (absent or expired:
    DynamoDB's TTL deletion is lazy, up to days late)."""
    if not record:
        return None
    expires_at = record.get("expires_at")
    if expires_at is not None and float(expires_at) <= now:
        return None
    found = dict(record)
    found.pop("pk", None)
    return found


class SuppressionStore:
    """Suppression records and soft-bounce counters in one DynamoDB table."""

    def __init__(self, ddb_client: Any, table: str) -> None:
        self._ddb = ddb_client
        self._table = table

    @property
    def table(self) -> str:
        return self._table

    # -- reads -------------------------------------------------------------------------------

    def is_suppressed(self, email: str, now: float) -> dict[str, Any] | None:
        """The active suppression for `email` (any case) at `now`, or None.

        The record has `email`, `reason`, `detail`, `message_id`, `suppressed_at`,
        `permanent` and, for temporary ones, `expires_at`.
        """
        keys = keys_for(email)
        if not keys:
            return None
        if len(keys) == 1:  # one GetItem
            resp = self._ddb.get_item(
                TableName=self._table, Key={"pk": {"S": keys[0]}}, ConsistentRead=True
            )
            item = resp.get("Item")
            return active(_from_item(item), now) if item else None
        found = ddb.batch_get(self._ddb, {self._table: keys})  # canonical + legacy row
        for key in keys:
            record = active(found.get((self._table, key)), now)
            if record is not None:
                return record
        return None

    # -- writes ------------------------------------------------------------------------------

    def suppress(
        self,
        email: str,
        reason: str,
        detail: dict[str, str],
        message_id: str,
        now: float,
        expires_at: float | None = None,
    ) -> bool:
        """Suppress `email`: permanently, or until `expires_at` when given.

        Returns True when written. A temporary suppression is only written when there is no
        record, or the existing one is temporary and ends earlier: it never downgrades a
        permanent suppression (returns False then). A permanent one always wins.
        """
        if reason not in REASONS:
            raise ValueError(f"unknown suppression reason {reason!r}")
        item = self._item(email, reason, detail, message_id, now, expires_at)
        if expires_at is None:
            self._ddb.put_item(TableName=self._table, Item=item)
            return True
        try:
            self._ddb.put_item(
                TableName=self._table,
                Item=item,
                ConditionExpression=(
                    "attribute_not_exists(pk) OR "
                    "(attribute_exists(expires_at) AND expires_at < :exp)"
                ),
                ExpressionAttributeValues={":exp": {"N": _num(expires_at)}},
            )
        except Exception as exc:
            if ddb.is_condition_failure(exc):
                return False
            raise
        return True

    def suppress_many(
        self,
        entries: Iterable[tuple[str, dict[str, str]]],
        reason: str,
        message_id: str,
        now: float,
    ) -> builtins.list[str]:
        """Permanently suppress many addresses with BatchWriteItem (25 per call).

        `entries` are (email, detail) pairs; addresses are de-duplicated after lower-casing
        (BatchWriteItem rejects duplicate keys). Unprocessed items are retried with backoff.
        Unconditional puts are safe here: a permanent record can only replace a temporary one
        (an upgrade) or another permanent one. Returns the lower-cased addresses written.
        """
        if reason not in ("bounce", "complaint"):
            raise ValueError(f"not a permanent suppression reason: {reason!r}")
        items: dict[str, dict[str, Any]] = {}
        for email, detail in entries:
            key = _key(email)
            items[key] = self._item(email, reason, detail, message_id, now, None)
        pending = [{"PutRequest": {"Item": item}} for item in items.values()]
        for start in range(0, len(pending), BATCH_LIMIT):
            self._batch_write(pending[start : start + BATCH_LIMIT])
        return [k[len(SUPPRESSION_PREFIX) :] for k in items]

    def record_transient(
        self,
        email: str,
        message_id: str,
        now: float,
        limit: int,
        window_seconds: int,
        suppress_seconds: int,
        detail: dict[str, str] | None = None,
    ) -> bool:
        """Count one soft bounce; suppress temporarily once `limit` fall within the window.

        The window slides: bounces older than `now - window_seconds` no longer count, so a
        quiet period restarts the count. The same SES message id is counted once (SNS may
        redeliver). Returns True when this bounce brought the count to `limit` or more and a
        temporary suppression until `now + suppress_seconds` was written (False if a permanent
        or longer suppression already exists).
        """
        address = normalize(email)
        _key(address)  # validates
        pk = {"S": TRANSIENT_PREFIX + canonical_or_lower(address)}
        cutoff = now - window_seconds
        count = 0
        for _ in range(_CAS_ATTEMPTS):
            resp = self._ddb.get_item(TableName=self._table, Key={"pk": pk}, ConsistentRead=True)
            old = _from_item(resp["Item"]) if resp.get("Item") else None
            hits: dict[str, float] = {}
            if old:
                hits = {
                    mid: float(ts)
                    for mid, ts in (old.get("hits") or {}).items()
                    if float(ts) > cutoff
                }
            if message_id in hits:
                count = len(hits)  # redelivery: already counted
                break
            hits[message_id] = now
            newest = sorted(hits.items(), key=lambda kv: kv[1])[-_MAX_HITS:]
            hits = dict(newest)
            version = int(old.get("version", 0)) if old else 0
            item = {
                "pk": pk,
                "email": {"S": address},
                "hits": {"M": {mid: {"N": _num(ts)} for mid, ts in hits.items()}},
                "version": {"N": str(version + 1)},
                "updated_at": {"N": _num(now)},
                "expires_at": {"N": _num(max(hits.values()) + window_seconds)},
            }
            kwargs: dict[str, Any] = {"TableName": self._table, "Item": item}
            if old:
                kwargs["ConditionExpression"] = "version = :v"
                kwargs["ExpressionAttributeValues"] = {":v": {"N": str(version)}}
            else:
                kwargs["ConditionExpression"] = "attribute_not_exists(pk)"
            try:
                self._ddb.put_item(**kwargs)
            except Exception as exc:
                if ddb.is_condition_failure(exc):
                    continue  # someone else counted concurrently: re-read and retry
                raise
            count = len(hits)
            break
        else:
            raise SuppressionError("soft-bounce counter kept changing under us")
        if count < limit:
            return False
        info = {"soft_bounces": str(count), "window_seconds": str(window_seconds)}
        info.update(detail or {})
        return self.suppress(
            address, "transient", info, message_id, now, expires_at=now + suppress_seconds
        )

    # -- listing -----------------------------------------------------------------------------

    def list(self, limit: int = 200, now: float | None = None) -> builtins.list[dict[str, Any]]:
        """Up to `limit` suppression records, newest first, from the `recent` index (a Query
        on one partition, never a Scan). With `now`, expired temporary records are left out.
        Rows written before the index existed (no `listed`) still suppress but are not listed.
        """
        records: builtins.list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": LIST_INDEX,
            "KeyConditionExpression": "listed = :l",
            "ExpressionAttributeValues": {":l": {"S": LISTED}},
            "ScanIndexForward": False,
            "Limit": max(1, min(limit, 500)),
        }
        while len(records) < limit:
            resp = ddb.call(self._ddb, "query", **kwargs)
            for item in resp.get("Items", []):
                record = _from_item(item)
                record.pop("pk", None)
                record.pop("listed", None)
                exp = record.get("expires_at")
                if now is not None and exp is not None and float(exp) <= now:
                    continue
                records.append(record)
            last = resp.get("LastEvaluatedKey")
            if not last:
                break
            kwargs["ExclusiveStartKey"] = last
        return records[: max(0, limit)]

    # -- the back office (issue 15) --------------------------------------------------------

    def remove(self, email: str) -> int:
        """Take `email` off the suppression list (every key it may be stored under, and its
        soft-bounce counter). Returns how many keys were deleted (absent ones count too)."""
        keys = [*keys_for(email), TRANSIENT_PREFIX + canonical_or_lower(email)]
        self._batch_write([{"DeleteRequest": {"Key": {"pk": {"S": k}}}} for k in keys])
        return len(keys)

    def remove_hashed(self, digest: str) -> None:
        """Take an erased customer's suppression (kept as `address_hash`) off the list."""
        key = {"pk": {"S": f"{SUPPRESSION_PREFIX}h:{digest}"}}
        ddb.call(self._ddb, "delete_item", TableName=self._table, Key=key)

    def anonymise(self, email: str, now: float) -> bool:
        """Erasure: if `email` is suppressed now, keep the suppression under the hash of the
        address only (reason, since, expiry kept; no address); delete every row that names
        the address. True when a hashed row was kept."""
        record = self.is_suppressed(email, now)
        hashed = hashed_key(email)
        if record is not None:
            item: dict[str, Any] = {
                "pk": {"S": hashed},
                "email": {"S": ""},
                "email_hash": {"S": address_hash(email)},
                "reason": {"S": str(record.get("reason", ""))},
                "detail": {"M": {}},
                "message_id": {"S": ""},
                "suppressed_at": {"N": _num(float(record.get("suppressed_at", now)))},
                "permanent": {"BOOL": bool(record.get("permanent", True))},
                "listed": {"S": LISTED},
            }
            if record.get("expires_at") is not None:
                item["expires_at"] = {"N": _num(float(record["expires_at"]))}
            self._ddb.put_item(TableName=self._table, Item=item)
        plain = [k for k in keys_for(email) if k != hashed]
        plain.append(TRANSIENT_PREFIX + canonical_or_lower(email))
        self._batch_write([{"DeleteRequest": {"Key": {"pk": {"S": k}}}} for k in plain])
        return record is not None

    # -- internals ---------------------------------------------------------------------------

    def _item(
        self,
        email: str,
        reason: str,
        detail: dict[str, str],
        message_id: str,
        now: float,
        expires_at: float | None,
    ) -> dict[str, Any]:
        item: dict[str, Any] = {
            "pk": {"S": _key(email)},
            "email": {"S": normalize(email)},
            "reason": {"S": reason},
            "detail": {"M": {str(k): {"S": str(v)} for k, v in (detail or {}).items()}},
            "message_id": {"S": str(message_id or "")},
            "suppressed_at": {"N": _num(now)},
            "permanent": {"BOOL": expires_at is None},
            "listed": {"S": LISTED},
        }
        if expires_at is not None:
            item["expires_at"] = {"N": _num(expires_at)}
        return item

    def _batch_write(self, requests: builtins.list[dict[str, Any]]) -> None:
        pending = {self._table: requests}
        for attempt in range(_BATCH_ATTEMPTS):
            resp = self._ddb.batch_write_item(RequestItems=pending)
            unprocessed = resp.get("UnprocessedItems") or {}
            if not unprocessed.get(self._table):
                return
            pending = {self._table: unprocessed[self._table]}
            time.sleep(min(0.05 * (2**attempt), 1.0))
        raise SuppressionError(
            f"{len(pending[self._table])} suppression writes still unprocessed after retries"
        )
