"""Sending the emails of an order, and the sweeper that retries what is still pending.

Every send is preceded by a claim (a lease written with a conditional update: by the
order-create transaction for a new order, by `OrderStore.claim` in the sweeper), so two
workers never send the same email at once. Both sends of one pass are recorded in one write
(`OrderStore.record_sends`). The one at-least-once window: SES accepted the message and this
process died before that write stored the message id; once the lease expires, the sweeper
sends that email again. The lease is longer than the longest possible SES call (botocore
timeouts x attempts), so a slow send is never duplicated by a sweeper.

Suppression is checked before every send. The request path passes what its create
transaction checked (`known`: lower-cased address -> suppressed?); the sweeper reads it.
"""

from __future__ import annotations

import time
from concurrent.futures import Future
from dataclasses import replace
from typing import Any

from chalicelib import clock
from chalicelib.obs import log, mask_email, metric
from chalicelib.store import ROLES, TAG_EMAIL, TAG_ORDER, SendOutcome, StoreUnavailable


def backoff(attempts: int, base: int) -> int:
    """Seconds to wait before retry number `attempts` (1, 2, 4, 8... x base, capped at 6 h)."""
    return int(min(base * (2 ** max(0, attempts - 1)), 6 * 3600))


def _suppressed(svc: Any, address: str, now: int, known: dict[str, bool] | None) -> bool:
    if known is not None and address.lower() in known:
        return known[address.lower()]
    return bool(svc.suppression.is_suppressed(address, now))


def recipients(
    svc: Any, order: dict[str, Any], role: str, now: int, known: dict[str, bool] | None
) -> list[str]:
    """Who gets `role`'s email, suppressed addresses left out (logged: a suppressed merchant
    address is an error with its own metric and alarm)."""
    if role == "merchant":
        wanted = list(svc.settings.merchant_emails)
    else:  # the receipt and every status email go to the customer
        wanted = [str(order["customer"]["email"])]
    keep = []
    for address in wanted:
        if not _suppressed(svc, address, now, known):
            keep.append(address)
            continue
        level = "error" if role == "merchant" else "warning"
        log(
            "email_suppressed", level, order_id=order["order_id"], role=role, to=mask_email(address)
        )
        metric("EmailSuppressed", role=role)
        if role == "merchant":
            metric("MerchantAddressSuppressed")
    return keep


def render_email(svc: Any, order: dict[str, Any], role: str, now: int) -> Any:
    """The email of `role`: the merchant alert (with one signed link per next action), the
    receipt or a status email (with the shopper's read-only status link)."""
    from chalicelib import links
    from chalicelib.mail import render
    from chalicelib.status_mail import render_status

    s = svc.settings
    oid = str(order["order_id"])
    key = svc.link_secret
    if not key:  # a misconfigured stage: the email still goes out, without links
        log("link_secret_missing", "error", order_id=oid, role=role)
    status_url = links.status_link(oid, s.public_base_url, key, now) if key else ""
    if role.startswith("status_"):
        return render_status(
            order,
            role.removeprefix("status_"),
            shop_name=s.shop_name,
            merchant_email=s.merchant_email,
            status_url=status_url,
        )
    actions = {}
    if role == "merchant" and key:
        status = str(order.get("status") or "accepted")
        actions = links.action_links(oid, status, s.public_base_url, key, now, s.link_ttl_days)
    return render(
        order,
        role,
        shop_name=s.shop_name,
        merchant_email=s.merchant_email,
        actions=actions,
        status_url=status_url,
    )


def message_tags(order_id: str, role: str) -> tuple[tuple[str, str], ...]:
    """The SES tags naming the order and the email (feedback.message_ref reads them back)."""
    return ((TAG_ORDER, order_id), (TAG_EMAIL, role))


def deliver(
    svc: Any, order: dict[str, Any], role: str, now: int, known: dict[str, bool] | None = None
) -> SendOutcome:
    """Send one already-claimed email; returns the outcome (recorded by the caller)."""
    from chalicelib.mail import SendError

    s = svc.settings
    oid = order["order_id"]
    attempts = int(order.get("emails", {}).get(role, {}).get("attempts", 0)) + 1
    to = recipients(svc, order, role, now, known)
    if not to:
        return SendOutcome("suppressed", reason="suppressed")
    try:
        email = replace(render_email(svc, order, role, now), tags=message_tags(oid, role))
        if role == "merchant":
            email = email.addressed_to(to)
        message_id = svc.mailer.send(email)
    except SendError as e:
        give_up = not e.retryable or attempts >= s.outbox_max_attempts
        nxt = now + max(s.outbox_grace_seconds, backoff(attempts, s.outbox_backoff_base_seconds))
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
        return SendOutcome(
            "failed", reason=e.reason, retryable=not give_up, next_due=None if give_up else nxt
        )
    except ValueError as e:  # an unsafe header value: never retried
        log("email_failed", "error", order_id=oid, role=role, reason=str(e), retryable=False)
        metric("EmailFailed", role=role, retryable="false")
        return SendOutcome("failed", reason=str(e))
    log(
        "email_sent",
        order_id=oid,
        role=role,
        to=",".join(mask_email(a) for a in to),
        message_id=message_id,
        attempts=attempts,
    )
    metric("EmailSent", role=role)
    return SendOutcome("sent", message_id=message_id)


def send_emails(
    svc: Any,
    order: dict[str, Any],
    roles: tuple[str, ...] = ROLES,
    known: dict[str, bool] | None = None,
    deadline: float | None = None,
) -> dict[str, str]:
    """Send the (claimed) emails of a stored order concurrently; record them in one write.

    Returns role -> status ("unknown" when the outcome could not be recorded: the lease
    runs out and the sweeper finishes the job).
    """
    now = int(clock.now().timestamp())
    futures: dict[str, Future[SendOutcome]] = {
        role: svc.pool.submit(deliver, svc, order, role, now, known) for role in roles
    }
    outcomes: dict[str, SendOutcome] = {}
    for role, fut in futures.items():
        wait = None if deadline is None else max(0.0, deadline - time.perf_counter())
        try:
            outcomes[role] = fut.result(timeout=wait)
        except TimeoutError:  # still sending at the deadline: answer now, record it when done
            log("email_send_deferred", "warning", order_id=order["order_id"], role=role)
            metric("EmailSendDeferred", role=role)
            fut.add_done_callback(_record_later(svc, order, role, now))
        except Exception as e:  # noqa: BLE001 - the order stands; the sweeper retries after the lease
            log(
                "email_send_crashed",
                "error",
                order_id=order["order_id"],
                role=role,
                reason=f"{type(e).__name__}: {str(e)[:200]}",
            )
    try:
        if outcomes:
            svc.store.record_sends(order, outcomes, now)
    except StoreUnavailable as e:
        for role in outcomes:
            log(
                "email_status_unrecorded",
                "error",
                order_id=order["order_id"],
                role=role,
                reason=str(e)[:200],
            )
            metric("EmailStatusUnrecorded", role=role)
        return dict.fromkeys(roles, "unknown")
    return {role: outcomes[role].status if role in outcomes else "unknown" for role in roles}


def recheck_held(
    svc: Any, order: dict[str, Any], state: dict[str, Any], now: int
) -> SendOutcome | None:
    """A receipt held because its domain could not be verified: None once the domain
    verifies (send it now), else the outcome to record - still held (with the next check,
    backing off) or dropped (undeliverable, or the hold window ran out: never sent blind)."""
    from chalicelib.recipients import RecipientCheckUnavailable, Undeliverable

    s = svc.settings
    oid = order["order_id"]
    try:
        result = svc.recipients.check(str(order["customer"]["email"]))
        verified = not result.dns_unverified
    except Undeliverable as e:
        log("receipt_dropped", "warning", order_id=oid, reason=f"undeliverable_{e.reason}")
        metric("ReceiptDropped", reason="undeliverable")
        return SendOutcome("dropped", reason=f"undeliverable: {e.reason}")
    except RecipientCheckUnavailable:
        verified = False
    if verified:
        log("receipt_released", order_id=oid)
        return None
    if now - int(order.get("created_at", now)) >= s.dns_hold_hours * 3600:
        log("receipt_dropped", "warning", order_id=oid, reason="dns_unverified")
        metric("ReceiptDropped", reason="dns_unverified")
        return SendOutcome(
            "dropped",
            reason=f"dns_unverified: the domain did not answer for {s.dns_hold_hours} hours",
        )
    checks = int(state.get("attempts", 0)) + 1
    nxt = now + backoff(checks, s.dns_recheck_seconds)
    log("receipt_held", order_id=oid, checks=checks, next_check=nxt)
    return SendOutcome("held", reason="dns_unverified", next_due=nxt)


def _record_later(svc: Any, order: dict[str, Any], role: str, now: int) -> Any:
    """Record a send that outlived its request once it finishes (if this process lives that
    long; otherwise its lease runs out and the sweeper finishes the job)."""

    def record(fut: Future[SendOutcome]) -> None:
        try:
            svc.store.record_sends(order, {role: fut.result()}, now)
        except Exception as e:  # noqa: BLE001 - the lease and the sweeper cover this
            log(
                "email_status_unrecorded",
                "error",
                order_id=order["order_id"],
                role=role,
                reason=f"{type(e).__name__}: {str(e)[:200]}",
            )

    return record


def _claimable(state: dict[str, Any], now: int, max_attempts: int) -> bool:
    status = state.get("status")
    if status == "pending":
        return True
    if status == "failed":
        return bool(state.get("retryable")) and int(state.get("attempts", 0)) < max_attempts
    if status == "sending":  # a crashed or timed-out sender: its lease has run out
        return int(state.get("lease_until", 0)) < now
    return False


def sweep(svc: Any, limit: int = 100, budget_seconds: float | None = None) -> dict[str, int]:
    """One pass over the outbox: claim and send every due email. Safe to run concurrently.

    `budget_seconds` stops taking new orders once spent (the Lambda's own deadline)."""
    s = svc.settings
    started = time.perf_counter()
    now = int(clock.now().timestamp())
    counts = {"orders": 0, "claimed": 0, "lost_race": 0, "sent": 0, "failed": 0, "suppressed": 0}
    for oid in svc.store.outbox_due(now, limit):
        if budget_seconds is not None and time.perf_counter() - started > budget_seconds:
            counts["out_of_time"] = 1
            break
        order = svc.store.get_order(oid)
        if order is None:
            continue
        # the time of *this* order: a pass can outlast a lease, and a lease granted from the
        # pass's start could already have run out (a second sweeper would then send too)
        now = int(clock.now().timestamp())
        counts["orders"] += 1
        claimed: list[str] = []
        for role, state in dict(order.get("emails", {})).items():
            if state.get("status") == "held":
                if int(state.get("check_at", 0)) > now:
                    continue
                still = recheck_held(svc, order, state, now)
                if still is not None:
                    svc.store.record_sends(order, {role: still}, now)
                    counts[still.status] = counts.get(still.status, 0) + 1
                    continue
            elif not _claimable(state, now, s.outbox_max_attempts):
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
            svc.store.close_outbox_if_done(oid, tuple(order.get("emails", {})))
    log("outbox_swept", ms=round((time.perf_counter() - started) * 1000, 1), counts=counts)
    return counts
