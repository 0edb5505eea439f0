"""One identity per mailbox (issue 12, findings 3 and 4): `+tag` addresses share their
mailbox's rate limit and suppression, and IDN addresses match suppressions that SES reports in
punycode. Feedback goes through the real SNS handler; orders through the API."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers import error_of, order_body, post_order
from tests.plugins.feedback import bounce_message, complaint_message, ses_event


def feed(client: Any, message: dict[str, Any]) -> dict[str, Any]:
    return dict(client.lambda_.invoke("handle_ses_feedback", ses_event(message)).payload)


def test_a_plus_tag_shares_the_mailbox_rate_limit(
    client: Any, aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RATE_LIMIT_EMAIL", "1/600")
    assert post_order(client, order_body(email="jane@deliverable.test")).status_code == 201
    r = post_order(client, order_body(email="Jane+1@Deliverable.test"))
    assert r.status_code == 429 and error_of(r)["code"] == "rate_limited"


def test_a_complaint_suppresses_every_tag_of_the_mailbox(client: Any, aws: Any) -> None:
    assert feed(client, complaint_message("supp@deliverable.test"))["error"] == 0
    r = post_order(client, order_body(email="supp+x@deliverable.test"))
    err = error_of(r)
    assert r.status_code == 422 and err["reason"] == "suppressed"
    assert not [m for m in aws.sent_mail() if "supp" in str(m["destinations"])]


def test_a_punycode_bounce_suppresses_the_unicode_address(client: Any, aws: Any) -> None:
    assert feed(client, bounce_message("jane@xn--bcher-kva.test"))["suppressed"] == 1
    r = post_order(client, order_body(email="jane@bücher.test"))
    assert r.status_code == 422 and error_of(r)["reason"] == "suppressed"


def test_rows_written_before_canonical_keys_still_suppress(client: Any, aws: Any) -> None:
    """An old row keyed by the whole lower-cased address (with its tag) keeps working."""
    aws.client("dynamodb").put_item(
        TableName="suppression",
        Item={
            "pk": {"S": "sup#old+tag@deliverable.test"},
            "email": {"S": "old+tag@deliverable.test"},
            "reason": {"S": "bounce"},
            "permanent": {"BOOL": True},
            "suppressed_at": {"N": "1"},
        },
    )
    r = post_order(client, order_body(email="Old+Tag@deliverable.test"))
    assert r.status_code == 422 and error_of(r)["reason"] == "suppressed"
