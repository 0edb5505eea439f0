"""handle_sns_event with the recorded SES fixtures, against the real moto DynamoDB server."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest

from chalicelib.feedback import SUMMARY_KEYS, FeedbackConfig, handle_sns_event
from chalicelib.suppression import SuppressionStore
from tests.plugins.feedback import (
    FEEDBACK_TOPIC,
    RecordingSink,
    bounce_message,
    complaint_message,
    load_ses_event,
    ses_event,
)

NOW = 1_790_000_000.0
DAY = 86400
SES_ID = "0100019a1b2c3d4e-5f6a7b8c-1111-2222-3333-444455556666-000000"

# fixture -> (addresses permanently suppressed with their reason, soft-bounce counters,
#             non-zero summary counts)
EXPECTED: dict[str, tuple[dict[str, str], set[str], dict[str, int]]] = {
    "bounce-permanent-general": (
        {"jane.doe@example.com": "bounce"},
        set(),
        {"records": 1, "suppressed": 1},
    ),
    "bounce-permanent-suppressed": (
        {"old.customer@example.net": "bounce"},
        set(),
        {"records": 1, "suppressed": 1},
    ),
    "bounce-transient-mailboxfull": (
        {},
        {"busy.inbox@example.org"},
        {"records": 1, "transient": 1},
    ),
    "bounce-undetermined": ({}, {"who.knows@example.com"}, {"records": 1, "undetermined": 1}),
    "bounce-multiple-recipients": (
        {"jane.doe@example.com": "bounce", "second.person@example.net": "bounce"},
        set(),
        {"records": 1, "suppressed": 2},
    ),
    "complaint-abuse": (
        {"angry.reader@example.org": "complaint"},
        set(),
        {"records": 1, "suppressed": 1},
    ),
    "complaint-no-feedback-type": (
        {"quiet.reader@example.com": "complaint"},
        set(),
        {"records": 1, "suppressed": 1},
    ),
    "delivery": ({}, set(), {"records": 1, "delivery": 1}),
    "event-publishing-bounce": (
        {"published.event@example.com": "bounce"},
        set(),
        {"records": 1, "suppressed": 1},
    ),
    "batch-two-records": (
        {"batch.one@example.com": "bounce", "batch.two@example.net": "complaint"},
        set(),
        {"records": 2, "suppressed": 2},
    ),
    "batch-good-and-malformed": (
        {"after.bad@example.com": "bounce"},
        set(),
        {"records": 2, "suppressed": 1, "malformed": 1},
    ),
    "malformed-message-not-json": ({}, set(), {"records": 1, "malformed": 1}),
    "unknown-type": ({}, set(), {"records": 1, "unknown_type": 1}),
    "missing-fields": ({}, set(), {"records": 1, "malformed": 1}),
    "wrong-topic": ({}, set(), {"records": 1, "ignored_topic": 1}),
    "huge-recipient-list": (
        {f"recipient{i:02d}@example.com": "bounce" for i in range(60)},
        set(),
        {"records": 1, "suppressed": 60},
    ),
}


def run(
    event: dict[str, Any],
    store: SuppressionStore,
    config: FeedbackConfig,
    sink: Any = None,
    now: float = NOW,
) -> dict[str, int]:
    return handle_sns_event(event, store, config, sink or RecordingSink(), now)


def sup(items: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {k.removeprefix("sup#"): v for k, v in items.items() if k.startswith("sup#")}


def counters(items: dict[str, Any]) -> set[str]:
    return {k.removeprefix("tb#") for k in items if k.startswith("tb#")}


def test_every_fixture_in_the_readme_table_is_covered() -> None:
    from tests.plugins.feedback import SES_FIXTURES

    assert {p.stem for p in SES_FIXTURES.glob("*.json")} == set(EXPECTED)
    readme = (SES_FIXTURES / "README.md").read_text()
    assert all(f"{name}.json" in readme for name in EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_outcome(
    name: str,
    suppression_store: SuppressionStore,
    feedback_config: FeedbackConfig,
    suppression_items: Any,
) -> None:
    expected_sup, expected_counters, expected_counts = EXPECTED[name]

    summary = run(load_ses_event(name), suppression_store, feedback_config)

    items = suppression_items()
    suppressed = sup(items)
    assert {a: v["reason"]["S"] for a, v in suppressed.items()} == expected_sup
    for item in suppressed.values():
        assert item["message_id"] == {"S": SES_ID}
        assert item["permanent"] == {"BOOL": True} and "expires_at" not in item
        assert item["suppressed_at"] == {"N": str(int(NOW))}
    assert counters(items) == expected_counters
    assert summary == {k: expected_counts.get(k, 0) for k in SUMMARY_KEYS}


def test_hard_bounce_record_keeps_bounce_details(
    suppression_store: SuppressionStore, feedback_config: FeedbackConfig
) -> None:
    run(load_ses_event("bounce-permanent-suppressed"), suppression_store, feedback_config)

    record = suppression_store.is_suppressed("old.customer@example.net", NOW + 400 * DAY)
    assert record is not None
    assert record["reason"] == "bounce"
    assert record["message_id"] == SES_ID
    assert record["detail"]["bounceType"] == "Permanent"
    assert record["detail"]["bounceSubType"] == "Suppressed"
    assert record["detail"]["status"] == "5.1.1"
    assert record["detail"]["event_time"] == "2026-11-20T14:03:12.904Z"


def test_mixed_case_recipient_is_normalised(
    suppression_store: SuppressionStore, feedback_config: FeedbackConfig, suppression_items: Any
) -> None:
    run(load_ses_event("bounce-multiple-recipients"), suppression_store, feedback_config)

    assert "sup#jane.doe@example.com" in suppression_items()
    assert not any(k != k.lower() for k in suppression_items())
    for form in ("Jane.Doe@Example.COM", "jane.doe@example.com", "JANE.DOE@EXAMPLE.COM"):
        assert suppression_store.is_suppressed(form, NOW) is not None


def test_complaint_records_feedback_type_when_present(
    suppression_store: SuppressionStore, feedback_config: FeedbackConfig
) -> None:
    run(load_ses_event("complaint-abuse"), suppression_store, feedback_config)
    run(load_ses_event("complaint-no-feedback-type"), suppression_store, feedback_config)

    abuse = suppression_store.is_suppressed("angry.reader@example.org", NOW)
    quiet = suppression_store.is_suppressed("quiet.reader@example.com", NOW)
    assert abuse is not None and abuse["reason"] == "complaint"
    assert abuse["detail"]["complaintFeedbackType"] == "abuse"
    assert quiet is not None and quiet["reason"] == "complaint"
    assert "complaintFeedbackType" not in quiet["detail"]


def test_not_spam_feedback_does_not_suppress(
    suppression_store: SuppressionStore, feedback_config: FeedbackConfig, suppression_items: Any
) -> None:
    summary = run(
        ses_event(complaint_message("fan@example.com", feedback_type="not-spam")),
        suppression_store,
        feedback_config,
    )

    assert summary["not_spam"] == 1 and summary["suppressed"] == 0
    assert suppression_items() == {}


def test_delivery_calls_the_sink_and_never_suppresses(
    suppression_store: SuppressionStore, feedback_config: FeedbackConfig, suppression_items: Any
) -> None:
    sink = RecordingSink(matches=False)

    summary = run(load_ses_event("delivery"), suppression_store, feedback_config, sink)

    when = datetime.fromisoformat("2026-11-20T14:03:12.300+00:00").timestamp()
    assert sink.calls == [(SES_ID, "happy.customer@example.com", when)]
    assert summary["delivery"] == 1 and summary["delivery_unmatched"] == 1
    assert suppression_items() == {}


def test_delivery_sink_failure_is_counted_not_raised(
    suppression_store: SuppressionStore, feedback_config: FeedbackConfig, suppression_items: Any
) -> None:
    def broken_sink(message_id: str, recipient: str, when: float) -> bool:
        raise RuntimeError("orders table unavailable")

    event = load_ses_event("delivery")
    event["Records"] += load_ses_event("bounce-permanent-general")["Records"]

    summary = handle_sns_event(event, suppression_store, feedback_config, broken_sink, NOW)

    assert summary["error"] == 1
    assert summary["suppressed"] == 1
    assert list(sup(suppression_items())) == ["jane.doe@example.com"]


def test_wrong_topic_writes_nothing_and_empty_config_accepts_nothing(
    suppression_store: SuppressionStore, suppression_items: Any
) -> None:
    sink = RecordingSink()
    good = load_ses_event("batch-two-records")
    good["Records"] += load_ses_event("delivery")["Records"]

    summary = run(good, suppression_store, FeedbackConfig(topic_arn=""), sink)
    assert summary["ignored_topic"] == 3 and summary["suppressed"] == 0
    foreign = run(
        load_ses_event("wrong-topic"), suppression_store, FeedbackConfig(topic_arn=FEEDBACK_TOPIC)
    )
    assert foreign["ignored_topic"] == 1

    assert suppression_items() == {}
    assert sink.calls == []


def test_bad_record_does_not_stop_the_good_one(
    suppression_store: SuppressionStore, feedback_config: FeedbackConfig
) -> None:
    summary = run(load_ses_event("batch-good-and-malformed"), suppression_store, feedback_config)

    assert summary["malformed"] == 1 and summary["suppressed"] == 1
    assert suppression_store.is_suppressed("after.bad@example.com", NOW) is not None


@pytest.mark.parametrize(
    "event",
    [
        {},
        {"Records": None},
        {"Records": ["not a record", {"Sns": "nope"}, {"Sns": {"TopicArn": FEEDBACK_TOPIC}}]},
        ses_event("[1, 2, 3]", '"just a string"', "{}"),
        ses_event({"notificationType": "Bounce", "bounce": {"bounceType": "Permanent"}}),
        ses_event({"notificationType": "Bounce", "mail": {"messageId": "m"}, "bounce": []}),
        ses_event(
            {
                "notificationType": "Bounce",
                "mail": {"messageId": "m"},
                "bounce": {"bouncedRecipients": [{"emailAddress": "x@example.com"}]},
            }
        ),
        ses_event({"notificationType": "Complaint", "mail": {"messageId": "m"}, "complaint": {}}),
        ses_event({"notificationType": "Delivery", "mail": {"messageId": "m"}}),
    ],
)
def test_garbage_is_counted_never_raised(
    event: dict[str, Any],
    suppression_store: SuppressionStore,
    feedback_config: FeedbackConfig,
    suppression_items: Any,
) -> None:
    summary = run(event, suppression_store, feedback_config)

    assert summary["malformed"] >= 1
    assert summary["suppressed"] == summary["delivery"] == 0
    assert suppression_items() == {}


def test_invalid_recipient_entries_are_skipped(
    suppression_store: SuppressionStore, feedback_config: FeedbackConfig, suppression_items: Any
) -> None:
    message = bounce_message("ok@example.com")
    message["bounce"]["bouncedRecipients"] += [{"emailAddress": "no-at-sign"}, {}, "string"]
    message["bounce"]["bouncedRecipients"].append({"emailAddress": '"Ann" <Ann@Example.com>'})

    summary = run(ses_event(message), suppression_store, feedback_config)

    assert summary["invalid_recipient"] == 3 and summary["suppressed"] == 2
    assert set(sup(suppression_items())) == {"ok@example.com", "ann@example.com"}


def test_repeated_soft_bounces_through_the_handler_suppress_temporarily(
    suppression_store: SuppressionStore, feedback_config: FeedbackConfig, suppression_items: Any
) -> None:
    def soft(message_id: str, now: float) -> dict[str, int]:
        event = ses_event(
            bounce_message(
                "Busy@Example.org",
                bounce_type="Transient",
                sub_type="MailboxFull",
                message_id=message_id,
            )
        )
        return run(event, suppression_store, feedback_config, now=now)

    assert soft("s1", NOW)["temporarily_suppressed"] == 0
    assert soft("s1", NOW + 5)["temporarily_suppressed"] == 0  # SNS redelivery: not recounted
    assert soft("s2", NOW + DAY)["temporarily_suppressed"] == 0
    assert "sup#busy@example.org" not in suppression_items()

    third = soft("s3", NOW + 2 * DAY)

    assert third["transient"] == 1 and third["temporarily_suppressed"] == 1
    item = suppression_items()["sup#busy@example.org"]
    assert item["reason"] == {"S": "transient"}
    assert item["permanent"] == {"BOOL": False}
    assert item["detail"]["M"]["bounceSubType"] == {"S": "MailboxFull"}
    until = NOW + 2 * DAY + feedback_config.temporary_suppression_seconds
    assert item["expires_at"] == {"N": str(int(until))}
    assert suppression_store.is_suppressed("busy@example.org", until - 1) is not None
    assert suppression_store.is_suppressed("busy@example.org", until) is None


def test_undetermined_bounces_count_but_never_suppress_permanently(
    suppression_store: SuppressionStore, feedback_config: FeedbackConfig, suppression_items: Any
) -> None:
    for i in range(4):
        message = bounce_message(
            "who.knows@example.com",
            bounce_type="Undetermined",
            sub_type="Undetermined",
            message_id=f"u{i}",
        )
        run(ses_event(message), suppression_store, feedback_config, now=NOW + i)

    item = suppression_items()["sup#who.knows@example.com"]
    assert item["permanent"] == {"BOOL": False} and "expires_at" in item
    assert item["detail"]["M"]["bounceType"] == {"S": "Undetermined"}


def test_later_soft_bounces_never_downgrade_a_hard_bounce(
    suppression_store: SuppressionStore, feedback_config: FeedbackConfig, suppression_items: Any
) -> None:
    run(load_ses_event("bounce-permanent-general"), suppression_store, feedback_config)
    for i in range(3):
        message = bounce_message(
            "JANE.DOE@example.com", bounce_type="Transient", message_id=f"t{i}"
        )
        summary = run(ses_event(message), suppression_store, feedback_config, now=NOW + i)

    assert summary["temporarily_suppressed"] == 0
    item = suppression_items()["sup#jane.doe@example.com"]
    assert item["reason"] == {"S": "bounce"} and "expires_at" not in item
    assert suppression_store.is_suppressed("jane.doe@example.com", NOW + 1000 * DAY) is not None


def test_store_failure_is_counted_and_the_next_record_still_handled(
    ddb: Any, feedback_config: FeedbackConfig, suppression_items: Any
) -> None:
    class FailFirstBatch:
        """Fault injection: the real client, but the first BatchWriteItem fails."""

        def __init__(self, real: Any) -> None:
            self.real, self.failed = real, False

        def __getattr__(self, name: str) -> Any:
            return getattr(self.real, name)

        def batch_write_item(self, **kwargs: Any) -> Any:
            if not self.failed:
                self.failed = True
                raise ConnectionError("DynamoDB unreachable")
            return self.real.batch_write_item(**kwargs)

    store = SuppressionStore(FailFirstBatch(ddb), "suppression")

    summary = run(load_ses_event("batch-two-records"), store, feedback_config)

    assert summary["error"] == 1 and summary["suppressed"] == 1
    assert set(sup(suppression_items())) == {"batch.two@example.net"}


def test_huge_recipient_list_is_written_in_batches_of_25(
    ddb: Any, feedback_config: FeedbackConfig, suppression_items: Any
) -> None:
    sizes: list[int] = []

    class Counting:
        def __init__(self, real: Any) -> None:
            self.real = real

        def __getattr__(self, name: str) -> Any:
            return getattr(self.real, name)

        def batch_write_item(self, **kwargs: Any) -> Any:
            sizes.extend(len(v) for v in kwargs["RequestItems"].values())
            return self.real.batch_write_item(**kwargs)

    store = SuppressionStore(Counting(ddb), "suppression")

    summary = run(load_ses_event("huge-recipient-list"), store, feedback_config)

    assert summary["suppressed"] == 60
    assert sizes == [25, 25, 10]
    assert len(sup(suppression_items())) == 60


def test_logs_mask_addresses_and_emit_metrics(
    suppression_store: SuppressionStore,
    feedback_config: FeedbackConfig,
    capsys: pytest.CaptureFixture[str],
) -> None:
    event = load_ses_event("batch-two-records")
    event["Records"] += load_ses_event("delivery")["Records"]
    event["Records"] += load_ses_event("wrong-topic")["Records"]

    run(event, suppression_store, feedback_config)

    out = capsys.readouterr().out
    lines = [json.loads(line) for line in out.splitlines()]
    for raw in ("batch.one@", "batch.two@", "happy.customer@", "not.ours@"):
        assert raw not in out
    decisions = [ln for ln in lines if ln.get("event") == "feedback_decision"]
    assert {d["email"] for d in decisions} == {
        "b***@example.com",
        "b***@example.net",
        "h***@example.com",
    }
    outcomes = [ln["outcome"] for ln in lines if "_aws" in ln and "FeedbackRecords" in ln]
    assert sorted(outcomes) == ["bounce_permanent", "complaint", "delivery", "ignored_topic"]


# -- issue 12, finding 10: every SES-provided field that is stored or logged is capped ---------

HUGE = 20_000


def _log_lines(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def test_oversized_bounce_fields_are_capped_in_the_record_and_the_logs(
    suppression_store: SuppressionStore,
    feedback_config: FeedbackConfig,
    suppression_items: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from chalicelib.feedback import FIELD_MAX

    message = bounce_message("capped@example.com", sub_type="S" * HUGE)
    bounce = message["bounce"]
    bounce["feedbackId"] = "F" * HUGE
    bounce["timestamp"] = "T" * HUGE
    bounce["reportingMTA"] = "dsn; " + "m" * HUGE
    bounce["remoteMtaIp"] = "1" * HUGE
    bounce["bouncedRecipients"][0].update(
        {"status": "5" * HUGE, "action": "A" * HUGE, "diagnosticCode": "smtp;\r\n" + "D" * HUGE}
    )

    summary = run(ses_event(message), suppression_store, feedback_config)

    assert summary["suppressed"] == 1
    detail = suppression_items()["sup#capped@example.com"]["detail"]["M"]
    got = {k: v["S"] for k, v in detail.items()}
    for name in (
        "bounceSubType",
        "feedbackId",
        "event_time",
        "reportingMTA",
        "remoteMtaIp",
        "status",
        "action",
        "diagnosticCode",
    ):
        assert len(got[name]) == FIELD_MAX[name], name
        assert got[name].endswith("…"), name
    assert got["diagnosticCode"].startswith("smtp;  D")  # CR LF became spaces
    assert got["bounceType"] == "Permanent"
    out = capsys.readouterr().out
    assert "S" * 100 not in out and "D" * 400 not in out
    assert max(len(line) for line in out.splitlines()) < 2000
    decisions = [ln for ln in _log_lines(out) if ln.get("event") == "feedback_decision"]
    assert len(decisions[0]["bounce_subtype"]) == FIELD_MAX["bounceSubType"]


def test_oversized_complaint_fields_are_capped(
    suppression_store: SuppressionStore,
    feedback_config: FeedbackConfig,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from chalicelib.feedback import FIELD_MAX

    message = complaint_message("reader@example.org", feedback_type="abuse" + "x" * HUGE)
    message["complaint"]["userAgent"] = "Mozilla/5.0 " + "u" * HUGE
    message["complaint"]["complaintSubType"] = "c" * HUGE
    message["complaint"]["feedbackId"] = "f" * HUGE

    summary = run(ses_event(message), suppression_store, feedback_config)

    assert summary["suppressed"] == 1
    record = suppression_store.is_suppressed("reader@example.org", NOW)
    assert record is not None
    for name in ("complaintFeedbackType", "userAgent", "complaintSubType", "feedbackId"):
        assert len(record["detail"][name]) == FIELD_MAX[name], name
    out = capsys.readouterr().out
    assert "u" * 300 not in out and "x" * 100 not in out
    assert max(len(line) for line in out.splitlines()) < 2000


def test_non_text_fields_are_dropped_not_stringified(
    suppression_store: SuppressionStore, feedback_config: FeedbackConfig
) -> None:
    message = bounce_message("obj@example.com")
    message["bounce"]["bounceSubType"] = {"nested": ["x" * 1000] * 100}
    message["bounce"]["bouncedRecipients"][0]["diagnosticCode"] = ["a", "b"]
    message["bounce"]["bouncedRecipients"][0]["status"] = 550

    run(ses_event(message), suppression_store, feedback_config)

    record = suppression_store.is_suppressed("obj@example.com", NOW)
    assert record is not None
    assert "bounceSubType" not in record["detail"] and "diagnosticCode" not in record["detail"]
    assert record["detail"]["status"] == "550"


def test_an_address_longer_than_254_is_not_a_recipient(
    suppression_store: SuppressionStore, feedback_config: FeedbackConfig, suppression_items: Any
) -> None:
    too_long = "a" * 64 + "@" + "d" * 186 + ".com"  # 255 characters
    message = bounce_message("ok@example.com", too_long, "sp ace@example.com")

    summary = run(ses_event(message), suppression_store, feedback_config)

    assert len(too_long) == 255
    assert summary["invalid_recipient"] == 2 and summary["suppressed"] == 1
    assert set(sup(suppression_items())) == {"ok@example.com"}


@pytest.mark.parametrize("mail_id", ["m" * 201, "id\nwith-newline"])
def test_a_message_id_that_is_not_from_ses_is_malformed(
    mail_id: str,
    suppression_store: SuppressionStore,
    feedback_config: FeedbackConfig,
    suppression_items: Any,
) -> None:
    summary = run(
        ses_event(bounce_message("x@example.com", message_id=mail_id)),
        suppression_store,
        feedback_config,
    )

    assert summary["malformed"] == 1 and summary["suppressed"] == 0
    assert suppression_items() == {}


@pytest.mark.parametrize("kind", ["bounce", "complaint"])
def test_an_absurd_recipient_list_is_cut_at_the_cap_with_a_log_line(
    kind: str,
    suppression_store: SuppressionStore,
    feedback_config: FeedbackConfig,
    suppression_items: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from chalicelib.feedback import MAX_RECIPIENTS

    addresses = [f"r{i:04d}@example.com" for i in range(MAX_RECIPIENTS + 50)]
    message = bounce_message(*addresses) if kind == "bounce" else complaint_message(*addresses)

    summary = run(ses_event(message), suppression_store, feedback_config)

    assert summary["suppressed"] == MAX_RECIPIENTS
    assert summary["recipients_ignored"] == 50
    assert set(sup(suppression_items())) == set(addresses[:MAX_RECIPIENTS])
    capped = [
        ln
        for ln in _log_lines(capsys.readouterr().out)
        if ln.get("event") == "feedback_recipients_capped"
    ]
    assert len(capped) == 1
    assert capped[0]["listed"] == MAX_RECIPIENTS + 50 and capped[0]["ignored"] == 50
    assert capped[0]["level"] == "warning"


def test_an_absurd_delivery_list_is_cut_at_the_cap(
    suppression_store: SuppressionStore, feedback_config: FeedbackConfig
) -> None:
    from chalicelib.feedback import MAX_RECIPIENTS

    event = load_ses_event("delivery")
    message = json.loads(event["Records"][0]["Sns"]["Message"])
    message["delivery"]["recipients"] = [f"d{i}@example.com" for i in range(5 * MAX_RECIPIENTS)]
    sink = RecordingSink()

    summary = run(ses_event(message), suppression_store, feedback_config, sink)

    assert len(sink.calls) == MAX_RECIPIENTS == summary["delivery"]
    assert summary["recipients_ignored"] == 4 * MAX_RECIPIENTS


def test_the_tags_of_a_message_name_its_order_and_email_and_reach_the_sink(
    suppression_store: SuppressionStore, feedback_config: FeedbackConfig
) -> None:
    from chalicelib.feedback import message_ref

    event = load_ses_event("delivery")
    message = json.loads(event["Records"][0]["Sns"]["Message"])
    message["mail"]["tags"] = {
        "ses:configuration-set": ["juice-orders"],  # SES's own tags ride along
        "order_id": ["7MZK3Q0D9X"],
        "email": ["customer"],
    }
    assert message_ref(message) == {"order_id": "7MZK3Q0D9X", "role": "customer"}
    sink = RecordingSink()
    run(ses_event(message), suppression_store, feedback_config, sink)
    assert sink.refs == [{"order_id": "7MZK3Q0D9X", "role": "customer"}]


@pytest.mark.parametrize(
    "tags",
    [
        None,
        "order_id=7MZK3Q0D9X",
        {},
        {"order_id": ["7MZK3Q0D9X"]},  # no email tag
        {"order_id": ["7MZK3Q0D9X"], "email": ["admin"]},  # not one of our emails
        {"order_id": ["7MZK3Q0D9X"], "email": ["status_../x"]},
        {"order_id": ["order#7MZK3Q0D9X"], "email": ["customer"]},  # not an order id
        {"order_id": ["7MZK3Q0D9X", "8MZK3Q0D9X"], "email": ["customer"]},  # two values
        {"order_id": [7], "email": ["customer"]},
    ],
)
def test_tags_that_are_not_ours_are_ignored(tags: Any) -> None:
    """A notification without our tags (mail sent before them) or with odd ones: no ref, so
    the store falls back to the message-id index, and nothing odd reaches a DynamoDB key."""
    from chalicelib.feedback import message_ref

    mail: dict[str, Any] = {"messageId": "m"}
    if tags is not None:
        mail["tags"] = tags
    assert message_ref({"mail": mail}) == {}


def test_status_email_tags_are_ours() -> None:
    from chalicelib.feedback import message_ref

    tags = {"order_id": ["7MZK3Q0D9X"], "email": ["status_out_for_delivery"]}
    assert message_ref({"mail": {"tags": tags}})["role"] == "status_out_for_delivery"
