"""POST /orders reads nothing before it writes (issue 11: four AWS calls per order).

The create transaction checks what the order expects (rate windows as this container last saw
them, no recipient suppressed, a delivery day with room) and hands back the items where an
expectation was wrong. A second container is a fresh `Services` (`services.reset()`): its
memory is empty, as a new Lambda container's is. Calls are counted with a botocore
`before-call` hook on every client the app made (as tests/infra/test_iam_calls.py does).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib import aws as aws_mod
from chalicelib import services as services_mod
from chalicelib.ratelimit import counter_pk
from chalicelib.services import services
from devstack.siteverify import FAIL_SECRET
from tests.helpers import error_of, order_body, post_order
from tests.servers import MotoServer


class Calls:
    """Every AWS operation the app's clients send from `watch()` on."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self._events: list[Any] = []

    def _hook(self, model: Any, **_: Any) -> None:
        self.names.append(model.name)

    def watch(self) -> Calls:
        self.stop()
        self.names.clear()
        for made in aws_mod.all_clients():
            made.meta.events.register("before-call", self._hook, unique_id="expectations-calls")
            self._events.append(made.meta.events)
        return self

    def stop(self) -> None:
        for events in self._events:
            events.unregister("before-call", unique_id="expectations-calls")
        self._events.clear()


@pytest.fixture()
def calls() -> Iterator[Calls]:
    c = Calls()
    yield c
    c.stop()


def new_container() -> None:
    """What a second Lambda container is: the same stores, none of this one's memory."""
    services_mod.reset()


def rate_item(aws: MotoServer, scope: str, key: str) -> dict[str, Any]:
    r = aws.client("dynamodb").get_item(
        TableName="rate-limits", Key={"pk": {"S": counter_pk(scope, key)}}, ConsistentRead=True
    )
    return {k: int(v["N"]) for k, v in r.get("Item", {}).items() if "N" in v}


def test_an_accepted_order_makes_four_aws_calls_one_of_them_dynamodb(
    client: Any, aws: MotoServer, calls: Calls
) -> None:
    assert post_order(client, order_body(email="first@deliverable.test")).status_code == 201
    calls.watch()  # the clients exist now
    r = post_order(client, order_body(email="second@deliverable.test"), "four-calls-0001")
    assert r.status_code == 201, r.body
    assert sorted(calls.names) == ["SendEmail", "SendEmail", "TransactWriteItems", "UpdateItem"]
    assert calls.names[0] == "TransactWriteItems"  # nothing read before it


def test_a_window_another_container_filled_is_refused_by_the_transaction(
    client: Any, aws: MotoServer, calls: Calls, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RATE_LIMIT_EMAIL", "2/600")
    for _ in range(2):
        assert post_order(client, order_body()).status_code == 201
    new_container()
    post_order(client, order_body(email="warm@deliverable.test"))  # the new container's clients
    calls.watch()
    r = post_order(client, order_body())
    assert r.status_code == 429, r.body
    assert error_of(r)["code"] == "rate_limited"
    assert calls.names == ["TransactWriteItems"]  # expected room; cancelled; nothing written
    assert len(aws.orders()) == 3
    assert rate_item(aws, "email", order_body()["email"])["c"] == 2
    calls.watch()
    again = post_order(client, order_body())  # this container has seen the window full now
    assert again.status_code == 429
    assert calls.names == []


def test_a_window_that_moved_elsewhere_costs_one_more_transaction_not_an_overcount(
    client: Any, aws: MotoServer, calls: Calls, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RATE_LIMIT_EMAIL", "3/600")
    assert post_order(client, order_body()).status_code == 201
    new_container()
    post_order(client, order_body(email="warm@deliverable.test"))
    calls.watch()
    r = post_order(client, order_body())
    assert r.status_code == 201, r.body
    assert calls.names.count("TransactWriteItems") == 2  # expected absent; shown c=1; again
    assert rate_item(aws, "email", order_body()["email"])["c"] == 2
    calls.watch()
    assert post_order(client, order_body()).status_code == 201
    assert calls.names.count("TransactWriteItems") == 1  # learned: right the first time
    assert rate_item(aws, "email", order_body()["email"])["c"] == 3


def test_a_replay_on_a_container_that_never_saw_the_key_costs_one_call(
    client: Any, aws: MotoServer, calls: Calls
) -> None:
    first = post_order(client, order_body(), "other-container-01")
    assert first.status_code == 201
    new_container()
    post_order(client, order_body(email="warm@deliverable.test"))
    calls.watch()
    again = post_order(client, order_body(), "other-container-01")
    assert again.status_code == 201 and again.headers.get("Idempotent-Replayed") == "true"
    assert json.loads(again.body) == json.loads(first.body)
    assert calls.names == ["TransactWriteItems"]  # cancelled by the stored record
    assert len(aws.orders()) == 2 and len(aws.sent_mail()) == 4


def test_a_retry_whose_bot_check_now_fails_still_gets_its_stored_answer(
    client: Any, aws: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The retry lands on another container and its token no longer passes: the refusal
    first looks for the key's stored answer."""
    first = post_order(client, order_body(), "stale-token-0001")
    assert first.status_code == 201
    monkeypatch.setenv("TURNSTILE_SECRET", FAIL_SECRET)  # new settings: a new container
    assert post_order(client, order_body()).status_code == 403  # the check really fails now
    again = post_order(client, order_body(), "stale-token-0001")
    assert again.status_code == 201, again.body
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert json.loads(again.body)["order_id"] == json.loads(first.body)["order_id"]


def test_a_suppressed_merchant_address_is_found_by_the_transaction_and_the_order_stands(
    client: Any, aws: MotoServer, calls: Calls
) -> None:
    from chalicelib.suppression import SuppressionStore

    post_order(client, order_body(email="warm@deliverable.test"))
    merchant = services().settings.merchant_emails[0]
    SuppressionStore(aws.client("dynamodb"), "suppression").suppress(
        merchant, "complaint", {}, "ses-msg-expect", 1.0
    )
    calls.watch()
    r = post_order(client, order_body())
    assert r.status_code == 201, r.body
    assert calls.names.count("TransactWriteItems") == 2  # the check failed; again without it
    order = next(o for o in aws.orders() if o["order_id"] == json.loads(r.body)["order_id"])
    assert order["emails"]["merchant"]["status"] == "suppressed"
    assert order["emails"]["customer"]["status"] == "sent"
    assert merchant not in json.dumps(aws.sent_mail()[-1:])


def test_a_cached_dns_verdict_is_given_the_same_without_the_pool(
    client: Any, aws: MotoServer, dns_server: Any
) -> None:
    """The second order to a domain has its verdict cached: the check runs in the request's
    own thread (chalicelib.checkout.check_recipient) and refuses alike."""
    from chalicelib.recipients import clear_cache

    clear_cache()
    body = order_body(email="jane@nowhere-at-all.test")
    first, second = post_order(client, body), post_order(client, body)
    assert first.status_code == second.status_code == 422
    assert error_of(first)["reason"] == error_of(second)["reason"] == "no_such_domain"
    assert services().recipients.dns.cached("nowhere-at-all.test")
    ok = post_order(client, order_body())
    again = post_order(client, order_body(email="other@deliverable.test"))
    assert ok.status_code == again.status_code == 201
    assert aws.orders() and len(aws.orders()) == 2


def test_a_day_filled_elsewhere_costs_one_more_transaction_and_no_read(
    client: Any, aws: MotoServer, calls: Calls, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    """The earliest day is full (another container's orders): the cancelled transaction says
    so, and the order tries the next day straight away; the counts are not read."""
    shop = tmp_path / "shop.json"
    every_day = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
    shop.write_text(json.dumps({"delivery": {"weekdays": every_day, "capacity_per_day": 2}}))
    monkeypatch.setenv("SHOP_PROFILE", str(shop))
    monkeypatch.setenv("SLOTS_CACHE_SECONDS", "30")  # a full day is remembered (the default)
    post_order(client, order_body(email="warm@deliverable.test"))  # takes one of the first day
    offered = [d["date"] for d in json.loads(client.http.get("/catalog").body)["delivery_days"]]
    ddb = aws.client("dynamodb")
    ddb.put_item(TableName="orders", Item={"pk": {"S": f"slot#{offered[0]}"}, "n": {"N": "2"}})
    calls.watch()
    r = post_order(client, order_body())
    assert r.status_code == 201, r.body
    assert json.loads(r.body)["delivery_day"] == offered[1]
    assert calls.names.count("TransactWriteItems") == 2 and "BatchGetItem" not in calls.names
    calls.watch()
    assert json.loads(post_order(client, order_body()).body)["delivery_day"] == offered[1]
    assert calls.names.count("TransactWriteItems") == 1  # seen full: not tried again


def test_turnstile_runs_in_the_request_thread_only_when_no_dns_query_runs_beside_it(
    client: Any, aws: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A domain new to the container: siteverify in the pool, beside the DNS check. Its
    verdict cached: both in the request's thread (no hand-off). The real verify runs."""
    import threading

    from chalicelib.recipients import clear_cache

    clear_cache()
    post_order(client, order_body(email="warm@deliverable.test"))  # the adapters exist now
    clear_cache()
    turnstile = services().turnstile
    real, threads = turnstile.verify, []

    def spy(*args: Any) -> None:
        threads.append(threading.current_thread() is threading.main_thread())
        real(*args)

    monkeypatch.setattr(turnstile, "verify", spy)
    first = post_order(client, order_body(email="one@deliverable.test"))
    second = post_order(client, order_body(email="two@deliverable.test"))
    assert first.status_code == second.status_code == 201, (first.body, second.body)
    assert threads == [False, True]
    monkeypatch.setenv("TURNSTILE_SECRET", FAIL_SECRET)  # a new container, a failing check
    post_order(client, order_body(email="three@deliverable.test"))
    refused = post_order(client, order_body(email="four@deliverable.test"))  # cached: here
    assert refused.status_code == 403 and error_of(refused)["code"] == "bot_check_failed"
