"""The SES feedback handler as Lambda runs it (issue 16, row 5).

An infrastructure fault (DynamoDB unreachable) must make the handler raise, so Lambda
retries the event (twice, then the DLQ); the retry then stores everything and nothing is
lost. A malformed record is dropped with a log line and never raises. Through the real
handler (`app.handle_ses_feedback` via chalice.test's Lambda invoke)."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib import aws as aws_clients
from chalicelib.suppression import SuppressionStore
from tests.plugins.feedback import bounce_message, ses_event
from tests.servers import free_port

ADDRESS = "bounced@deliverable.test"


def invoke(client: Any, event: dict[str, Any]) -> Any:
    return client.lambda_.invoke("handle_ses_feedback", event)


def test_dynamodb_down_raises_and_the_retry_loses_nothing(
    client: Any, aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    event = ses_event(bounce_message(ADDRESS, message_id="ses-retry-1"))
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")  # nothing listens
    monkeypatch.setenv("DDB_READ_TIMEOUT", "0.5")
    aws_clients.reset_clients()
    with pytest.raises(Exception) as raised:
        invoke(client, event)
    assert type(raised.value).__name__ == "FeedbackNotStored"
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws.url)  # DynamoDB is back: Lambda's retry
    aws_clients.reset_clients()
    result = invoke(client, event)
    assert result.payload["suppressed"] == 1 and result.payload["error"] == 0
    store = SuppressionStore(aws.client("dynamodb"), "suppression")
    assert store.is_suppressed(ADDRESS, 2e9) is not None
    # a third delivery of the same event (SNS may redeliver) changes nothing and is fine
    assert invoke(client, event).payload["error"] == 0


def test_a_malformed_record_is_dropped_without_raising(client: Any, aws: Any) -> None:
    event = ses_event("this is not json", bounce_message(ADDRESS, message_id="ses-ok-2"))
    result = invoke(client, event)
    assert result.payload["malformed"] == 1 and result.payload["suppressed"] == 1
