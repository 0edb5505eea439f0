"""What the shopper sees when the order is refused: at the field, or as a clear message."""

from __future__ import annotations

import json

import pytest

from tests.browser.axe import audit
from tests.browser.constants import SERVER_ONLY_BAD_PHONE, UNDELIVERABLE_DOMAIN, shopper_email
from tests.browser.flows import (
    ORDERS_URL,
    add,
    fill_checkout,
    go_to_checkout,
    open_shop,
    orders_for,
    submit,
    wait_confirmation,
    wait_turnstile,
)

NETWORK_NOISE = (r"Failed to load resource",)


def at_checkout(shop, tag: str, **overrides: str):
    page = open_shop(shop)
    add(page, "carrot-ginger", 3)
    go_to_checkout(page)
    email = shopper_email(
        tag, **({"domain": overrides.pop("domain")} if "domain" in overrides else {})
    )
    values = fill_checkout(page, email, **overrides)
    wait_turnstile(page)
    return page, email, values


def field_error(page, field: str) -> str:
    """The error shown for #f-<field>, checking it is wired for assistive technology."""
    el = page.locator(f"#f-{field}")
    assert el.get_attribute("aria-invalid") == "true"
    err = page.locator(f"#f-{field}-error")
    assert err.is_visible()
    assert f"f-{field}-error" in (el.get_attribute("aria-describedby") or "").split()
    return err.inner_text()


def focused_id(page) -> str:
    return page.evaluate("document.activeElement && document.activeElement.id")


def test_server_field_error_is_shown_at_the_field(shop, stack):
    page, email, values = at_checkout(shop, "phone", phone=SERVER_ONLY_BAD_PHONE)
    submit(page)
    page.locator("#f-phone-error").wait_for(state="visible")
    assert len(shop.order_posts) == 1, "the server, not the page, rejects this phone number"
    assert "US phone number" in field_error(page, "phone")
    assert focused_id(page) == "f-phone", "focus moves to the first field with an error"
    alert = page.locator("#form-alert")
    assert alert.get_attribute("role") == "alert" and "Phone" in alert.inner_text()
    for field in ("name", "email", "line1", "city", "zip"):
        assert page.input_value(f"#f-{field}") == values[field]
    assert page.input_value("#f-phone") == SERVER_ONLY_BAD_PHONE  # kept, for fixing
    assert not orders_for(stack, email)

    page.fill("#f-phone", "212 555 0143")  # fixing the field clears its error
    assert page.get_attribute("#f-phone", "aria-invalid") is None
    assert page.locator("#f-phone-error").is_hidden()
    submit(page)
    order_id = wait_confirmation(page)
    first, second = shop.order_posts
    assert first.key != second.key, "a changed form is a new attempt with a new key"
    assert [o["order_id"] for o in orders_for(stack, email)] == [order_id]
    shop.assert_clean(allow=NETWORK_NOISE)


def test_client_checks_catch_obvious_mistakes_without_a_request(shop):
    page, _, _ = at_checkout(shop, "zip", zip="ABCDE")
    page.fill("#f-name", "")
    submit(page)
    page.locator("#form-alert").wait_for(state="visible")
    assert not shop.order_posts
    assert "Enter your full name" in field_error(page, "name")
    assert "ZIP" in field_error(page, "zip")
    assert focused_id(page) == "f-name"
    assert "Full name" in page.inner_text("#form-alert") and "ZIP" in page.inner_text("#form-alert")
    shop.assert_clean()


def test_undeliverable_email_is_shown_at_the_email_field(shop, stack):
    page, email, _ = at_checkout(shop, "nullmx", domain=UNDELIVERABLE_DOMAIN)
    submit(page)
    page.locator("#f-email-error").wait_for(state="visible")
    assert field_error(page, "email")
    assert focused_id(page) == "f-email"
    assert "can't send a receipt" in page.inner_text("#form-alert")
    assert not orders_for(stack, email)
    shop.assert_clean(allow=NETWORK_NOISE)


def _error(code: str, message: str = "", **extra):
    return {"error": {"code": code, "message": message, "fields": {}, **extra}}


REFUSALS = [
    pytest.param(
        422,
        {},
        _error("closed", "The shop is closed right now. We open again Monday at 8 AM (EST)."),
        "We open again Monday at 8 AM",
        id="closed",
    ),
    pytest.param(
        429,
        {"Retry-After": "120"},
        _error("rate_limited", "Too many orders.", retry_after=120),
        "wait about 2 minutes",
        id="rate_limited",
    ),
    pytest.param(
        403,
        {},
        _error("bot_check_failed", "No.", codes=["invalid-input-response"]),
        "couldn't confirm you're a person",
        id="bot_check_failed",
    ),
    pytest.param(
        503,
        {"Retry-After": "30"},
        _error("service_unavailable", "Later.", retry_after=30),
        "try again in 30 seconds",
        id="service_unavailable",
    ),
    pytest.param(
        409,
        {},
        _error("idempotency_key_reused", "Start a new checkout."),
        "changed since your last try",
        id="idempotency_key_reused",
    ),
    pytest.param(
        500,
        {},
        _error("internal_error", "Something went wrong on our side."),
        "Something went wrong on our side",
        id="internal_error",
    ),
    # an edge error page instead of the API's JSON: treated as a temporary outage
    pytest.param(502, {}, "<html>Bad gateway</html>", "couldn't take your order", id="not-json"),
]


# count turnstile.reset() calls on the page's real widget (the local stand-in)
COUNT_RESETS = """() => {
  if (!window.__resets) {
    window.__resets = 0;
    const reset = window.turnstile.reset;
    window.turnstile.reset = (...args) => { window.__resets++; return reset(...args); };
  }
  return window.__resets;
}"""


@pytest.mark.parametrize(("status", "headers", "body", "expected"), REFUSALS)
def test_refusals_get_a_clear_message_and_keep_the_form(
    shop, stack, status, headers, body, expected
):
    page, email, values = at_checkout(shop, "refused")
    answered = []

    def refuse_once(route):
        answered.append(route.request.headers.get("idempotency-key"))
        if len(answered) == 1:
            route.fulfill(
                status=status,
                headers=headers,
                content_type="application/json",
                body=body if isinstance(body, str) else json.dumps(body),
            )
        else:
            route.continue_()

    page.route(ORDERS_URL, refuse_once)
    resets_before = page.evaluate(COUNT_RESETS)
    submit(page)
    alert = page.locator("#form-alert")
    alert.wait_for(state="visible")
    assert expected in alert.inner_text()
    assert focused_id(page) == "form-alert", "focus moves to the message"
    assert page.locator("#submit-order").is_enabled()
    assert page.inner_text("#submit-order") == "Place order"
    for field in ("name", "email", "phone", "line1", "line2", "city", "state", "zip"):
        assert page.input_value(f"#f-{field}") == values[field]
    audit(page, f"checkout refused with HTTP {status}")
    if body and isinstance(body, dict) and body["error"]["code"] == "bot_check_failed":
        assert page.evaluate("window.__resets") == resets_before + 1
        wait_turnstile(page)

    # the shopper tries again (after waiting, passing the check, ...) and it goes through
    submit(page)
    order_id = wait_confirmation(page)
    first, second = shop.order_posts
    if status == 409:
        assert first.key != second.key, "after a 409 the next try is a new attempt"
    else:
        assert first.key == second.key, "same attempt, same Idempotency-Key"
    assert [o["order_id"] for o in orders_for(stack, email)] == [order_id]
    shop.assert_clean(allow=NETWORK_NOISE)
