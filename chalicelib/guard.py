"""Keep bots and undeliverable addresses away from SES.

Order (after schema validation): honeypot -> rate limits -> Turnstile || recipient checks.
Each rejection: a stable error code, one log line with the reason (address masked) and an
EMF metric `OrderRejected{reason}`.
"""

from __future__ import annotations

import random
import time
from typing import Any

from chalicelib import ids
from chalicelib.errors import ApiError, service_unavailable
from chalicelib.obs import log, mask_email, metric
from chalicelib.orders import OrderRequest


def reject(reason: str, error: ApiError, **fields: Any) -> ApiError:
    log("order_rejected", reason=reason, code=error.code, **fields)
    metric("OrderRejected", reason=reason)
    return error


def client_ip(headers: dict[str, str], source_ip: str | None, trusted_edge: bool) -> str | None:
    """The caller's address as our edge saw it; never a raw X-Forwarded-For.

    Behind CloudFront (trusted_edge: the origin-verify header matched) API Gateway's sourceIp
    is a CloudFront address, so the viewer address CloudFront sets is used instead.
    """
    if trusted_edge:
        from chalicelib.edge import viewer_ip

        return viewer_ip(headers, source_ip)
    return source_ip


def require_edge(settings: Any, headers: dict[str, str]) -> bool:
    """Cloud stages: refuse requests that did not come through CloudFront (and its WAF).

    Returns True when the origin-verify header matched (the edge's headers can be trusted);
    the local stage has no CloudFront and always passes with False.
    """
    if settings.is_local:
        return False
    from chalicelib.edge import get_parameter, origin_verified

    secret = settings.origin_verify_secret
    if not secret and settings.origin_verify_param:
        secret = get_parameter(
            settings.region, settings.aws_endpoint_url, settings.origin_verify_param
        )
    if not secret:
        log("origin_verify_unconfigured", "error")
    if not secret or not origin_verified(headers, secret):
        raise reject(
            "origin_not_verified",
            ApiError(403, "forbidden", "Requests must come through the shop's website."),
        )
    return True


def honeypot_response(req: OrderRequest) -> dict[str, Any]:
    """A believable 201 for a bot that filled the hidden field: nothing stored or sent."""
    time.sleep(random.uniform(0.05, 0.2))  # nosec B311  # timing jitter
    log("order_rejected", reason="honeypot", email=mask_email(req.email))
    metric("OrderRejected", reason="honeypot")
    return {
        "order_id": ids.new_order_id(),
        "status": "accepted",
        "items": req.lines_as_dicts(),
        "subtotal_cents": req.subtotal_cents,
        "delivery_fee_cents": req.delivery_fee_cents,
        "total_cents": req.total_cents,
        "currency": req.currency,
    }


def _first_sighting(limiter: Any, marker: str, now: int, ttl: int) -> bool:
    """Record that this submission (Idempotency-Key + body) was counted; False if it was."""
    from botocore.exceptions import ClientError

    try:
        limiter.ddb.put_item(
            TableName=limiter.table,
            Item={"pk": {"S": f"rlseen#{marker}"}, "expires_at": {"N": str(now + ttl)}},
            ConditionExpression="attribute_not_exists(pk)",
        )
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            return False
        raise
    return True


def check_rate_limits(
    svc: Any, req: OrderRequest, ip: str | None, now: int, submission: str | None = None
) -> None:
    """Count this order against the per-IP and per-email windows.

    `submission` (a hash of Idempotency-Key + body) makes retries of one submission, even
    concurrent ones, count once.
    """
    from chalicelib.ratelimit import RateLimited, hashed_key

    s = svc.settings
    limiter = svc.rate_limiter
    counters = [("email", req.email.lower(), *s.rate_limit_email)]
    if ip:
        counters.insert(0, ("ip", ip, *s.rate_limit_ip))
    marker = hashed_key(submission) if submission else None
    window = max(s.rate_limit_email[1], s.rate_limit_ip[1])
    if marker and not _first_sighting(limiter, marker, now, window):
        return
    try:
        limiter.hit(counters, now)
    except RateLimited as e:
        if marker:  # a refused submission may be retried later and must be counted then
            limiter.ddb.delete_item(TableName=limiter.table, Key={"pk": {"S": f"rlseen#{marker}"}})
        wait = max(1, int(e.retry_after))
        raise reject(
            f"rate_limited_{e.scope}",
            ApiError(
                429,
                "rate_limited",
                f"Too many orders. Please try again in {_human_wait(wait)}.",
                headers={"Retry-After": str(wait)},
                extra={"retry_after": wait},
            ),
            email=mask_email(req.email),
        ) from None


def _human_wait(seconds: int) -> str:
    if seconds < 90:
        return f"{seconds} seconds"
    return f"{(seconds + 59) // 60} minutes"


def verify_human_and_recipient(
    svc: Any, req: OrderRequest, ip: str | None, idempotency_key: str | None
) -> list[str]:
    """Turnstile and the recipient checks, concurrently (latency = the slower of the two).

    Returns order flags (e.g. `dns_unverified`); raises ApiError on rejection.
    """
    from chalicelib.checkout import executor
    from chalicelib.recipients import RecipientCheckUnavailable, Undeliverable
    from chalicelib.turnstile import BotCheckFailed, BotCheckUnavailable

    bot = executor().submit(svc.turnstile.verify, req.turnstile_token, ip, idempotency_key)
    rcpt = executor().submit(svc.recipients.check, req.email)
    bot_error: Exception | None = None
    try:
        bot.result()
    except Exception as e:  # noqa: BLE001 - classified below, after both finish
        bot_error = e
    try:
        result = rcpt.result()
    except Undeliverable as e:
        if bot_error is None or not isinstance(bot_error, BotCheckFailed):
            raise reject(
                e.reason,
                ApiError(
                    422,
                    "email_undeliverable",
                    "We can't deliver email to this address. Please check it or use another.",
                    {"email": e.message},
                    extra={"reason": e.reason},
                ),
                email=mask_email(req.email),
            ) from None
        result = None
    except RecipientCheckUnavailable:
        raise reject("dns_unavailable", service_unavailable(5, "dns")) from None
    if isinstance(bot_error, BotCheckFailed):
        raise reject(
            "bot_check_failed",
            ApiError(
                403,
                "bot_check_failed",
                "We couldn't confirm you're not a robot. Please complete the check again.",
                extra={"codes": list(bot_error.codes)},
            ),
            email=mask_email(req.email),
        )
    if isinstance(bot_error, BotCheckUnavailable):
        raise reject("bot_check_unavailable", service_unavailable(5, "turnstile"))
    if bot_error is not None:
        raise bot_error
    flags = []
    if result is not None and result.dns_unverified:
        flags.append("dns_unverified")
        log("recipient_dns_unverified", email=mask_email(req.email))
        metric("RecipientDnsUnverified")
    return flags
