"""The HTML pages behind the email links (Jinja2, autoescaped; no script, no inline style).

Every function returns `(status_code, html)`. Pages link `/css/pages.css` from the site and
work without JavaScript under the site's CSP. Forms post back to the page's own URL (no
`action` attribute), so the same page works under `/api/o/...` (CloudFront) and `/o/...`.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from chalicelib.delivery import day_label, moment_label
from chalicelib.lifecycle import MAX_REASON_LENGTH
from chalicelib.mail import money

TEMPLATES = Path(__file__).parent / "templates" / "pages"

Page = tuple[int, str]

STATUS_LABELS = {
    "accepted": "Received",
    "confirmed": "Confirmed",
    "out_for_delivery": "Out for delivery",
    "delivered": "Delivered",
    "cancelled": "Cancelled",
}
# action -> (question, button, done sentence fragment "is now ...")
ACTION_TEXT = {
    "confirm": ("Confirm order {oid}?", "Confirm order", "confirmed"),
    "dispatch": ("Mark order {oid} as out for delivery?", "Mark as out for delivery",
                 "out for delivery"),
    "deliver": ("Mark order {oid} as delivered?", "Mark as delivered", "delivered"),
    "cancel": ("Cancel order {oid}?", "Cancel order", "cancelled"),
}  # fmt: skip
REFUSALS = {
    "expired": ("This link has expired", "Links in order emails work for a limited time."),
}
DEFAULT_REFUSAL = ("This link can't be used", "The link is incomplete or not valid.")


def status_label(status: str) -> str:
    return STATUS_LABELS.get(status, status.replace("_", " ").capitalize())


@cache
def _environment() -> Any:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["money"] = money
    env.filters["day"] = day_label
    env.filters["label"] = status_label
    return env


def _render(name: str, status: int, *, shop_name: str, **ctx: Any) -> Page:
    html = _environment().get_template(name).render(shop_name=shop_name, **ctx)
    return status, html


def _order_ctx(order: Mapping[str, Any], tz: str) -> dict[str, Any]:
    history = [
        {**h, "when": moment_label(h.get("at"), tz)}
        for h in order.get("history") or []
        if isinstance(h, Mapping)
    ]
    return {"order": order, "placed": moment_label(order.get("created_at"), tz), "history": history}


def _actions(links: Mapping[str, str] | None) -> list[dict[str, str]]:
    return [
        {"href": href, "label": ACTION_TEXT[a][1]}
        for a, href in (links or {}).items()
        if a in ACTION_TEXT
    ]


def confirm_page(
    order: Mapping[str, Any], action: str, *, shop_name: str, tz: str, error: str = ""
) -> Page:
    """GET /o/{token}: the question, the order's summary and a POST form (changes nothing)."""
    question, button, _ = ACTION_TEXT[action]
    return _render(
        "confirm.html",
        200 if not error else 400,
        shop_name=shop_name,
        title=question.format(oid=order["order_id"]),
        action=action,
        button=button,
        max_reason=MAX_REASON_LENGTH,
        error=error,
        **_order_ctx(order, tz),
    )


def done_page(
    order: Mapping[str, Any],
    action: str,
    *,
    shop_name: str,
    tz: str,
    links: Mapping[str, str] | None = None,
    already: bool = False,
) -> Page:
    """After the POST: done (or already done before: `already`), with the next actions."""
    state = ACTION_TEXT[action][2]
    oid = order["order_id"]
    title = f"Order {oid} was already {state}" if already else f"Order {oid} is now {state}"
    return _render(
        "done.html",
        200,
        shop_name=shop_name,
        title=title,
        already=already,
        actions=_actions(links),
        **_order_ctx(order, tz),
    )


def already_page(
    order: Mapping[str, Any],
    action: str,
    *,
    shop_name: str,
    tz: str,
    links: Mapping[str, str] | None = None,
) -> Page:
    return done_page(order, action, shop_name=shop_name, tz=tz, links=links, already=True)


def conflict_page(
    order: Mapping[str, Any],
    action: str,
    *,
    shop_name: str,
    tz: str,
    links: Mapping[str, str] | None = None,
) -> Page:
    """409: the action is not possible from the order's current status."""
    verb = {"confirm": "confirmed", "dispatch": "sent out for delivery",
            "deliver": "marked as delivered", "cancel": "cancelled"}[action]  # fmt: skip
    return _render(
        "conflict.html",
        409,
        shop_name=shop_name,
        title=f"Order {order['order_id']} can't be {verb}",
        actions=_actions(links),
        **_order_ctx(order, tz),
    )


def refused_page(reason: str, *, shop_name: str) -> Page:
    """403: tampered, expired, wrong purpose or wrong action (nothing changed)."""
    title, message = REFUSALS.get(reason, DEFAULT_REFUSAL)
    return _render("error.html", 403, shop_name=shop_name, title=title, message=message)


def error_page(status: int, *, shop_name: str, title: str = "", message: str = "") -> Page:
    """404 (no such order), 400/413 (bad form), 503 (try again) and friends."""
    default = {
        400: ("That didn't work", "The form was incomplete or not valid. Go back and try again."),
        404: ("Order not found", "There is no order behind this link."),
        413: ("That was too much", "The form was too large. Go back and shorten it."),
        503: ("Please try again", "We can't reach our order system right now."),
    }.get(status, ("Something went wrong", "Please try again later."))
    return _render(
        "error.html",
        status,
        shop_name=shop_name,
        title=title or default[0],
        message=message or default[1],
    )


def status_page(order: Mapping[str, Any], *, shop_name: str, tz: str) -> Page:
    """GET /s/{token}: the shopper's read-only view. Only what the shopper's own emails say:
    status, history (with the cancel reason), items, totals, delivery day, name + address."""
    shown = {
        "order_id": order.get("order_id", ""),
        "status": order.get("status", "accepted"),
        "delivery_day": order.get("delivery_day", ""),
        "created_at": order.get("created_at"),
        "items": order.get("items") or [],
        "subtotal_cents": order.get("subtotal_cents"),
        "delivery_fee_cents": order.get("delivery_fee_cents"),
        "total_cents": order.get("total_cents", 0),
        "customer": {"name": (order.get("customer") or {}).get("name", "")},
        "shipping": order.get("shipping") or {},
        "history": [
            {k: h[k] for k in ("status", "at", "reason") if k in h}
            for h in order.get("history") or []
            if isinstance(h, Mapping)
        ],
    }
    return _render(
        "status.html",
        200,
        shop_name=shop_name,
        title=f"Your order {shown['order_id']}",
        **_order_ctx(shown, tz),
    )
