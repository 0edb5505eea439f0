"""Local-mode commands for what `chalice local` can't trigger (no SNS, no schedule).

Run against the running `make run` stack (its moto server on MOTO_PORT, default 4566):

    python -m devstack.cli feed tests/fixtures/ses/bounce-permanent-general.json
    python -m devstack.cli bounce jane@deliverable.test [--transient]
    python -m devstack.cli complaint jane@deliverable.test
    python -m devstack.cli sweep
    python -m devstack.cli suppression

Each calls the app's real handler in-process; the state lives in the stack's moto server.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

TOPIC = "arn:aws:sns:us-east-1:123456789012:ses-feedback"


def _use_local_stack() -> None:
    port = os.environ.get("MOTO_PORT", "4566")
    os.environ.setdefault("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    for k, v in {
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_REGION": "us-east-1",
        "STAGE": "local",
    }.items():
        os.environ.setdefault(k, v)


def sns_event(message: dict[str, Any]) -> dict[str, Any]:
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "Sns": {
                    "Type": "Notification",
                    "MessageId": str(uuid.uuid4()),
                    "TopicArn": TOPIC,
                    "Subject": None,
                    "Message": json.dumps(message),
                    "Timestamp": datetime.now(timezone.utc).isoformat(),
                    "MessageAttributes": {},
                },
            }
        ]
    }


def synthetic(kind: str, address: str, transient: bool = False) -> dict[str, Any]:
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    mail = {
        "timestamp": now,
        "messageId": f"local-{uuid.uuid4()}",
        "destination": [address],
        "source": "orders@juice.example.com",
    }
    if kind == "complaint":
        return {
            "notificationType": "Complaint",
            "mail": mail,
            "complaint": {
                "complainedRecipients": [{"emailAddress": address}],
                "timestamp": now,
                "feedbackId": str(uuid.uuid4()),
                "complaintFeedbackType": "abuse",
            },
        }
    return {
        "notificationType": "Bounce",
        "mail": mail,
        "bounce": {
            "bounceType": "Transient" if transient else "Permanent",
            "bounceSubType": "MailboxFull" if transient else "General",
            "bouncedRecipients": [{"emailAddress": address, "status": "5.1.1"}],
            "timestamp": now,
            "feedbackId": str(uuid.uuid4()),
        },
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m devstack.cli")
    sub = p.add_subparsers(dest="cmd", required=True)
    feed = sub.add_parser("feed", help="feed a Lambda SNS event file to the feedback handler")
    feed.add_argument("path")
    b = sub.add_parser("bounce", help="a synthetic bounce for an address")
    b.add_argument("address")
    b.add_argument("--transient", action="store_true")
    c = sub.add_parser("complaint", help="a synthetic complaint for an address")
    c.add_argument("address")
    sub.add_parser("sweep", help="run the outbox sweeper once")
    sub.add_parser("suppression", help="list the suppression table")
    a = p.parse_args(argv)
    _use_local_stack()

    from chalicelib.services import handle_feedback, run_sweeper

    if a.cmd == "feed":
        event = json.loads(Path(a.path).read_text(encoding="utf-8"))
        # fixture files carry their own topic; local feeding targets the local topic
        for record in event.get("Records", []):
            if isinstance(record, dict) and isinstance(record.get("Sns"), dict):
                record["Sns"].setdefault("TopicArn", TOPIC)
        result: Any = handle_feedback(event)
    elif a.cmd in ("bounce", "complaint"):
        result = handle_feedback(
            sns_event(synthetic(a.cmd, a.address, a.cmd == "bounce" and a.transient))
        )
    elif a.cmd == "sweep":
        result = run_sweeper()
    else:
        from devstack.inspect import suppression_list

        table = os.environ.get("SUPPRESSION_TABLE", "suppression")
        result = suppression_list(os.environ["AWS_ENDPOINT_URL"], table)
    print(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
