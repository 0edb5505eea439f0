"""The link use cases: verify the token, load the order, render a page or apply a transition.

    GET  /o/{token}  the confirm page for one order action (never changes anything)
    POST /o/{token}  performs it (form-urlencoded: `action` must match the token, `reason`)
    GET  /s/{token}  the shopper's read-only status page

Every answer is an HTML page (`Page` = status + html + headers), never a stack trace; each
decision writes one log line carrying the token's fingerprint, never the token.
"""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from chalicelib import links, pages
from chalicelib.lifecycle import (
    MAX_REASON_LENGTH,
    InvalidTransition,
    Lifecycle,
    LifecycleUnavailable,
    OrderNotFound,
    can_apply,
    target,
)
from chalicelib.obs import log
from chalicelib.tokens import fingerprint

MAX_FORM_BYTES = 8 * 1024
FORM_TYPE = "application/x-www-form-urlencoded"
PAGE_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
HTML_HEADERS = {
    "Content-Type": "text/html; charset=utf-8",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": PAGE_CSP,
}


@dataclass(frozen=True)
class Page:
    status: int
    html: str
    headers: dict[str, str] = field(default_factory=lambda: dict(HTML_HEADERS))


class FormInvalid(Exception):
    def __init__(self, status: int, message: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def clean_reason(raw: str) -> str:
    """Plain text: CRLF -> LF, other control / bidi / separator characters dropped, trimmed."""
    text = raw.replace("\r\n", "\n").replace("\r", "\n")
    kept = []
    for ch in text:
        if ch in "\n":
            kept.append(ch)
            continue
        cat = unicodedata.category(ch)
        if cat in ("Cc", "Cf", "Cs", "Zl", "Zp", "Co", "Cn"):
            continue
        kept.append(ch)
    return "".join(kept).strip()


def parse_form(body: bytes, content_type: str) -> dict[str, str]:
    """The POSTed form as {name: value}; FormInvalid(415/413/400) for anything else."""
    if content_type.split(";", 1)[0].strip().lower() != FORM_TYPE:
        raise FormInvalid(415, "The form must be sent as application/x-www-form-urlencoded.")
    if len(body) > MAX_FORM_BYTES:
        raise FormInvalid(413)
    try:
        text = body.decode("utf-8")
        fields = parse_qs(
            text, keep_blank_values=True, strict_parsing=bool(text), max_num_fields=8,
            errors="strict",
        )  # fmt: skip
    except (UnicodeDecodeError, ValueError):
        raise FormInvalid(400) from None
    if any(len(v) != 1 for v in fields.values()):
        raise FormInvalid(400)
    return {k: v[0] for k, v in fields.items()}


class Fulfilment:
    """The three link routes over one Lifecycle; everything it needs is passed in."""

    def __init__(
        self,
        lifecycle: Lifecycle,
        secret: bytes,
        *,
        shop_name: str,
        timezone: str,
        ttl_days: int = 14,
        now: Callable[[], int] | None = None,
        enqueue: Callable[[str, int], Mapping[str, Any]] | None = None,
        after_change: Callable[[dict[str, Any], str], None] | None = None,
    ) -> None:
        """`enqueue(action, now)` returns attributes written in the transition's own update
        (e.g. the status email's outbox entry); `after_change(order, action)` runs after a
        transition that changed the order (e.g. try sending that email now)."""
        self.lc = lifecycle
        self.secret = secret
        self.shop_name = shop_name
        self.tz = timezone
        self.ttl_days = ttl_days
        self._now = now or _epoch_now
        self.enqueue = enqueue
        self.after_change = after_change

    # --- helpers ----------------------------------------------------------------------------
    def _page(self, page: pages.Page) -> Page:
        return Page(page[0], page[1])

    def _error(self, status: int, **kw: str) -> Page:
        return self._page(pages.error_page(status, shop_name=self.shop_name, **kw))

    def _next_links(self, order: Mapping[str, Any], now: int) -> dict[str, str]:
        """Relative links (to sibling /o/<token> pages) for the order's next actions."""
        absolute = links.action_links(
            str(order["order_id"]), str(order.get("status", "")), "", self.secret, now,
            self.ttl_days,
        )  # fmt: skip
        return {a: url.rsplit("/", 1)[1] for a, url in absolute.items()}

    def _decide(self, event: str, token: str, outcome: str, http: int, **fields: Any) -> None:
        level = "warning" if outcome in ("refused", "error") else "info"
        log(event, level, outcome=outcome, http_status=http, token=fingerprint(token), **fields)

    def _claims(self, token: str, now: int, event: str) -> links.ActionClaims | Page:
        if not self.secret:
            self._decide(event, token, "error", 503, reason="link_secret_missing")
            return self._error(503)
        try:
            return links.parse_action_token(token, self.secret, now)
        except links.LinkRefused as e:
            self._decide(event, token, "refused", 403, reason=e.reason)
            return self._page(pages.refused_page(e.reason, shop_name=self.shop_name))

    def _load(self, token: str, order_id: str, event: str, **fields: Any) -> dict[str, Any] | Page:
        try:
            order = self.lc.get(order_id)
        except LifecycleUnavailable as e:
            self._decide(event, token, "error", 503, order_id=order_id, reason=str(e), **fields)
            return self._error(503)
        if order is None or order.get("kind", "order") != "order":
            self._decide(event, token, "not_found", 404, order_id=order_id, **fields)
            return self._error(404)
        return order

    # --- GET /o/{token} ---------------------------------------------------------------------
    def show_action(self, token: str) -> Page:
        event = "order_link_viewed"
        now = self._now()
        claims = self._claims(token, now, event)
        if isinstance(claims, Page):
            return claims
        oid, action = claims.order_id, claims.action
        order = self._load(token, oid, event, action=action)
        if isinstance(order, Page):
            return order
        status = str(order.get("status", ""))
        kw: dict[str, Any] = {"shop_name": self.shop_name, "tz": self.tz}
        if status == target(action):
            page = pages.already_page(order, action, links=self._next_links(order, now), **kw)
            outcome = "already_done"
        elif not can_apply(status, action):
            page = pages.conflict_page(order, action, links=self._next_links(order, now), **kw)
            outcome = "invalid_transition"
        else:
            page = pages.confirm_page(order, action, **kw)
            outcome = "confirm_shown"
        self._decide(event, token, outcome, page[0], order_id=oid, action=action, status=status)
        return self._page(page)

    # --- POST /o/{token} --------------------------------------------------------------------
    def do_action(self, token: str, body: bytes, content_type: str) -> Page:
        event = "order_link_action"
        now = self._now()
        claims = self._claims(token, now, event)
        if isinstance(claims, Page):
            return claims
        oid, action = claims.order_id, claims.action
        try:
            form = parse_form(body, content_type)
        except FormInvalid as e:
            self._decide(event, token, "bad_form", e.status, order_id=oid, action=action)
            return self._error(e.status, message=e.message)
        if "action" not in form:
            self._decide(event, token, "bad_form", 400, order_id=oid, action=action)
            return self._error(400)
        if form["action"] != action:
            self._decide(event, token, "refused", 403, order_id=oid, reason="wrong_action")
            return self._page(pages.refused_page("wrong_action", shop_name=self.shop_name))
        reason = clean_reason(form.get("reason", "")) if action == "cancel" else ""
        if len(reason) > MAX_REASON_LENGTH:
            order = self._load(token, oid, event, action=action)
            if isinstance(order, Page):
                return order
            self._decide(event, token, "bad_form", 400, order_id=oid, reason="reason_too_long")
            message = f"The reason can be at most {MAX_REASON_LENGTH} characters."
            page = pages.confirm_page(
                order, action, shop_name=self.shop_name, tz=self.tz, error=message
            )
            return self._page(page)
        extra = dict(self.enqueue(action, now)) if self.enqueue else None
        kw: dict[str, Any] = {"shop_name": self.shop_name, "tz": self.tz}
        try:
            result = self.lc.apply(oid, action, now, reason=reason or None, by="link",
                                   also_set=extra)  # fmt: skip
        except OrderNotFound:
            self._decide(event, token, "not_found", 404, order_id=oid, action=action)
            return self._error(404)
        except InvalidTransition as e:
            self._decide(event, token, "invalid_transition", 409, order_id=oid, action=action,
                         status=e.current)  # fmt: skip
            if e.order is None:
                return self._error(409, title="Nothing changed", message=str(e))
            nxt = self._next_links(e.order, now)
            return self._page(pages.conflict_page(e.order, action, links=nxt, **kw))
        except LifecycleUnavailable as e:
            self._decide(event, token, "error", 503, order_id=oid, action=action, reason=str(e))
            return self._error(503)
        order = result.order
        nxt = self._next_links(order, now)
        if not result.changed:
            self._decide(event, token, "already_done", 200, order_id=oid, action=action)
            return self._page(pages.already_page(order, action, links=nxt, **kw))
        self._decide(event, token, "changed", 200, order_id=oid, action=action,
                     status=order.get("status"))  # fmt: skip
        if self.after_change is not None:
            try:
                self.after_change(order, action)
            except Exception as e:  # noqa: BLE001 - the transition is stored; say so, log it
                log("order_after_change_failed", "error", order_id=oid, action=action,
                    error=type(e).__name__)  # fmt: skip
        return self._page(pages.done_page(order, action, links=nxt, **kw))

    # --- GET /s/{token} ---------------------------------------------------------------------
    def show_status(self, token: str) -> Page:
        event = "order_status_viewed"
        now = self._now()
        if not self.secret:
            self._decide(event, token, "error", 503, reason="link_secret_missing")
            return self._error(503)
        try:
            oid = links.parse_status_token(token, self.secret, now)
        except links.LinkRefused as e:
            self._decide(event, token, "refused", 403, reason=e.reason)
            return self._page(pages.refused_page(e.reason, shop_name=self.shop_name))
        order = self._load(token, oid, event)
        if isinstance(order, Page):
            return order
        self._decide(event, token, "shown", 200, order_id=oid, status=order.get("status"))
        return self._page(pages.status_page(order, shop_name=self.shop_name, tz=self.tz))


def _epoch_now() -> int:
    from chalicelib import clock

    return int(clock.now().timestamp())


def safely(fn: Callable[[], Page]) -> Page:
    """Run one route's use case; anything unexpected becomes a plain 500 page (logged)."""
    try:
        return fn()
    except Exception as e:  # noqa: BLE001 - no stack trace to the client
        log("unhandled_error", "error", where="fulfilment", error=type(e).__name__)
        status, html = pages.error_page(500, shop_name=os.environ.get("SHOP_NAME", "Our shop"))
        return Page(status, html)
