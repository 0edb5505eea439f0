"""SES feedback (bounces, complaints, deliveries) delivered by SNS to a Lambda function.

`handle_sns_event` takes the raw Lambda event and never raises: each record is handled on its
own, and anything wrong with one record is logged, counted and skipped, because raising would
make Lambda retry the whole batch. docs/feedback.md describes every decision.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email.utils import parseaddr
from typing import Any

from chalicelib.ids import is_order_id
from chalicelib.obs import log, mask_email, metric
from chalicelib.store import TAG_EMAIL, TAG_ORDER
from chalicelib.suppression import SuppressionStore

DeliverySink = Callable[..., bool]  # (message_id, recipient, when, **message_ref) -> matched
"""(ses_message_id, recipient, when_epoch) -> True if it matched an order email."""

ProblemSink = Callable[..., bool]  # (message_id, recipient, status, when, **message_ref)
"""(ses_message_id, recipient, "bounced" | "complained", when_epoch) -> True if it matched an
order email (records a permanent bounce / a complaint on that message, issue 15)."""

# Every key handle_sns_event returns (all present, zero when nothing happened).
# Address-level counts: suppressed, transient, undetermined, temporarily_suppressed,
# not_spam, delivery, delivery_unmatched, invalid_recipient, recipients_ignored (beyond
# MAX_RECIPIENTS in one notification).
# Record-level counts: records, ignored_topic, malformed, unknown_type, error.
SUMMARY_KEYS = (
    "records",
    "suppressed",
    "transient",
    "undetermined",
    "temporarily_suppressed",
    "not_spam",
    "delivery",
    "delivery_unmatched",
    "invalid_recipient",
    "recipients_ignored",
    "ignored_topic",
    "malformed",
    "unknown_type",
    "error",
)

# Every SES-provided text that is stored or logged is capped (characters; docs/feedback.md).
# Control characters become spaces; a cut value ends in "…".
FIELD_MAX = {
    "bounceType": 32,
    "bounceSubType": 64,
    "complaintFeedbackType": 64,
    "complaintSubType": 64,
    "feedbackId": 128,
    "event_time": 40,
    "status": 32,
    "action": 32,
    "diagnosticCode": 300,
    "reportingMTA": 255,
    "remoteMtaIp": 64,
    "userAgent": 200,
}
DEFAULT_FIELD_MAX = 128
MAX_ADDRESS = 254  # RFC 5321: longer is not an address we could have sent to
MAX_MESSAGE_ID = 200  # SES ids are ~60 characters; a longer one is not from SES
MAX_RECIPIENTS = 100  # we send to one recipient per message; SES allows 50 per message


@dataclass
class FeedbackConfig:
    """How feedback is handled. `topic_arn` "" accepts nothing (fail closed)."""

    topic_arn: str
    transient_limit: int = 3
    transient_window_seconds: int = 7 * 86400
    temporary_suppression_seconds: int = 14 * 86400
    # the shop's own (merchant) addresses, canonical: suppressing one of them stops order
    # alerts, so it is an error with its own metric (alarmed), never a silent decision
    watched: frozenset[str] = frozenset()


class _MalformedError(Exception):
    """The record is not a usable SES notification (message says which part)."""


def handle_sns_event(
    event: dict[str, Any],
    store: SuppressionStore,
    config: FeedbackConfig,
    on_delivery: DeliverySink,
    now: float,
    on_problem: ProblemSink | None = None,
) -> dict[str, int]:
    """Apply every SES notification in an SNS-triggered Lambda event; return counts.

    Never raises. See SUMMARY_KEYS for the keys of the returned dict.
    """
    counts = dict.fromkeys(SUMMARY_KEYS, 0)
    records = event.get("Records") if isinstance(event, dict) else None
    if not isinstance(records, list):
        counts["malformed"] += 1
        _decision("malformed", problem="event has no Records list")
        return counts
    for index, record in enumerate(records):
        counts["records"] += 1
        sns_id = ""
        try:
            if isinstance(record, dict) and isinstance(record.get("Sns"), dict):
                sns_id = str(record["Sns"].get("MessageId") or "")[:100]
            _handle_record(
                record, index, sns_id, store, config, on_delivery, now, counts, on_problem
            )
        except _MalformedError as exc:
            counts["malformed"] += 1
            _decision("malformed", index=index, sns_message_id=sns_id, problem=str(exc))
        except Exception as exc:  # noqa: BLE001 - one bad record must not fail the batch
            counts["error"] += 1
            _decision(
                "error",
                level="error",
                index=index,
                sns_message_id=sns_id,
                error=type(exc).__name__,
                problem=str(exc)[:300],
            )
    summary: dict[str, Any] = dict(counts)
    log("feedback_batch", **summary)
    return counts


def _decision(outcome: str, level: str = "info", **fields: Any) -> None:
    """One log line and one EMF data point per record-level outcome."""
    log("feedback_record", level=level, outcome=outcome, **fields)
    metric("FeedbackRecords", outcome=outcome)


def _handle_record(
    record: Any,
    index: int,
    sns_id: str,
    store: SuppressionStore,
    config: FeedbackConfig,
    on_delivery: DeliverySink,
    now: float,
    counts: dict[str, int],
    on_problem: ProblemSink | None = None,
) -> None:
    if not isinstance(record, dict) or not isinstance(record.get("Sns"), dict):
        raise _MalformedError("record has no Sns object")
    sns = record["Sns"]
    topic = sns.get("TopicArn")
    if not config.topic_arn or topic != config.topic_arn:
        counts["ignored_topic"] += 1
        _decision(
            "ignored_topic",
            level="warning",
            index=index,
            sns_message_id=sns_id,
            topic_arn=str(topic)[:256],
            configured=bool(config.topic_arn),
        )
        return
    raw = sns.get("Message")
    if isinstance(raw, str):
        try:
            message = json.loads(raw)
        except ValueError:
            raise _MalformedError("Message is not JSON") from None
    else:
        message = raw
    if not isinstance(message, dict):
        raise _MalformedError("Message is not a JSON object")
    kind = message.get("notificationType") or message.get("eventType")
    if not isinstance(kind, str) or not kind:
        raise _MalformedError("no notificationType/eventType")
    ctx = {"index": index, "sns_message_id": sns_id, "type": kind[:64]}
    if kind == "Bounce":
        _bounce(message, store, config, now, counts, ctx)
        if _obj(message, "bounce").get("bounceType") == "Permanent":
            _problem(message, "bounce", "bouncedRecipients", "bounced", on_problem, now, ctx)
    elif kind == "Complaint":
        _complaint(message, store, config, now, counts, ctx)
        if _obj(message, "complaint").get("complaintFeedbackType") != "not-spam":
            _problem(message, "complaint", "complainedRecipients", "complained", on_problem,
                     now, ctx)  # fmt: skip
    elif kind == "Delivery":
        _delivery(message, on_delivery, now, counts, ctx)
    else:
        counts["unknown_type"] += 1
        _decision("unknown_type", level="warning", **ctx)


# -- the three notification types ------------------------------------------------------------


def _bounce(
    message: dict[str, Any],
    store: SuppressionStore,
    config: FeedbackConfig,
    now: float,
    counts: dict[str, int],
    ctx: dict[str, Any],
) -> None:
    mail_id = _mail_id(message)
    bounce = _obj(message, "bounce")
    recipients = _list(bounce, "bouncedRecipients")
    bounce_type = bounce.get("bounceType")
    if not isinstance(bounce_type, str) or not bounce_type:
        raise _MalformedError("bounce.bounceType missing")
    base = _detail(
        bounceType=bounce_type,
        bounceSubType=bounce.get("bounceSubType"),
        feedbackId=bounce.get("feedbackId"),
        event_time=bounce.get("timestamp"),
        reportingMTA=bounce.get("reportingMTA"),
        remoteMtaIp=bounce.get("remoteMtaIp"),
    )
    ctx = {**ctx, "ses_message_id": mail_id, "bounce_type": base.get("bounceType", "")}
    ctx["bounce_subtype"] = base.get("bounceSubType", "")
    entries: list[tuple[str, dict[str, str]]] = []
    seen: set[str] = set()
    for entry in _capped(recipients, counts, ctx):
        address = _address(entry.get("emailAddress") if isinstance(entry, dict) else None)
        if address is None:
            counts["invalid_recipient"] += 1
            log("feedback_recipient_invalid", level="warning", **ctx)
            continue
        if address.lower() in seen:
            continue  # listed twice (maybe in different case): one decision per address
        seen.add(address.lower())
        detail = dict(base)
        detail.update(
            _detail(
                status=entry.get("status"),
                action=entry.get("action"),
                diagnosticCode=entry.get("diagnosticCode"),
            )
        )
        entries.append((address, detail))

    if bounce_type == "Permanent":
        _suppress_all(
            store, entries, "bounce", "bounce_permanent", mail_id, now, counts, ctx, config
        )
        return

    # Transient, Undetermined (and any bounce type SES may add): a soft signal. Count it
    # per address; only a run of them suppresses, and only temporarily.
    bucket = "transient" if bounce_type == "Transient" else "undetermined"
    for address, detail in entries:
        crossed = store.record_transient(
            address,
            mail_id,
            now,
            limit=config.transient_limit,
            window_seconds=config.transient_window_seconds,
            suppress_seconds=config.temporary_suppression_seconds,
            detail=detail,
        )
        counts[bucket] += 1
        if crossed:
            counts["temporarily_suppressed"] += 1
            _watch(address, "transient", config, ctx)
            metric("Suppressions", reason="transient")
        log(
            "feedback_decision",
            action="suppress_temporarily" if crossed else "count_soft_bounce",
            reason=bucket,
            email=mask_email(address),
            **ctx,
        )
    _decision(f"bounce_{bucket}", recipients=len(entries), **ctx)


def _complaint(
    message: dict[str, Any],
    store: SuppressionStore,
    config: FeedbackConfig,
    now: float,
    counts: dict[str, int],
    ctx: dict[str, Any],
) -> None:
    mail_id = _mail_id(message)
    complaint = _obj(message, "complaint")
    recipients = _list(complaint, "complainedRecipients")
    feedback_type = complaint.get("complaintFeedbackType")  # optional
    detail = _detail(
        complaintFeedbackType=feedback_type,
        complaintSubType=complaint.get("complaintSubType"),
        feedbackId=complaint.get("feedbackId"),
        userAgent=complaint.get("userAgent"),
        event_time=complaint.get("timestamp"),
    )
    ctx = {
        **ctx,
        "ses_message_id": mail_id,
        "feedback_type": detail.get("complaintFeedbackType", ""),
    }
    addresses: list[str] = []
    for entry in _capped(recipients, counts, ctx):
        address = _address(entry.get("emailAddress") if isinstance(entry, dict) else None)
        if address is None:
            counts["invalid_recipient"] += 1
            log("feedback_recipient_invalid", level="warning", **ctx)
        else:
            addresses.append(address)
    if feedback_type == "not-spam":
        # RFC 5965: the reporter says this mail is NOT spam (it corrects an earlier report).
        counts["not_spam"] += len(addresses)
        _decision("complaint_not_spam", recipients=len(addresses), **ctx)
        return
    entries = [(a, detail) for a in addresses]
    _suppress_all(store, entries, "complaint", "complaint", mail_id, now, counts, ctx, config)


def _watch(address: str, reason: str, config: FeedbackConfig, ctx: dict[str, Any]) -> None:
    """A merchant address was just suppressed: order alerts to it stop. Loud, alarmed."""
    from chalicelib.identity import canonical_or_lower

    if canonical_or_lower(address) in config.watched:
        log("merchant_address_suppressed", "error", reason=reason, email=mask_email(address), **ctx)
        metric("MerchantAddressSuppressed")


def _suppress_all(
    store: SuppressionStore,
    entries: list[tuple[str, dict[str, str]]],
    reason: str,
    decision: str,
    mail_id: str,
    now: float,
    counts: dict[str, int],
    ctx: dict[str, Any],
    config: FeedbackConfig,
) -> None:
    """Permanently suppress every address; one log line each, one metric for the batch."""
    written = store.suppress_many(entries, reason, mail_id, now)
    counts["suppressed"] += len(written)
    for address in written:
        log("feedback_decision", action="suppress", reason=reason, email=mask_email(address), **ctx)
        _watch(address, reason, config, ctx)
    _decision(decision, recipients=len(written), **ctx)
    if written:
        metric("Suppressions", value=len(written), reason=reason)


def _delivery(
    message: dict[str, Any],
    on_delivery: DeliverySink,
    now: float,
    counts: dict[str, int],
    ctx: dict[str, Any],
) -> None:
    mail_id = _mail_id(message)
    delivery = _obj(message, "delivery")
    recipients = _list(delivery, "recipients")
    mail = message["mail"]
    when = _epoch(delivery.get("timestamp")) or _epoch(mail.get("timestamp")) or now
    ctx = {**ctx, "ses_message_id": mail_id}
    recipients = _capped(recipients, counts, ctx)
    for raw in recipients:
        address = _address(raw)
        if address is None:
            counts["invalid_recipient"] += 1
            log("feedback_recipient_invalid", level="warning", **ctx)
            continue
        counts["delivery"] += 1
        try:
            matched = bool(on_delivery(mail_id, address, when, **message_ref(message)))
        except Exception as exc:  # noqa: BLE001 - the sink failing must not lose other recipients
            counts["error"] += 1
            log(
                "feedback_delivery_sink_failed",
                level="error",
                error=type(exc).__name__,
                email=mask_email(address),
                **ctx,
            )
            continue
        if not matched:
            counts["delivery_unmatched"] += 1
        log(
            "feedback_decision",
            action="record_delivery",
            matched=matched,
            email=mask_email(address),
            **ctx,
        )
    _decision("delivery", recipients=len(recipients), **ctx)


def _problem(
    message: dict[str, Any],
    part: str,
    list_name: str,
    status: str,
    on_problem: ProblemSink | None,
    now: float,
    ctx: dict[str, Any],
) -> None:
    """Record a permanent bounce / a complaint on the order email it answers (the back
    office shows each email's status). The suppression is already written; a failing sink
    raises so the event is retried (re-processing is idempotent)."""
    if on_problem is None:
        return
    mail_id = _mail_id(message)
    obj = _obj(message, part)
    when = _epoch(obj.get("timestamp")) or now
    for entry in _list(obj, list_name)[:MAX_RECIPIENTS]:
        address = _address(entry.get("emailAddress") if isinstance(entry, dict) else None)
        if address is None:
            continue
        matched = bool(on_problem(mail_id, address, status, when, **message_ref(message)))
        log("feedback_decision", action=f"record_{status}", matched=matched,
            email=mask_email(address), **ctx)  # fmt: skip


# -- parsing helpers ---------------------------------------------------------------------------


def _obj(message: dict[str, Any], name: str) -> dict[str, Any]:
    value = message.get(name)
    if not isinstance(value, dict):
        raise _MalformedError(f"{name} object missing")
    return value


def _list(obj: dict[str, Any], name: str) -> list[Any]:
    value = obj.get(name)
    if not isinstance(value, list) or not value:
        raise _MalformedError(f"{name} missing or empty")
    return value


def message_ref(message: dict[str, Any]) -> dict[str, str]:
    """The order and email a notification is about, from the SES tags we send every email
    with (`mail.tags`: name -> [values]): {"order_id": ..., "role": ...}, or {} when the
    message has none or they don't look like ours (then the message-id index is asked)."""
    mail = message.get("mail")
    tags = mail.get("tags") if isinstance(mail, dict) else None
    if not isinstance(tags, dict):
        return {}

    def one(name: str) -> str:
        values = tags.get(name)
        value = values[0] if isinstance(values, list) and len(values) == 1 else None
        return value if isinstance(value, str) else ""

    order_id, role = one(TAG_ORDER), one(TAG_EMAIL)
    if not is_order_id(order_id) or not _is_role(role):
        return {}
    return {"order_id": order_id, "role": role}


def _is_role(role: str) -> bool:
    if role in ("merchant", "customer"):
        return True
    rest = role.removeprefix("status_")
    return (
        rest != role and 0 < len(rest) <= 40 and rest.replace("_", "").isalpha() and rest.islower()
    )


def _mail_id(message: dict[str, Any]) -> str:
    mail = message.get("mail")
    mail_id = mail.get("messageId") if isinstance(mail, dict) else None
    if not isinstance(mail_id, str) or not mail_id:
        raise _MalformedError("mail.messageId missing")
    if len(mail_id) > MAX_MESSAGE_ID or not mail_id.isprintable():
        raise _MalformedError("mail.messageId is not an SES message id")
    return mail_id


def _address(raw: Any) -> str | None:
    """The bare address from `x@y` or `"Name" <x@y>`, or None when it isn't one."""
    if not isinstance(raw, str):
        return None
    address = parseaddr(raw)[1].strip()
    local, at, domain = address.rpartition("@")
    if not at or not local or "." not in domain or len(address) > MAX_ADDRESS:
        return None
    if not address.isprintable() or any(c.isspace() for c in address):
        return None
    return address


def _capped(recipients: list[Any], counts: dict[str, int], ctx: dict[str, Any]) -> list[Any]:
    """At most MAX_RECIPIENTS entries; the rest are counted, logged once and ignored."""
    if len(recipients) <= MAX_RECIPIENTS:
        return recipients
    ignored = len(recipients) - MAX_RECIPIENTS
    counts["recipients_ignored"] += ignored
    log(
        "feedback_recipients_capped",
        level="warning",
        listed=len(recipients),
        kept=MAX_RECIPIENTS,
        ignored=ignored,
        **ctx,
    )
    return recipients[:MAX_RECIPIENTS]


def _cap(value: Any, limit: int) -> str | None:
    """A scalar as text of at most `limit` characters, control characters as spaces;
    None for absent, empty or non-scalar values (an object where a string belongs)."""
    if value is None or isinstance(value, (dict, list)):
        return None
    text = value if isinstance(value, str) else str(value)
    if len(text) > 4 * limit:
        text = text[: 4 * limit]  # bound the work below on a huge value
    text = "".join(c if c.isprintable() else " " for c in text).strip()
    if not text:
        return None
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _detail(**fields: Any) -> dict[str, str]:
    """Only the fields that are present, as capped strings (DynamoDB map of S)."""
    out: dict[str, str] = {}
    for name, value in fields.items():
        text = _cap(value, FIELD_MAX.get(name, DEFAULT_FIELD_MAX))
        if text is not None:
            out[name] = text
    return out


def _epoch(value: Any) -> float | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
