"""Outbox sweeper and the SES feedback loop, end to end against the real moto server.

Faults are injected at the boto3 boundary with botocore event hooks on the app's own SES
client; the clock is patched only to move time forward.
"""

from __future__ import annotations

import json
import random
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from typing import Any
from unittest import mock

import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ConnectTimeoutError, ReadTimeoutError

from chalicelib import checkout, clock, ids
from chalicelib.outbox import sweep
from chalicelib.services import services
from chalicelib.store import ROLES
from tests.helpers import CUSTOMER_EMAIL, error_of, order_body, post_order
from tests.plugins.feedback import (
    bounce_message,
    complaint_message,
    email_tags,
    load_ses_event,
    ses_event,
)

MERCHANT = "merchant@juice.example.com"


@pytest.fixture()
def outbox_env(aws: Any, guard_env: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Any:
    """Sweeper settings that make failed emails due at once; limits and delivery-day
    capacity out of the way (the fault run places 200 orders)."""
    profile = tmp_path / "roomy-shop.json"
    profile.write_text(json.dumps({"delivery": {"capacity_per_day": 100000}}))
    monkeypatch.setenv("SHOP_PROFILE", str(profile))
    monkeypatch.setenv("OUTBOX_GRACE_SECONDS", "0")
    monkeypatch.setenv("OUTBOX_BACKOFF_BASE_SECONDS", "0")
    monkeypatch.setenv("OUTBOX_LEASE_SECONDS", "30")
    monkeypatch.setenv("RATE_LIMIT_EMAIL", "100000/600")
    monkeypatch.setenv("RATE_LIMIT_IP", "100000/600")
    return aws


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Any:
        yield self.body


def throttled(request: Any, **_: Any) -> AWSResponse:
    body = json.dumps({"message": "Maximum sending rate exceeded."}).encode()
    headers = {"x-amzn-ErrorType": "TooManyRequestsException", "Content-Type": "application/json"}
    return AWSResponse(request.url, 429, headers, _Raw(body))


def server_error(request: Any, **_: Any) -> AWSResponse:
    return AWSResponse(request.url, 500, {"Content-Type": "application/json"}, _Raw(b"{}"))


class Faults:
    """Fail SES SendEmail calls before they reach moto (so moto records only real sends)."""

    def __init__(self, rate: float, seed: int = 7) -> None:
        self.rate = rate
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.injected: Counter[str] = Counter()

    def __call__(self, request: Any, **kwargs: Any) -> Any:
        with self.lock:
            if self.rng.random() >= self.rate:
                return None
            kind = self.rng.choice(["throttle", "5xx", "connect_timeout", "read_timeout"])
            self.injected[kind] += 1
        if kind == "throttle":
            return throttled(request)
        if kind == "5xx":
            return server_error(request)
        if kind == "connect_timeout":
            raise ConnectTimeoutError(endpoint_url=request.url)
        raise ReadTimeoutError(endpoint_url=request.url)


def ses_client() -> Any:
    return services().mailer.ses


def mail_by_order(aws: Any) -> dict[str, Counter[str]]:
    out: dict[str, Counter[str]] = {}
    for m in aws.sent_mail():
        oid = m["subject"].rsplit(" ", 1)[-1]
        role = "merchant" if m["destinations"]["ToAddresses"] == [MERCHANT] else "customer"
        out.setdefault(oid, Counter())[role] += 1
    return out


def place(body: dict[str, Any], key: str | None = None) -> checkout.Result:
    raw = json.dumps(body).encode()
    return checkout.place_order(checkout.IncomingOrder(raw, "application/json", key, "127.0.0.1"))


def later(seconds: int) -> Any:
    target = datetime.now(timezone.utc) + timedelta(seconds=seconds)
    return mock.patch("chalicelib.clock.now", return_value=target)


def test_crash_between_persist_and_send_is_sent_by_sweeper(outbox_env: Any) -> None:
    svc = services()
    req_body = order_body()
    from chalicelib.catalog import load_catalog
    from chalicelib.orders import parse_order, request_hash

    req = parse_order(req_body, load_catalog(), test_environment=True)
    now = int(clock.now().timestamp())
    outcome = svc.store.create(
        checkout.order_builder(req, None, request_hash(req_body), now, [], 30),
        ids.new_order_id,
        None,
        now,
        checkout.response_body,
    )
    oid = outcome.order["order_id"]  # type: ignore[index]
    # the process "died" here: nothing sent, both emails leased as `sending`
    assert sweep(svc)["claimed"] == 0  # the lease still holds: nobody else may send
    assert outbox_env.sent_mail() == []
    with later(31):
        counts = sweep(svc)
    assert counts["sent"] == 2
    assert mail_by_order(outbox_env)[oid] == Counter({"merchant": 1, "customer": 1})
    order = svc.store.get_order(oid)
    assert order is not None and "outbox" not in order
    assert {order["emails"][r]["status"] for r in ROLES} == {"sent"}
    with later(120):
        assert sweep(svc)["claimed"] == 0  # nothing sent twice


def test_throttled_send_is_retried_later_with_attempts_recorded(outbox_env: Any) -> None:
    client = ses_client()
    client.meta.events.register("before-send.sesv2.SendEmail", throttled, unique_id="t")
    try:
        r = place(order_body())
    finally:
        client.meta.events.unregister("before-send.sesv2.SendEmail", unique_id="t")
    assert r.status == 201
    svc = services()
    order = svc.store.get_order(r.body["order_id"])
    assert order is not None
    for role in ROLES:
        assert order["emails"][role]["status"] == "failed"
        assert order["emails"][role]["retryable"] is True
        assert "TooManyRequestsException" in order["emails"][role]["reason"]
    assert outbox_env.sent_mail() == []
    with later(1):
        assert sweep(svc)["sent"] == 2
    order = svc.store.get_order(r.body["order_id"])
    assert order is not None
    assert [order["emails"][r]["attempts"] for r in ROLES] == [2, 2]
    assert all(order["emails"][r]["message_id"] for r in ROLES)


def test_a_slow_sweep_never_grants_a_lease_that_has_already_run_out(outbox_env: Any) -> None:
    """Found by the fault run under load: a sweep pass took its `now` once, so an email
    claimed late in a long pass got `lease_until` = start + lease, already in the past; a
    second sweeper then claimed the same email and both sent it. Here time moves 45 s (more
    than the 30 s lease) between the orders of one pass; every lease must lie ahead of the
    clock at the moment it is granted, and a second sweeper finds nothing to claim."""
    client = ses_client()
    client.meta.events.register("before-send.sesv2.SendEmail", throttled, unique_id="t")
    try:
        placed = [place(order_body(email=f"slow{i}@deliverable.test")) for i in range(3)]
    finally:
        client.meta.events.unregister("before-send.sesv2.SendEmail", unique_id="t")
    svc = services()
    start = clock.now() + timedelta(seconds=1)
    current = {"t": start}

    def now() -> datetime:
        return current["t"]

    granted: list[tuple[int, int]] = []  # (lease_until, clock at the claim)

    def on_update(params: dict[str, Any], **_: Any) -> None:
        values = params.get("ExpressionAttributeValues") or {}
        if ":until" in values and ":sending" in values:  # a claim
            granted.append((int(values[":until"]["N"]), int(current["t"].timestamp())))

    def slow_get(params: dict[str, Any], **_: Any) -> None:
        if str(params.get("Key", {}).get("pk", {}).get("S", "")).startswith("order#"):
            current["t"] += timedelta(seconds=45)  # each order of the pass: 45 s later

    ddb_client = svc.dynamodb
    ddb_client.meta.events.register(
        "before-parameter-build.dynamodb.UpdateItem", on_update, "lease"
    )
    ddb_client.meta.events.register("before-parameter-build.dynamodb.GetItem", slow_get, "slow")
    try:
        with mock.patch.object(clock, "now", now):
            assert sweep(svc)["sent"] == 6
            assert sweep(svc)["claimed"] == 0  # the next sweeper: nothing left to take
    finally:
        ddb_client.meta.events.unregister(
            "before-parameter-build.dynamodb.UpdateItem", unique_id="lease"
        )
        ddb_client.meta.events.unregister(
            "before-parameter-build.dynamodb.GetItem", unique_id="slow"
        )
    assert len(granted) == 6
    assert all(until > at for until, at in granted), granted
    mail = mail_by_order(outbox_env)
    assert all(mail[r.body["order_id"]] == Counter(merchant=1, customer=1) for r in placed)


def test_gives_up_after_max_attempts_with_metric(
    outbox_env: Any, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.setenv("OUTBOX_MAX_ATTEMPTS", "3")
    client = ses_client()
    client.meta.events.register("before-send.sesv2.SendEmail", server_error, unique_id="e")
    try:
        r = place(order_body())
        svc = services()
        for i in range(5):
            with later(10 * (i + 1)):
                sweep(svc)
    finally:
        client.meta.events.unregister("before-send.sesv2.SendEmail", unique_id="e")
    order = svc.store.get_order(r.body["order_id"])
    assert order is not None
    for role in ROLES:
        assert order["emails"][role]["status"] == "failed"
        assert order["emails"][role]["retryable"] is False
        assert order["emails"][role]["attempts"] == 3
    assert "outbox" not in order
    metrics = [json.loads(x) for x in capsys.readouterr().out.splitlines() if '"_aws"' in x]
    assert sum(1 for m in metrics if "OutboxFailedForGood" in m) == 2


def test_permanent_bounce_then_new_order_is_refused(client: Any, aws: Any) -> None:
    event = ses_event(bounce_message(CUSTOMER_EMAIL.upper()))
    summary = client.lambda_.invoke("handle_ses_feedback", event).payload
    assert summary["suppressed"] == 1
    r = post_order(client, order_body())
    assert r.status_code == 422
    err = error_of(r)
    assert err["code"] == "email_undeliverable" and err["reason"] == "suppressed"
    assert aws.sent_mail() == []
    from tests.api.test_orders import _items

    assert [i for i in _items(aws) if i["pk"]["S"].startswith("order#")] == []


def test_complaint_suppresses(client: Any, aws: Any) -> None:
    client.lambda_.invoke("handle_ses_feedback", ses_event(complaint_message(CUSTOMER_EMAIL)))
    assert error_of(post_order(client, order_body()))["reason"] == "suppressed"


def test_every_fixture_is_handled_without_raising(client: Any) -> None:
    from pathlib import Path

    fixtures = sorted((Path(__file__).resolve().parents[1] / "fixtures" / "ses").glob("*.json"))
    assert len(fixtures) >= 16
    for f in fixtures:
        payload = client.lambda_.invoke("handle_ses_feedback", load_ses_event(f.name)).payload
        assert isinstance(payload, dict) and payload.get("error", 0) == 0, (f.name, payload)


def test_merchant_suppressed_order_stands_alert_not_sent(client: Any, aws: Any) -> None:
    client.lambda_.invoke("handle_ses_feedback", ses_event(bounce_message(MERCHANT)))
    r = post_order(client, order_body())
    assert r.status_code == 201
    order = services().store.get_order(json.loads(r.body)["order_id"])
    assert order is not None
    assert order["emails"]["merchant"]["status"] == "suppressed"
    assert order["emails"]["customer"]["status"] == "sent"
    assert [m["destinations"]["ToAddresses"] for m in aws.sent_mail()] == [[CUSTOMER_EMAIL]]


def test_delivery_marks_the_email_delivered(client: Any, aws: Any) -> None:
    r = post_order(client, order_body())
    oid = json.loads(r.body)["order_id"]
    order = services().store.get_order(oid)
    assert order is not None
    msg_id = order["emails"]["customer"]["message_id"]
    delivery = load_ses_event("delivery")
    message = json.loads(delivery["Records"][0]["Sns"]["Message"])
    message["mail"]["messageId"] = msg_id
    message["mail"]["tags"] = {k: [v] for k, v in email_tags(oid, "customer").items()}
    message["delivery"]["recipients"] = [CUSTOMER_EMAIL]
    summary = client.lambda_.invoke("handle_ses_feedback", ses_event(message)).payload
    assert summary["delivery"] == 1
    order = services().store.get_order(oid)
    assert order is not None
    assert order["emails"]["customer"]["status"] == "delivered"
    assert order["emails"]["merchant"]["status"] == "sent"


def test_wrong_topic_changes_nothing(client: Any, aws: Any) -> None:
    client.lambda_.invoke("handle_ses_feedback", load_ses_event("wrong-topic"))
    assert post_order(client, order_body()).status_code == 201


def test_fault_injection_run_loses_nothing_and_sends_nothing_twice(outbox_env: Any) -> None:
    """200 orders while SES randomly throttles, fails or times out, and two sweepers race.

    At the end every order has exactly one merchant alert and one receipt in moto.
    """
    faults = Faults(rate=0.3)
    client = ses_client()
    client.meta.events.register("before-send.sesv2.SendEmail", faults, unique_id="faults")
    svc = services()
    stop = threading.Event()
    sweeps: Counter[str] = Counter()

    def sweeper() -> None:
        while not stop.is_set():
            for k, v in sweep(svc).items():
                sweeps[k] += v

    sweepers = [threading.Thread(target=sweeper) for _ in range(2)]
    for t in sweepers:
        t.start()
    try:
        with ThreadPoolExecutor(6) as pool:
            bodies = [order_body(email=f"buyer{i}@deliverable.test") for i in range(200)]
            results = list(pool.map(place, bodies))
    finally:
        client.meta.events.unregister("before-send.sesv2.SendEmail", unique_id="faults")
    # faults are over; let the two sweepers drain the outbox
    deadline = datetime.now(timezone.utc) + timedelta(seconds=60)
    while datetime.now(timezone.utc) < deadline:
        if not svc.store.outbox_due(int(clock.now().timestamp()) + 3600, 1):
            break
        threading.Event().wait(0.2)
    stop.set()
    for t in sweepers:
        t.join()

    assert sum(faults.injected.values()) > 50, faults.injected
    assert {r.status for r in results} == {201}
    order_ids = {r.body["order_id"] for r in results}
    assert len(order_ids) == 200
    mail = mail_by_order(outbox_env)
    lost = [oid for oid in order_ids if mail.get(oid, Counter()) != Counter(merchant=1, customer=1)]
    duplicates = sum(1 for c in mail.values() for n in c.values() if n > 1)
    detail = [(oid, mail.get(oid), (svc.store.get_order(oid) or {}).get("emails")) for oid in lost]
    assert lost == [] and duplicates == 0, (detail[:5], duplicates)
    assert set(mail) == order_ids
    print(f"faults injected: {dict(faults.injected)}; sweeps: {dict(sweeps)}")


def test_store_fault_after_persist_is_still_201_and_the_status_write_is_retried(
    outbox_env: Any,
) -> None:
    """Found by the load test: a DynamoDB timeout after the order was stored escaped as a 500.
    Now the order stands (201), and the one write that records both sends is retried: a
    whole botocore call (3 attempts) timing out does not lose the message ids."""
    calls = {"n": 0}

    def final_write_times_out(request: Any, **_: Any) -> None:
        if b"message_id" in (request.body or b"") and calls["n"] < 3:  # injected fault
            calls["n"] += 1
            raise ReadTimeoutError(endpoint_url=request.url)

    svc = services()
    ddb = svc.store.ddb
    ddb.meta.events.register("before-send.dynamodb.UpdateItem", final_write_times_out, "ft")
    try:
        r = place(order_body())
    finally:
        ddb.meta.events.unregister("before-send.dynamodb.UpdateItem", unique_id="ft")
    assert r.status == 201 and calls["n"] == 3
    oid = r.body["order_id"]
    assert mail_by_order(outbox_env)[oid] == Counter({"merchant": 1, "customer": 1})
    order = svc.store.get_order(oid)
    assert order is not None and "outbox" not in order
    assert {order["emails"][role]["status"] for role in ROLES} == {"sent"}
    with later(31):
        assert sweep(svc)["claimed"] == 0  # recorded: nothing is sent twice


def test_every_email_is_tagged_with_its_order_and_one_update_records_both(
    outbox_env: Any, aws: Any
) -> None:
    """The SES tags name the order and the email (feedback finds the order from them), so
    the final write is one UpdateItem: no message-id index rows, no transaction."""
    svc = services()
    ses, ddb = svc.mailer.ses, svc.store.ddb
    sent: list[dict[str, Any]] = []
    ops: list[str] = []

    def on_send(params: dict[str, Any], **_: Any) -> None:
        sent.append(params)
        ops.append("SendEmail")

    def on_ddb(model: Any, **_: Any) -> None:
        ops.append(model.name)

    ses.meta.events.register("before-parameter-build.sesv2.SendEmail", on_send, "tags-test")
    ddb.meta.events.register("before-call.dynamodb", on_ddb, "tags-test")
    try:
        r = place(order_body())
    finally:
        ses.meta.events.unregister("before-parameter-build.sesv2.SendEmail", unique_id="tags-test")
        ddb.meta.events.unregister("before-call.dynamodb", unique_id="tags-test")
    assert r.status == 201
    oid = r.body["order_id"]
    tags = sorted(tuple((t["Name"], t["Value"]) for t in p["EmailTags"]) for p in sent)
    assert tags == [
        (("order_id", oid), ("email", "customer")),
        (("order_id", oid), ("email", "merchant")),
    ]
    assert ops[ops.index("SendEmail") :] == ["SendEmail", "SendEmail", "UpdateItem"]
    assert ops.count("TransactWriteItems") == 1  # the create; the status write is not one
    items = aws.client("dynamodb").scan(TableName="orders")["Items"]
    assert not [i for i in items if i["pk"]["S"].startswith("sesmsg#")]
    order = svc.store.get_order(oid)
    assert order is not None and "outbox" not in order
    assert all(order["emails"][role]["message_id"] for role in ROLES)
