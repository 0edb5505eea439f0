"""pytest fixtures for the feedback tests (owned by that area).

Everything talks to the real moto server over HTTP (the `aws` fixture resets and bootstraps
it per test, so the `suppression` table starts empty).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

SES_FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "ses"
FEEDBACK_TOPIC = "arn:aws:sns:us-east-1:123456789012:ses-feedback"
SUPPRESSION_TABLE = "suppression"


def load_ses_event(name: str) -> dict[str, Any]:
    """A whole Lambda event from tests/fixtures/ses (`name` with or without `.json`)."""
    filename = name if name.endswith(".json") else f"{name}.json"
    event: dict[str, Any] = json.loads((SES_FIXTURES / filename).read_text())
    return event


def ses_event(*messages: dict[str, Any] | str, topic: str = FEEDBACK_TOPIC) -> dict[str, Any]:
    """Wrap SES notifications (dicts are JSON-encoded, strings passed as-is) like SNS does."""
    records = []
    for i, message in enumerate(messages):
        body = message if isinstance(message, str) else json.dumps(message)
        records.append(
            {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "Sns": {
                    "Type": "Notification",
                    "MessageId": f"test-sns-{i}",
                    "TopicArn": topic,
                    "Subject": None,
                    "Message": body,
                    "Timestamp": "2026-11-20T14:03:13.001Z",
                    "MessageAttributes": {},
                },
            }
        )
    return {"Records": records}


def bounce_message(
    *addresses: str,
    bounce_type: str = "Permanent",
    sub_type: str = "General",
    message_id: str = "ses-msg-1",
    event_type: bool = False,
    tags: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A minimal SES bounce notification (`tags`: the message's SES tags, as SES publishes
    them with every event: name -> [value])."""
    kind_key = "eventType" if event_type else "notificationType"
    return {
        kind_key: "Bounce",
        "mail": {
            "timestamp": "2026-11-20T14:03:11.512Z",
            "messageId": message_id,
            "destination": list(addresses),
            **ses_tags(tags),
        },
        "bounce": {
            "bounceType": bounce_type,
            "bounceSubType": sub_type,
            "feedbackId": f"fb-{message_id}",
            "timestamp": "2026-11-20T14:03:12.904Z",
            "bouncedRecipients": [
                {"emailAddress": a, "status": "4.2.2" if bounce_type != "Permanent" else "5.1.1"}
                for a in addresses
            ],
        },
    }


def complaint_message(
    *addresses: str,
    feedback_type: str | None = "abuse",
    message_id: str = "ses-msg-c",
    tags: dict[str, str] | None = None,
) -> dict[str, Any]:
    complaint: dict[str, Any] = {
        "complainedRecipients": [{"emailAddress": a} for a in addresses],
        "timestamp": "2026-11-21T08:15:00.000Z",
        "feedbackId": f"fb-{message_id}",
    }
    if feedback_type is not None:
        complaint["complaintFeedbackType"] = feedback_type
    return {
        "notificationType": "Complaint",
        "mail": {"messageId": message_id, "destination": list(addresses), **ses_tags(tags)},
        "complaint": complaint,
    }


def ses_tags(tags: dict[str, str] | None) -> dict[str, Any]:
    """`mail.tags` as SES writes it in an event (each tag's values in a list), or nothing."""
    return {"tags": {k: [v] for k, v in tags.items()}} if tags else {}


def email_tags(order_id: str, role: str) -> dict[str, str]:
    """The tags the app sends an order's email with (chalicelib.outbox.message_tags)."""
    from chalicelib.outbox import message_tags

    return dict(message_tags(order_id, role))


class RecordingSink:
    """A DeliverySink that remembers its calls; `matches` decides what it returns."""

    def __init__(self, matches: bool = True) -> None:
        self.matches = matches
        self.calls: list[tuple[str, str, float]] = []
        self.refs: list[dict[str, str]] = []

    def __call__(self, ses_message_id: str, recipient: str, when: float, **ref: str) -> bool:
        self.calls.append((ses_message_id, recipient, when))
        self.refs.append(ref)
        return self.matches


@pytest.fixture()
def suppression_store(ddb: Any) -> Any:
    from chalicelib.suppression import SuppressionStore

    return SuppressionStore(ddb, SUPPRESSION_TABLE)


@pytest.fixture()
def feedback_config() -> Any:
    from chalicelib.feedback import FeedbackConfig

    return FeedbackConfig(topic_arn=FEEDBACK_TOPIC)


@pytest.fixture()
def delivery_sink() -> RecordingSink:
    return RecordingSink()


@pytest.fixture()
def suppression_items(ddb: Any) -> Callable[[], dict[str, dict[str, Any]]]:
    """Scan the suppression table in moto: {pk: item in DynamoDB JSON}."""

    def scan() -> dict[str, dict[str, Any]]:
        items: dict[str, dict[str, Any]] = {}
        kwargs: dict[str, Any] = {"TableName": SUPPRESSION_TABLE, "ConsistentRead": True}
        while True:
            resp = ddb.scan(**kwargs)
            for item in resp["Items"]:
                items[item["pk"]["S"]] = item
            if not resp.get("LastEvaluatedKey"):
                return items
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]

    return scan
