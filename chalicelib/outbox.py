"""Sending the two emails of an order, and the sweeper that retries what is still pending.

Every send is preceded by a claim (a lease written with a conditional update), so two
workers never send the same email at once. The one unavoidable at-least-once window: SES
accepted the message and this process died before `record_send` stored the message id; once
the lease expires, the sweeper sends that email again. The window is one SES call plus one
DynamoDB write long (tens of milliseconds), and the lease is longer than the longest possible
SES call (botocore timeouts x attempts), so a slow send is never duplicated by a sweeper.
"""

from __future__ import annotations

import time
from typing import Any

from chalicelib import clock
from chalicelib.obs import log, mask_email, metric
from chalicelib.store import ROLES

RETRYABLE_STATUSES = ("pending", "failed", "sending")


def _recipient(order: dict[str, Any], role: str, merchant_email: str) -> str:
    return merchant_email if role == "merchant" else str(order["customer"]["email"])


def backoff(attempts: int, base: int) -> int:
    """Seconds to wait before retry number `attempts` (1, 2, 4, 8... x base, capped at 6 h)."""
    return int(min(base * (2 ** max(0, attempts - 1)), 6 * 3600))


def deliver(svc: Any, order: dict[str, Any], role: str, verified: tuple[str, ...] = ()) -> str:
    """Send one already-claimed email; record the outcome. Returns the new status."""
    from chalicelib.mail import SendError, render

    s = svc.settings
    oid = order["order_id"]
    to = _recipient(order, role, s.merchant_email)
    now = int(clock.now().timestamp())
    attempts = int(order.get("emails", {}).get(role, {}).get("attempts", 0)) + 1
    if to not in verified and svc.suppression.is_suppressed(to, now):
        svc.store.record_send(oid, role, status="suppressed", now=now, reason="suppressed")
        level = "error" if role == "merchant" else "warning"
        log("email_suppressed", level, order_id=oid, role=role, to=mask_email(to))
        metric("EmailSuppressed", role=role)
        return "suppressed"
    try:
        email = render(order, role, shop_name=s.shop_name, merchant_email=s.merchant_email)
        message_id = svc.mailer.send(email)
    except SendError as e:
        give_up = not e.retryable or attempts >= s.outbox_max_attempts
        nxt = now + max(s.outbox_grace_seconds, backoff(attempts, s.outbox_backoff_base_seconds))
        svc.store.record_send(
            oid,
            role,
            status="failed",
            now=now,
            reason=e.reason,
            retryable=not give_up,
            next_due=None if give_up else nxt,
        )
        log(
            "email_failed",
            "error",
            order_id=oid,
            role=role,
            reason=e.reason,
            retryable=not give_up,
            attempts=attempts,
        )
        metric("EmailFailed", role=role, retryable=str(not give_up).lower())
        if give_up and e.retryable:
            metric("OutboxFailedForGood")  # dimensionless: the alarm watches exactly this
        return "failed"
    except ValueError as e:  # an unsafe header value: never retried
        svc.store.record_send(oid, role, status="failed", now=now, reason=str(e))
        log("email_failed", "error", order_id=oid, role=role, reason=str(e), retryable=False)
        metric("EmailFailed", role=role, retryable="false")
        return "failed"
    svc.store.record_send(oid, role, status="sent", now=now, message_id=message_id)
    log(
        "email_sent",
        order_id=oid,
        role=role,
        to=mask_email(to),
        message_id=message_id,
        attempts=attempts,
    )
    metric("EmailSent", role=role)
    return "sent"


def send_emails(
    svc: Any, order: dict[str, Any], roles: tuple[str, ...] = ROLES, verified: tuple[str, ...] = ()
) -> dict[str, str]:
    """Send the (claimed) emails of a stored order concurrently; record each outcome.

    `verified`: addresses already checked against the suppression list by the caller.
    """
    from chalicelib.checkout import executor

    futures = {role: executor().submit(deliver, svc, order, role, verified) for role in roles}
    results: dict[str, str] = {}
    for role, fut in futures.items():
        try:
            results[role] = fut.result()
        except Exception as e:  # noqa: BLE001 - the order stands; after the lease the sweeper retries
            log(
                "email_status_unrecorded",
                "error",
                order_id=order["order_id"],
                role=role,
                reason=f"{type(e).__name__}: {str(e)[:200]}",
            )
            metric("EmailStatusUnrecorded", role=role)
            results[role] = "unknown"
    try:
        svc.store.close_outbox_if_done(order["order_id"])
    except Exception as e:  # noqa: BLE001 - harmless: the sweeper closes it later
        log("outbox_close_failed", "warning", order_id=order["order_id"], error=type(e).__name__)
    return results


def _claimable(state: dict[str, Any], now: int, max_attempts: int) -> bool:
    status = state.get("status")
    if status == "pending":
        return True
    if status == "failed":
        return bool(state.get("retryable")) and int(state.get("attempts", 0)) < max_attempts
    if status == "sending":  # a crashed or timed-out sender: its lease has run out
        return int(state.get("lease_until", 0)) < now
    return False


def sweep(svc: Any, limit: int = 100) -> dict[str, int]:
    """One pass over the outbox: claim and send every due email. Safe to run concurrently."""
    s = svc.settings
    started = time.perf_counter()
    now = int(clock.now().timestamp())
    counts = {"orders": 0, "claimed": 0, "lost_race": 0, "sent": 0, "failed": 0, "suppressed": 0}
    for oid in svc.store.outbox_due(now, limit):
        order = svc.store.get_order(oid)
        if order is None:
            continue
        counts["orders"] += 1
        claimed: list[str] = []
        for role in ROLES:
            state = order.get("emails", {}).get(role, {})
            if not _claimable(state, now, s.outbox_max_attempts):
                continue
            if svc.store.claim(oid, role, state, now, s.outbox_lease_seconds):
                claimed.append(role)
            else:
                counts["lost_race"] += 1
        counts["claimed"] += len(claimed)
        if claimed:
            for status in send_emails(svc, order, tuple(claimed)).values():
                if status in counts:
                    counts[status] += 1
        else:
            svc.store.close_outbox_if_done(oid)
    log("outbox_swept", ms=round((time.perf_counter() - started) * 1000, 1), counts=counts)
    return counts
