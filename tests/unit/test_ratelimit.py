"""RateLimiter against the real moto server (DynamoDB over HTTP), table "rate-limits"."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from chalicelib.ratelimit import RateLimited, RateLimiter, counter_pk, hashed_key

TABLE = "rate-limits"
EMAIL = "jane.doe@deliverable.test"
IP = "203.0.113.9"


def items(ddb: Any) -> list[dict[str, Any]]:
    return ddb.scan(TableName=TABLE)["Items"]


def test_under_the_limit_passes_and_stores_no_address(ddb: Any) -> None:
    rl = RateLimiter(ddb, TABLE)
    for _ in range(3):
        rl.hit([("email", EMAIL, 3, 600)], now=1000.0)
    stored = items(ddb)
    assert len(stored) == 1
    item = stored[0]
    assert item["pk"]["S"] == f"rl#email#{hashed_key(EMAIL)}#600"
    assert item["n"]["N"] == "3"
    assert item["expires_at"]["N"] == str(1200 + 60)
    assert "jane" not in str(stored) and "deliverable" not in str(stored)


def test_over_the_limit_raises_with_seconds_until_the_window_ends(ddb: Any) -> None:
    rl = RateLimiter(ddb, TABLE)
    for _ in range(3):
        rl.hit([("email", EMAIL, 3, 600)], now=1000.5)
    with pytest.raises(RateLimited) as e:
        rl.hit([("email", EMAIL, 3, 600)], now=1000.5)
    assert e.value.scope == "email"
    assert e.value.retry_after == 200  # window 600..1200, ceil(1200 - 1000.5)
    assert items(ddb)[0]["n"]["N"] == "3"  # the refused hit was not counted
    with pytest.raises(RateLimited) as e:
        rl.hit([("email", EMAIL, 3, 600)], now=1199.9)
    assert e.value.retry_after == 1  # never 0


def test_window_rollover_starts_a_fresh_count(ddb: Any) -> None:
    rl = RateLimiter(ddb, TABLE)
    rl.hit([("ip", IP, 1, 60)], now=119.0)
    with pytest.raises(RateLimited):
        rl.hit([("ip", IP, 1, 60)], now=119.9)
    rl.hit([("ip", IP, 1, 60)], now=120.0)  # next window
    pks = sorted(i["pk"]["S"] for i in items(ddb))
    assert pks == sorted([counter_pk("ip", IP, 60, 119)[0], counter_pk("ip", IP, 60, 120)[0]])


def test_scopes_and_keys_are_independent(ddb: Any) -> None:
    rl = RateLimiter(ddb, TABLE)
    rl.hit([("ip", IP, 2, 600), ("email", EMAIL, 1, 600)], now=50.0)
    # same email again: the email scope is exhausted, the ip scope is not
    with pytest.raises(RateLimited) as e:
        rl.hit([("ip", IP, 2, 600), ("email", EMAIL, 1, 600)], now=51.0)
    assert e.value.scope == "email"
    # the same string under another scope is another counter
    rl.hit([("ip", EMAIL, 1, 600)], now=52.0)
    # a different address from the same ip: now the ip (hit twice already) is the first exceeded
    with pytest.raises(RateLimited) as e:
        rl.hit([("ip", IP, 2, 600), ("email", "other@deliverable.test", 1, 600)], now=53.0)
    assert e.value.scope == "ip"
    assert e.value.retry_after == 547
    other = counter_pk("email", "other@deliverable.test", 600, 53.0)[0]
    assert other not in {i["pk"]["S"] for i in items(ddb)}  # never reached


def test_other_dynamodb_errors_propagate(ddb: Any) -> None:
    rl = RateLimiter(ddb, "no-such-table")
    with pytest.raises(ClientError) as e:
        rl.hit([("ip", IP, 5, 600)], now=1.0)
    assert not isinstance(e.value, RateLimited)
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"
