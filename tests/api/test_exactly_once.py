"""Exactly-once order creation when a write's answer is lost (issue 11).

A proxy between the app and the real moto server lets DynamoDB apply the create
transaction, then holds its answer past the client's read timeout; botocore retries the
call. Whatever the retry sees, the result must be one order, one alert, one receipt - with
and without an Idempotency-Key.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

from tests.helpers import order_body, post_order
from tests.servers import LostResponseProxy, MotoServer, app_behind


@pytest.fixture()
def lossy(aws: MotoServer, guard_env: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("DDB_READ_TIMEOUT", "1")
    with (
        LostResponseProxy(aws.url, "TransactWriteItems", hold_seconds=2.5) as proxy,
        app_behind(proxy, monkeypatch),
    ):
        yield proxy


def orders_in(aws: MotoServer) -> list[dict[str, Any]]:
    from chalicelib.store import OrderStore

    return OrderStore(aws.client("dynamodb"), "orders").scan_orders()


@pytest.mark.parametrize("key", [None, "lost-answer-0001"], ids=["no-key", "with-key"])
def test_a_lost_create_answer_gives_one_order_and_two_emails(
    client: Any, aws: MotoServer, lossy: LostResponseProxy, key: str | None
) -> None:
    r = post_order(client, order_body(), key)
    assert r.status_code == 201, r.body
    assert lossy.lost == 1  # the fault really happened ...
    creates = [t for t in lossy.seen if t.endswith(".TransactWriteItems")]
    assert len(creates) >= 2  # ... and the create was retried
    stored = orders_in(aws)
    assert [o["order_id"] for o in stored] == [json.loads(r.body)["order_id"]]
    mail = Counter(m["subject"].split()[0] for m in aws.sent_mail())
    assert mail == Counter({"New": 1, "Your": 1}), aws.sent_mail()
    assert {e["status"] for e in stored[0]["emails"].values()} == {"sent"}
