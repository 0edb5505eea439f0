"""Keep bots and undeliverable addresses away from SES.

The guard's pieces for `checkout`: where the caller's IP comes from, the CloudFront origin
check, the honeypot's fake answer, and what Turnstile's and the recipient check's outcomes
mean. Every refusal goes through `errors.reject` (one log line, address masked, and the EMF
metric `OrderRejected{reason}`).
"""

from __future__ import annotations

import random
import time
from typing import Any

from chalicelib import errors, ids
from chalicelib.errors import reject
from chalicelib.obs import log, mask_email, metric
from chalicelib.orders import OrderRequest


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
        raise reject(errors.forbidden(), "origin_not_verified")
    return True


def honeypot_response(req: OrderRequest) -> dict[str, Any]:
    """A believable 201 for a bot that filled the hidden field: nothing stored or sent."""
    time.sleep(random.uniform(0.05, 0.2))  # nosec B311  # timing jitter
    reject(errors.validation_failed({}), "honeypot", email=mask_email(req.email))
    return {
        "order_id": ids.new_order_id(),
        "status": "accepted",
        "items": req.lines_as_dicts(),
        "subtotal_cents": req.subtotal_cents,
        "delivery_fee_cents": req.delivery_fee_cents,
        "total_cents": req.total_cents,
        "currency": req.currency,
        "delivery_day": _plausible_day(),
    }


def _plausible_day() -> str | None:
    """The earliest day the rules allow (a real 201 names one); no read, nothing reserved."""
    from chalicelib import clock
    from chalicelib.delivery import choosable_days
    from chalicelib.shop import load_shop

    days = choosable_days(clock.now(), load_shop().delivery_rules())
    return days[0].isoformat() if days else None


def bot_verdict(error: BaseException | None, email: str) -> None:
    """Turnstile's outcome (the exception `verify` raised, or None) -> raise the refusal."""
    from chalicelib.turnstile import BotCheckFailed, BotCheckUnavailable

    if error is None:
        return
    if isinstance(error, BotCheckFailed):
        raise reject(errors.bot_check_failed(list(error.codes)), email=mask_email(email))
    if isinstance(error, BotCheckUnavailable):
        raise reject(errors.service_unavailable(5, "turnstile"), "bot_check_unavailable")
    raise error


def recipient_verdict(result: Any, error: BaseException | None, email: str) -> list[str]:
    """The recipient check's outcome -> order flags (e.g. `dns_unverified`), or the refusal."""
    from chalicelib.recipients import RecipientCheckUnavailable, Undeliverable

    if isinstance(error, Undeliverable):
        raise reject(
            errors.email_undeliverable(
                "We can't deliver email to this address. Please check it or use another.",
                error.message,
                error.reason,
            ),
            email=mask_email(email),
        )
    if isinstance(error, RecipientCheckUnavailable):
        raise reject(errors.service_unavailable(5, "dns"), "dns_unavailable")
    if error is not None:
        raise error
    if result is not None and result.dns_unverified:
        log("recipient_dns_unverified", email=mask_email(email))
        metric("RecipientDnsUnverified")
        return ["dns_unverified"]
    return []
