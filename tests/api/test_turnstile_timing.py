"""When Turnstile starts (issue 11, latency): at once for a key this container hasn't seen
(nothing is read before the create transaction), after the read of its idempotency record
for a key seen lately (most likely a retry, so most likely a replay).

A proxy in front of the real moto server holds the GetItem's answer until the real
siteverify server has received a request (or gives up): `released` says which happened.
Order of events, not a stopwatch.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chalicelib import services as services_mod
from devstack.siteverify import FAIL_SECRET
from tests.helpers import error_of, order_body, post_order
from tests.servers import LostResponseProxy, MotoServer, app_behind


@pytest.fixture()
def held_read(
    aws: MotoServer, guard_env: Any, siteverify: Any, monkeypatch: pytest.MonkeyPatch
) -> Iterator[LostResponseProxy]:
    """The first GetItem's answer waits until siteverify has been asked (at most 1.5 s, well
    inside the client's read timeout). Set `proxy.lost = 0` to hold the next one."""
    with (
        LostResponseProxy(
            aws.url,
            "GetItem",
            hold_seconds=1.5,
            release_when=lambda: len(siteverify.requests()) > 0,
        ) as proxy,
        app_behind(proxy, monkeypatch),
    ):
        yield proxy


def orders_in(aws: MotoServer) -> list[dict[str, Any]]:
    return aws.orders()


def bot_failure_counters(aws: MotoServer) -> list[dict[str, Any]]:
    items = aws.client("dynamodb").scan(TableName="rate-limits")["Items"]
    return [i for i in items if i["pk"]["S"].startswith("rl#botfail_ip#")]


@pytest.mark.parametrize("key", [None, "timing-new-key-0001"], ids=["no-key", "new-key"])
def test_a_new_key_reads_nothing_and_writes_only_after_turnstile_answered(
    client: Any, held_read: LostResponseProxy, siteverify: Any, key: str | None
) -> None:
    r = post_order(client, order_body(), key)
    assert r.status_code == 201, r.body
    dynamodb = [t.rpartition(".")[2] for t in held_read.seen if t.startswith("DynamoDB")]
    assert dynamodb == ["TransactWriteItems", "UpdateItem"]  # no read at all
    assert held_read.lost == 0
    assert len(siteverify.requests()) == 1


def test_a_key_seen_here_lately_is_read_first_and_its_replay_asks_nobody(
    client: Any, held_read: LostResponseProxy, siteverify: Any
) -> None:
    first = post_order(client, order_body(), "timing-retry-0001")
    assert first.status_code == 201, first.body
    assert held_read.lost == 0  # a new key: nothing read
    held_read.release_when = lambda: len(siteverify.requests()) > 1
    again = post_order(client, order_body(), "timing-retry-0001")
    assert again.status_code == 201 and json.loads(again.body) == json.loads(first.body)
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert held_read.released == [False]  # no siteverify call during the retry's read
    assert len(siteverify.requests()) == 1  # nor after it: the replay spent nothing


def turnstile_lines(out: str) -> list[dict[str, Any]]:
    lines = [json.loads(x) for x in out.splitlines() if x.startswith("{")]
    return [x for x in lines if x.get("event") == "turnstile"]


def test_a_replay_on_a_container_that_never_saw_the_key_ignores_turnstile(
    client: Any, aws: MotoServer, siteverify: Any, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    """The retry lands on another container: Turnstile starts at once (and this time refuses
    the token, slowly); before refusing, the key's record is read and the stored order is the
    answer; the refusal is neither answered nor counted, and it is over before the answer
    goes out (nothing of a request runs on after it)."""
    first = post_order(client, order_body(), "timing-other-0001")
    assert first.status_code == 201, first.body
    services_mod.reset()  # a fresh container: nothing remembered
    monkeypatch.setenv("TURNSTILE_SECRET", FAIL_SECRET)
    siteverify.control(delay_ms=400)
    capsys.readouterr()
    again = post_order(client, order_body(), "timing-other-0001")
    out = capsys.readouterr().out
    assert again.status_code == 201 and json.loads(again.body) == json.loads(first.body)
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert len(siteverify.requests()) == 2  # asked, answer unused ...
    assert [x["outcome"] for x in turnstile_lines(out)] == ["fail"]  # ... and already over
    assert '"event":"order_rejected"' not in out  # no refusal was given (nor logged)
    assert bot_failure_counters(aws) == []
    assert len(orders_in(aws)) == 1


def test_an_ip_over_its_bot_failure_limit_waits_for_its_started_check(
    client: Any, aws: MotoServer, siteverify: Any, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.setenv("RATE_LIMIT_BOT_IP", "1/600")
    monkeypatch.setenv("TURNSTILE_SECRET", FAIL_SECRET)
    assert post_order(client, order_body(), "timing-bot-0001").status_code == 403
    siteverify.control(delay_ms=400)
    capsys.readouterr()
    r = post_order(client, order_body(), "timing-bot-0002")
    out = capsys.readouterr().out
    assert r.status_code == 429 and error_of(r)["code"] == "rate_limited"
    assert len(siteverify.requests()) == 2
    assert [x["outcome"] for x in turnstile_lines(out)] == ["fail"]  # over before the 429
    assert len(bot_failure_counters(aws)) == 1


def test_a_full_day_is_found_by_the_transaction_after_turnstile(
    client: Any,
    aws: MotoServer,
    siteverify: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: Any,
) -> None:
    """Nothing is read first: the day's slot is taken (or found full) by the create
    transaction, after the bot check passed; a failing one is answered first (403)."""
    profile = tmp_path / "shop.json"
    profile.write_text(json.dumps({"delivery": {"capacity_per_day": 1}}))
    monkeypatch.setenv("SHOP_PROFILE", str(profile))
    day = json.loads(client.http.get("/catalog").body)["delivery_days"][0]["date"]
    assert post_order(client, order_body(delivery_day=day), "timing-day-0001").status_code == 201
    capsys.readouterr()
    late = order_body(email="late@deliverable.test", delivery_day=day)
    r = post_order(client, late, "timing-day-0002")
    assert [x["outcome"] for x in turnstile_lines(capsys.readouterr().out)] == ["pass"]
    err = error_of(r)
    assert r.status_code == 422 and err["code"] == "delivery_day_unavailable"
    assert day not in err["next_available"] and err["next_available"]
    monkeypatch.setenv("TURNSTILE_SECRET", FAIL_SECRET)
    bot = post_order(client, late, "timing-day-0003")
    assert bot.status_code == 403 and error_of(bot)["code"] == "bot_check_failed"
    assert len(orders_in(aws)) == 1


def test_a_refusal_before_the_recipient_verdict_still_waits_for_the_dns_check(
    client: Any, dns_server: Any, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    """A 403 from Turnstile is answered before the recipient's verdict is read; the DNS
    check (slow here) is over by then all the same: its log line is this request's."""
    monkeypatch.setenv("TURNSTILE_SECRET", FAIL_SECRET)
    dns_server.delay_ms = 400
    capsys.readouterr()
    r = post_order(client, order_body(email="slow@deliverable.test"), "timing-dns-0001")
    out = capsys.readouterr().out
    assert r.status_code == 403 and error_of(r)["code"] == "bot_check_failed"
    events = [json.loads(x).get("event") for x in out.splitlines() if x.startswith("{")]
    assert "recipient_check" in events and "turnstile" in events
