"""A sweeper's lease runs from when it is taken, not from the start of its pass.

Under load (found by the fault-injection run on a busy machine) one sweep pass lasted longer
than the 30 s lease: leases taken late in the pass were already expired, so a second sweeper
claimed and sent the same email again. Only the clock is mocked; the claim's UpdateItem is
observed with a botocore before-parameter-build hook.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any
from unittest import mock

import pytest

from chalicelib import checkout, clock
from chalicelib.outbox import sweep
from chalicelib.services import services
from tests.helpers import order_body


class Fail:
    """Throttle every SendEmail (no send reaches moto) while active."""

    def __init__(self) -> None:
        self.on = True

    def __call__(self, request: Any, **_: Any) -> Any:
        if not self.on:
            return None
        from botocore.awsrequest import AWSResponse

        class Raw:
            def stream(self, **_: Any) -> Any:
                yield b'{"message": "Maximum sending rate exceeded."}'

        headers = {"x-amzn-ErrorType": "TooManyRequestsException"}
        return AWSResponse(request.url, 429, headers, Raw())


@pytest.fixture()
def env(aws: Any, guard_env: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("OUTBOX_GRACE_SECONDS", "0")
    monkeypatch.setenv("OUTBOX_BACKOFF_BASE_SECONDS", "0")
    monkeypatch.setenv("OUTBOX_LEASE_SECONDS", "30")
    return aws


def test_a_lease_taken_late_in_a_slow_pass_still_lasts(env: Any) -> None:
    svc = services()
    ses = svc.mailer.ses
    fail = Fail()
    ses.meta.events.register("before-send.sesv2.SendEmail", fail, unique_id="perf-fail")
    try:
        raw = json.dumps(order_body()).encode()
        result = checkout.place_order(
            checkout.IncomingOrder(raw, "application/json", None, "127.0.0.1")
        )
        assert result.status == 201
    finally:
        fail.on = False
    leases: list[int] = []

    def seen(params: dict[str, Any], model: Any, **_: Any) -> None:  # the API params
        if model.name == "UpdateItem" and ":until" in params.get("ExpressionAttributeValues", {}):
            leases.append(int(params["ExpressionAttributeValues"][":until"]["N"]))

    svc.dynamodb.meta.events.register(
        "before-parameter-build.dynamodb.UpdateItem", seen, unique_id="perf-lease"
    )
    start = datetime.now(timezone.utc) + timedelta(seconds=61)  # past the request lease
    calls = iter([start])  # the pass starts at `start`; every later reading is 100 s on

    def now() -> datetime:
        return next(calls, start + timedelta(seconds=100))

    try:
        with mock.patch.object(clock, "now", now):
            sweep(svc)
    finally:
        svc.dynamodb.meta.events.unregister(
            "before-parameter-build.dynamodb.UpdateItem", unique_id="perf-lease"
        )
        ses.meta.events.unregister("before-send.sesv2.SendEmail", unique_id="perf-fail")
    assert leases, "the sweeper claimed nothing"
    late = int((start + timedelta(seconds=100)).timestamp())
    assert all(lease >= late + 30 for lease in leases), (leases, late)
