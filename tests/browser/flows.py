"""Shopper actions and stack look-ups shared by the browser tests."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from tests.browser.constants import ADDRESS, NAME, PHONE

ORDERS_URL = "**/api/orders"


def open_shop(shop: Any, page: Any = None, path: str = "/") -> Any:
    page = shop.goto(path, page)
    page.locator(".product").first.wait_for()
    return page


def add(page: Any, sku: str, qty: int = 1) -> None:
    """Add qty bottles of sku with the product card's quantity box and button."""
    before = cart_count(page)
    if qty != 1:
        page.fill(f"#qty-{sku}", str(qty))
    page.click(f"[data-add={sku}]")
    page.wait_for_function(
        "n => Number(document.querySelector('#cart-count').textContent) === n", arg=before + qty
    )


def cart_count(page: Any) -> int:
    return int(page.inner_text("#cart-count"))


def go_to_checkout(page: Any) -> None:
    page.click("#to-checkout")
    page.locator("#view-checkout").wait_for(state="visible")


def fill_checkout(page: Any, email: str, **overrides: str) -> dict[str, str]:
    values = {"name": NAME, "email": email, "phone": PHONE, **ADDRESS, **overrides}
    for field in ("name", "email", "phone", "line1", "line2", "city", "zip"):
        page.fill(f"#f-{field}", values[field])
    page.select_option("#f-state", values["state"])
    return values


def wait_turnstile(page: Any) -> None:
    """The bot check widget (the local stand-in under `make run`) has produced its token."""
    page.wait_for_function(
        "() => window.turnstile && document.querySelector("
        "'#bot-check-widget input[name=\"cf-turnstile-response\"]')?.value"
    )


def submit(page: Any) -> None:
    page.click("#submit-order")


def wait_confirmation(page: Any, timeout: float = 15_000) -> str:
    page.locator("#view-confirmation").wait_for(state="visible", timeout=timeout)
    return page.inner_text("#confirm-id").strip()


def buy(page: Any, email: str, items: dict[str, int] | None = None) -> str:
    """Add items, check out, place the order; returns the order id shown."""
    for sku, qty in (items or {"green-machine": 2, "beet-it": 1}).items():
        add(page, sku, qty)
    go_to_checkout(page)
    fill_checkout(page, email)
    submit(page)
    return wait_confirmation(page)


def local_storage(page: Any, key: str) -> Any:
    raw = page.evaluate("k => localStorage.getItem(k)", key)
    return None if raw is None else json.loads(raw)


def seed_storage(page: Any, items: dict[str, str | None]) -> None:
    """Write raw localStorage values (None removes) on the current origin, then reload."""
    page.evaluate(
        """items => { for (const [k, v] of Object.entries(items)) {
             if (v === null) localStorage.removeItem(k); else localStorage.setItem(k, v); } }""",
        items,
    )
    page.reload()
    page.locator(".product").first.wait_for()


def eventually(
    check: Callable[[], Any], timeout: float = 10.0, what: str = "condition", page: Any = None
) -> Any:
    """Poll check() until truthy. Pass `page` while waiting for route handlers or page events:
    the sync Playwright API only dispatches them inside its own calls, not during time.sleep."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        if page is not None:
            page.wait_for_timeout(50)
        else:
            time.sleep(0.1)
    raise AssertionError(f"{what} not met within {timeout}s (last: {last!r})")


def orders_for(stack: Any, email: str) -> list[dict[str, Any]]:
    email = email.lower()
    return [
        o for o in stack.orders() if str(o.get("customer", {}).get("email", "")).lower() == email
    ]


def mail_mentioning(stack: Any, text: str) -> list[dict[str, Any]]:
    return [m for m in stack.sent_mail() if text in json.dumps(m)]


def recipients(message: dict[str, Any]) -> list[str]:
    dest = message.get("destinations") or {}
    return [a.lower() for a in (dest.get("ToAddresses", []) if isinstance(dest, dict) else [])]
