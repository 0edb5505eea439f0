"""DynamoDB plumbing shared by every store: one codec, one error mapping, one batch read.

* `dump` / `load`: DynamoDB's wire form (the common types directly, the rest by boto3's
  TypeSerializer) / boto3's TypeDeserializer; numbers come back as int (or float) instead
  of Decimal.
* `call`: runs one client operation; a condition failure or a cancelled transaction is
  re-raised as it is (the caller decides what it means), every other AWS or network error
  becomes `StoreUnavailable` (the API answers 503).
* `is_condition_failure`, `condition_failure_item`, `cancellation_reasons`: the one way to
  read those two errors (and the item a failed condition saw).
* `batch_get`: one BatchGetItem over several tables (strongly consistent), unprocessed keys
  retried.
"""

from __future__ import annotations

import time
from decimal import Decimal
from functools import cache
from typing import Any

CONDITION_FAILED = "ConditionalCheckFailedException"
TRANSACTION_CANCELLED = "TransactionCanceledException"
BATCH_GET_LIMIT = 100


class StoreUnavailable(Exception):
    """DynamoDB could not be reached or refused the call (maps to 503)."""


@cache
def _codec() -> tuple[Any, Any]:
    from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

    return TypeSerializer(), TypeDeserializer()


_MAX_N = 10**38  # DynamoDB numbers: 38 significant digits


def value(v: Any) -> dict[str, Any]:
    """One attribute value in DynamoDB's wire form: str, bool, int, None, dict, list and
    tuple directly (what orders, counters and records are made of: ~4x cheaper than boto3's
    TypeSerializer, which checks every type in turn); anything else (Decimal, bytes, sets,
    a float or a number DynamoDB can't hold, which it refuses) by TypeSerializer."""
    t = type(v)
    if t is str:
        return {"S": v}
    if t is bool:
        return {"BOOL": v}
    if t is int and -_MAX_N < v < _MAX_N:
        return {"N": str(v)}
    if v is None:
        return {"NULL": True}
    if t is dict:
        return {"M": {k: value(x) for k, x in v.items()}}
    if t is list or t is tuple:
        return {"L": [value(x) for x in v]}
    return dict(_codec()[0].serialize(v))


def dump(item: dict[str, Any]) -> dict[str, Any]:
    return {k: value(v) for k, v in item.items()}


def load(raw: dict[str, Any]) -> dict[str, Any]:
    de = _codec()[1]
    return {k: plain(de.deserialize(v)) for k, v in raw.items()}


def plain(v: Any) -> Any:
    """Decimals back to int/float, recursively (sets become sorted lists)."""
    if isinstance(v, Decimal):
        return int(v) if v == v.to_integral_value() else float(v)
    if isinstance(v, dict):
        return {k: plain(x) for k, x in v.items()}
    if isinstance(v, list):
        return [plain(x) for x in v]
    if isinstance(v, (set, frozenset)):
        return sorted(plain(x) for x in v)
    return v


def error_code(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return ""
    return str(response.get("Error", {}).get("Code", ""))


def is_condition_failure(exc: BaseException) -> bool:
    return error_code(exc) == CONDITION_FAILED


def condition_failure_item(exc: BaseException) -> dict[str, Any] | None:
    """The item a failed condition was evaluated on (requested with
    `ReturnValuesOnConditionCheckFailure=ALL_OLD`), decoded; None when it doesn't exist."""
    response = getattr(exc, "response", None)
    raw = response.get("Item") if isinstance(response, dict) else None
    return load(raw) if raw else None


def update_if(client: Any, **kwargs: Any) -> bool:
    """A conditional UpdateItem: True when applied, False when its condition failed."""
    try:
        call(client, "update_item", **kwargs)
    except Exception as e:
        if is_condition_failure(e):
            return False
        raise
    return True


def cancellation_reasons(exc: BaseException) -> list[dict[str, Any]]:
    """For a cancelled transaction: one {"Code", "Item"?} per transact item, in order
    ("None" where that item was fine). Empty for any other error."""
    if error_code(exc) != TRANSACTION_CANCELLED:
        return []
    response = getattr(exc, "response", {}) or {}
    return list(response.get("CancellationReasons") or [])


def call(client: Any, operation: str, **kwargs: Any) -> Any:
    """`client.<operation>(**kwargs)` with AWS errors mapped (see the module docstring)."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return getattr(client, operation)(**kwargs)
    except ClientError as e:
        code = error_code(e)
        if code in (CONDITION_FAILED, TRANSACTION_CANCELLED):
            raise
        raise StoreUnavailable(f"{operation}: {code}") from e
    except BotoCoreError as e:
        raise StoreUnavailable(f"{operation}: {type(e).__name__}") from e


def batch_get(
    client: Any, keys: dict[str, list[str]], attempts: int = 4
) -> dict[tuple[str, str], dict[str, Any]]:
    """Items by (table, pk) for the given `pk` values per table, in one BatchGetItem (more
    only for unprocessed keys). Missing items are simply absent from the result."""
    wanted = {t: sorted(set(pks)) for t, pks in keys.items() if pks}
    if sum(len(p) for p in wanted.values()) > BATCH_GET_LIMIT:
        raise ValueError("too many keys for one BatchGetItem")
    request = {
        t: {"Keys": [{"pk": {"S": pk}} for pk in pks], "ConsistentRead": True}
        for t, pks in wanted.items()
    }
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for attempt in range(attempts):
        if not request:
            break
        r = call(client, "batch_get_item", RequestItems=request)
        for table, items in (r.get("Responses") or {}).items():
            for raw in items:
                item = load(raw)
                found[(table, str(item["pk"]))] = item
        request = r.get("UnprocessedKeys") or {}
        if request:
            time.sleep(min(0.02 * (2**attempt), 0.2))
    if request:
        raise StoreUnavailable("batch_get_item: unprocessed keys after retries")
    return found
