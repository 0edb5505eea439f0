"""The customer's status emails (confirmed, out for delivery, delivered, cancelled).

Rendered like the receipt (Jinja2; HTML autoescaped, text plain) from
`templates/status_<status>.{txt,html}`, each with the link to the shopper's status page.
Returns chalicelib.mail.Email with role `status_<status>` (the outbox keys emails by role;
the recipient is the customer, Reply-To the merchant).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chalicelib.delivery import human_day
from chalicelib.mail import Email, _environment, safe_header

STATUS_EMAILS = ("confirmed", "out_for_delivery", "delivered", "cancelled")
SUBJECTS = {
    "confirmed": "Your {shop} order {oid} is confirmed",
    "out_for_delivery": "Your {shop} order {oid} is on its way",
    "delivered": "Your {shop} order {oid} was delivered",
    "cancelled": "Your {shop} order {oid} was cancelled",
}


def role_for(status: str) -> str:
    return f"status_{status}"


def _reason(order: Mapping[str, Any]) -> str:
    """The reason recorded with the (last) cancellation, if any."""
    for h in reversed(order.get("history") or []):
        if isinstance(h, Mapping) and h.get("status") == "cancelled":
            return str(h.get("reason") or "")
    return ""


def render_status(
    order: Mapping[str, Any],
    status: str,
    *,
    shop_name: str,
    merchant_email: str,
    status_url: str,
    reason: str | None = None,
) -> Email:
    """The email telling the customer their order is now `status`. The cancel reason is taken
    from the order's history unless given."""
    if status not in STATUS_EMAILS:
        raise ValueError(f"no status email for {status!r}")
    oid = safe_header(str(order["order_id"]))
    subject = SUBJECTS[status].format(shop=shop_name, oid=oid)
    day = ""
    if order.get("delivery_day"):
        try:
            day = human_day(str(order["delivery_day"]))
        except ValueError:
            day = ""
    ctx = {
        "order": order,
        "shop_name": shop_name,
        "subject": subject,
        "status_url": status_url,
        "day": day,
        "reason": (reason if reason is not None else _reason(order))
        if status == "cancelled"
        else "",
    }
    env = _environment()
    return Email(
        role=role_for(status),
        to=safe_header(str(order["customer"]["email"])),
        reply_to=safe_header(merchant_email),
        subject=safe_header(subject),
        text=env.get_template(f"status_{status}.txt").render(ctx),
        html=env.get_template(f"status_{status}.html").render(ctx),
    )
