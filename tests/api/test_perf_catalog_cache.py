"""GET /catalog reuses the delivery days' slot counts for `SLOTS_CACHE_SECONDS` (issue 11).

Counted with a botocore `before-call` hook on the app's DynamoDB client (as
tests/infra/test_iam_calls.py does); only the clock is mocked.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from unittest import mock

import pytest

from chalicelib import slots
from chalicelib.services import services


class Clock:
    def __init__(self) -> None:
        self.t = time.time()

    def __call__(self) -> datetime:
        return datetime.fromtimestamp(self.t, UTC)


@pytest.fixture()
def clock() -> Iterator[Clock]:
    c = Clock()
    slots.clear_cache()
    with mock.patch("chalicelib.clock.now", c):
        yield c
    slots.clear_cache()


def reads(calls: list[str]) -> int:
    return calls.count("BatchGetItem")


@pytest.fixture()
def calls(client: Any) -> Iterator[list[str]]:
    seen: list[str] = []

    def hook(model: Any, **_: Any) -> None:
        seen.append(model.name)

    events = services().dynamodb.meta.events
    events.register("before-call.dynamodb", hook, unique_id="perf-catalog-calls")
    yield seen
    events.unregister("before-call.dynamodb", unique_id="perf-catalog-calls")


def catalog_days(client: Any) -> list[dict[str, Any]]:
    r = client.http.get("/catalog")
    assert r.status_code == 200
    return list(json.loads(r.body)["delivery_days"])


def test_catalog_reads_the_counts_once_within_the_ttl(
    client: Any, calls: list[str], clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLOTS_CACHE_SECONDS", "30")
    first = catalog_days(client)
    assert reads(calls) == 1
    clock.t += 29
    assert catalog_days(client) == first
    assert reads(calls) == 1  # still within 30 s: no DynamoDB call
    clock.t += 2
    assert catalog_days(client) == first
    assert reads(calls) == 2  # expired: read again


def test_a_stale_available_day_is_still_refused_by_the_order(
    client: Any, calls: list[str], clock: Clock, monkeypatch: pytest.MonkeyPatch, ddb: Any
) -> None:
    """The cache only delays the catalog's view; the order's own transaction decides."""
    from tests.helpers import error_of, order_body, post_order

    monkeypatch.setenv("SLOTS_CACHE_SECONDS", "30")
    monkeypatch.setenv("RATE_LIMIT_EMAIL", "1000/600")
    monkeypatch.setenv("RATE_LIMIT_IP", "1000/600")
    from chalicelib.shop import load_shop

    cap = load_shop().delivery_rules().capacity_per_day
    day = catalog_days(client)[0]["date"]
    ddb.put_item(
        TableName="orders",
        Item={"pk": {"S": f"slot#{day}"}, "n": {"N": str(cap)}, "day": {"S": day}},
    )
    assert catalog_days(client)[0] == {"date": day, "available": True}  # cached, stale
    r = post_order(client, order_body(delivery_day=day))
    assert r.status_code == 422 and error_of(r)["reason"] == "full"


def test_no_cache_when_the_ttl_is_zero(
    client: Any, calls: list[str], clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLOTS_CACHE_SECONDS", "0")
    catalog_days(client)
    catalog_days(client)
    assert reads(calls) == 2
