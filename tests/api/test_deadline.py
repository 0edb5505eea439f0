"""A request answers within its budget (issue 16, row 8): a slow SES send does not hold the
shopper past the deadline; the order is stored, the answer is 201, and the send is recorded
when it finishes - nothing lost, nothing sent twice."""

from __future__ import annotations

import json
import re
import threading
import time
from datetime import datetime, timedelta, timezone
from typing import Any
from unittest import mock

import pytest

from chalicelib.outbox import sweep
from chalicelib.services import services
from tests.helpers import order_body, post_order


def test_a_slow_send_is_finished_after_the_answer_not_before(
    client: Any, aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REQUEST_BUDGET_SECONDS", "3")
    released = threading.Event()

    def slow_receipt(request: Any, **_: Any) -> None:  # injected fault: SES answers late
        if re.search(rb'"ToAddresses":\s*\["shopper@', request.body or b""):
            released.wait(10)

    post_order(client, order_body(email="warm@deliverable.test"))  # clients, imports
    ses = services().mailer.ses
    ses.meta.events.register("before-send.sesv2.SendEmail", slow_receipt, "slow")
    try:
        r = post_order(client, order_body())
        assert r.status_code == 201  # answered while the receipt is still on its way
        oid = json.loads(r.body)["order_id"]
        order = services().store.get_order(oid)
        assert order is not None
        assert order["emails"]["merchant"]["status"] == "sent"
        assert order["emails"]["customer"]["status"] == "sending"  # under its lease
        released.set()
        for _ in range(100):  # the late send records itself when it finishes
            order = services().store.get_order(oid)
            if order and order["emails"]["customer"]["status"] == "sent":
                break
            time.sleep(0.05)
    finally:
        released.set()
        ses.meta.events.unregister("before-send.sesv2.SendEmail", unique_id="slow")
    assert order is not None and order["emails"]["customer"]["status"] == "sent"
    later = datetime.now(timezone.utc) + timedelta(seconds=3600)
    with mock.patch("chalicelib.clock.now", return_value=later):
        assert sweep(services())["claimed"] == 0  # recorded: not sent again
    receipts = [
        m
        for m in aws.sent_mail()
        if m["destinations"]["ToAddresses"] == ["shopper@deliverable.test"]
    ]
    assert len(receipts) == 1
