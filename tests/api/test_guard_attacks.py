"""The attacker cases of issue 12 that live on the order path: nobody can spend another
person's allowance, and a merchant address is never silently suppressed."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib.suppression import SuppressionStore
from devstack.siteverify import FAIL_SECRET
from tests.helpers import error_of, order_body, post_order

VICTIM = "victim@deliverable.test"


def _metrics(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.startswith('{"_aws"')]


def test_failed_bot_checks_do_not_lock_out_the_address(
    client: Any, aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Five requests with the victim's email and no valid token: 403, and the victim's own
    order still goes through (the per-email window counts only orders past the bot check)."""
    monkeypatch.setenv("RATE_LIMIT_EMAIL", "5/600")
    for _ in range(5):
        r = post_order(client, order_body(email=VICTIM, turnstile_token=""))
        assert r.status_code == 403
    assert post_order(client, order_body(email=VICTIM)).status_code == 201


def test_failed_bot_checks_count_against_the_ip(
    client: Any, aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RATE_LIMIT_BOT_IP", "3/600")
    codes = [
        post_order(
            client, order_body(email=f"b{i}@deliverable.test", turnstile_token="")
        ).status_code
        for i in range(4)
    ]
    assert codes == [403, 403, 403, 429]
    err = error_of(post_order(client, order_body()))  # the same IP, now with a good token
    assert err["code"] == "rate_limited"


def test_the_email_limit_counts_accepted_orders(
    client: Any, aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RATE_LIMIT_EMAIL", "2/600")
    codes = [post_order(client, order_body(email=VICTIM)).status_code for _ in range(3)]
    assert codes == [201, 201, 429]


@pytest.fixture()
def two_merchants(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    merchants = ["owner@juice.example.com", "kitchen@juice.example.com"]
    monkeypatch.setenv("MERCHANT_EMAILS", ",".join(merchants))
    return merchants


def test_the_alert_goes_to_every_merchant_address(
    client: Any, aws: Any, two_merchants: list[str]
) -> None:
    assert post_order(client, order_body()).status_code == 201
    alerts = [m for m in aws.sent_mail() if m["subject"].startswith("New order")]
    assert [a["destinations"]["ToAddresses"] for a in alerts] == [two_merchants]


def test_a_suppressed_merchant_address_is_skipped_loudly(
    client: Any, aws: Any, two_merchants: list[str], capsys: Any
) -> None:
    SuppressionStore(aws.client("dynamodb"), "suppression").suppress(
        two_merchants[0], "bounce", {}, "m-1", 1.0
    )
    capsys.readouterr()
    assert post_order(client, order_body()).status_code == 201
    alerts = [m for m in aws.sent_mail() if m["subject"].startswith("New order")]
    assert [a["destinations"]["ToAddresses"] for a in alerts] == [[two_merchants[1]]]
    out = capsys.readouterr().out
    assert any("MerchantAddressSuppressed" in m for m in _metrics(out))
    assert '"level":"error","event":"email_suppressed"' in out
    assert two_merchants[0] not in out  # masked


def test_a_bot_check_failure_is_not_counted_for_a_replay(
    client: Any, aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The storefront retries with the same key; a replay answers from the stored order,
    whatever Turnstile says of the spent token (asked at all only when the container hasn't
    seen the key: the settings change here makes a fresh one), and counts nothing."""
    monkeypatch.setenv("RATE_LIMIT_EMAIL", "1/600")
    first = post_order(client, order_body(), "replay-key-0001")
    assert first.status_code == 201
    monkeypatch.setenv("TURNSTILE_SECRET", FAIL_SECRET)
    again = post_order(client, order_body(), "replay-key-0001")
    assert again.status_code == 201 and json.loads(again.body) == json.loads(first.body)
    assert again.headers.get("Idempotent-Replayed") == "true"


def test_a_bounce_for_the_merchant_address_is_an_alarmed_error(
    client: Any, aws: Any, capsys: Any
) -> None:
    from tests.plugins.feedback import bounce_message, ses_event

    capsys.readouterr()
    event = ses_event(bounce_message("merchant@juice.example.com"))
    assert client.lambda_.invoke("handle_ses_feedback", event).payload["suppressed"] == 1
    out = capsys.readouterr().out
    assert '"level":"error","event":"merchant_address_suppressed"' in out
    assert any("MerchantAddressSuppressed" in m for m in _metrics(out))
    assert "merchant@juice.example.com" not in out  # masked
