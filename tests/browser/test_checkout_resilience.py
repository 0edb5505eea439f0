"""Never lose a cart, never place an order twice: reloads, double clicks, 503s, lost responses.

Each test counts the orders the real stack stored for a unique email address.
"""

from __future__ import annotations

import json

from tests.browser.constants import CHECKOUT_KEY, shopper_email
from tests.browser.flows import (
    ORDERS_URL,
    add,
    eventually,
    fill_checkout,
    go_to_checkout,
    mail_mentioning,
    open_shop,
    orders_for,
    submit,
    wait_confirmation,
    wait_turnstile,
)

# Chromium logs a console error for every non-2xx or failed fetch; these tests cause some.
EXPECTED_NETWORK_NOISE = (r"status of 503", r"Failed to load resource")


def ready_to_submit(shop, tag: str):
    page = open_shop(shop)
    add(page, "green-machine", 1)
    add(page, "beet-it", 2)
    go_to_checkout(page)
    email = shopper_email(tag)
    values = fill_checkout(page, email)
    wait_turnstile(page)
    return page, email, values


def assert_one_order_and_two_emails(stack, email: str, order_id: str) -> None:
    assert [o["order_id"] for o in orders_for(stack, email)] == [order_id]
    eventually(lambda: len(mail_mentioning(stack, order_id)) >= 2, what="both emails")
    assert len(mail_mentioning(stack, order_id)) == 2  # no duplicate emails either


def assert_form_kept(page, values: dict[str, str]) -> None:
    for field in ("name", "email", "phone", "line1", "line2", "city", "state", "zip"):
        assert page.input_value(f"#f-{field}") == values[field], field


def test_reload_mid_checkout_keeps_cart_and_typed_form(shop):
    page = open_shop(shop)
    add(page, "sunrise-citrus", 3)
    go_to_checkout(page)
    values = fill_checkout(page, shopper_email("reload"))
    page.reload()
    page.locator("#view-checkout").wait_for(state="visible")
    page.wait_for_function("() => document.querySelectorAll('#summary-lines li .num').length")
    assert_form_kept(page, values)
    assert "3 × Sunrise Citrus" in page.inner_text("#summary-lines")
    assert page.inner_text("#cart-count") == "3"
    # the honeypot is never saved or restored
    saved = json.loads(page.evaluate("k => sessionStorage.getItem(k)", CHECKOUT_KEY))
    assert "website" not in saved["form"]
    shop.assert_clean()


def test_double_click_and_repeated_enter_place_one_order(shop, stack):
    page, email, _ = ready_to_submit(shop, "double")
    held = []
    page.route(ORDERS_URL, lambda route: held.append(route))
    page.dblclick("#submit-order")
    page.focus("#f-zip")
    page.keyboard.press("Enter")
    page.keyboard.press("Enter")
    page.evaluate(  # two submits in the same task
        "() => { const f = document.querySelector('#checkout-form');"
        " f.requestSubmit(); f.requestSubmit(); }"
    )
    eventually(lambda: held, what="the order request", page=page)
    # in flight: the button is disabled and says so
    button = page.locator("#submit-order")
    assert button.is_disabled()
    assert "Placing order" in button.inner_text()
    assert page.get_attribute("#checkout-form", "aria-busy") == "true"
    page.wait_for_timeout(300)
    assert len(held) == 1, "a second request was sent while the first was in flight"
    held[0].continue_()
    order_id = wait_confirmation(page)
    assert len(shop.order_posts) == 1
    assert_one_order_and_two_emails(stack, email, order_id)
    shop.assert_clean()


def test_503_then_retry_places_one_order(shop, stack):
    page, email, values = ready_to_submit(shop, "retry503")
    seen = []

    def first_503(route):
        seen.append(route.request.headers.get("idempotency-key"))
        if len(seen) == 1:  # answered here: the server never sees it
            route.fulfill(
                status=503,
                headers={"Retry-After": "7"},
                content_type="application/json",
                body=json.dumps(
                    {
                        "error": {
                            "code": "service_unavailable",
                            "message": "Try again.",
                            "fields": {},
                            "retry_after": 7,
                        }
                    }
                ),
            )
        else:
            route.continue_()

    page.route(ORDERS_URL, first_503)
    submit(page)
    alert = page.locator("#form-alert")
    alert.wait_for(state="visible")
    text = alert.inner_text()
    assert "couldn't take your order just now" in text and "7 seconds" in text
    assert "won't place your order twice" in text
    assert page.locator("#submit-order").is_enabled()
    assert_form_kept(page, values)
    assert not orders_for(stack, email)

    submit(page)  # the shopper tries again
    order_id = wait_confirmation(page)
    assert len(seen) == 2 and seen[0] == seen[1], "the retry must reuse the Idempotency-Key"
    first, second = shop.order_posts
    assert first.body == second.body, "the retry must repeat the same request (token included)"
    assert_one_order_and_two_emails(stack, email, order_id)
    shop.assert_clean(allow=EXPECTED_NETWORK_NOISE)


def test_lost_response_is_retried_with_the_same_key_and_replayed(shop, stack):
    page, email, _ = ready_to_submit(shop, "lost")
    created = []

    def lose_first_response(route):
        if not created:
            response = route.fetch()  # the server creates the order ...
            created.append(response.json())
            route.abort("connectionreset")  # ... but the browser never hears back
        else:
            route.continue_()

    page.route(ORDERS_URL, lose_first_response)
    submit(page)
    order_id = wait_confirmation(page)  # retried automatically
    assert order_id == created[0]["order_id"]
    keys = {p.key for p in shop.order_posts}
    assert len(shop.order_posts) == 2 and len(keys) == 1
    assert shop.order_posts[0].body == shop.order_posts[1].body
    assert_one_order_and_two_emails(stack, email, order_id)
    shop.assert_clean(allow=EXPECTED_NETWORK_NOISE)


def test_offline_then_manual_retry_places_one_order(shop, stack):
    page, email, values = ready_to_submit(shop, "offline")
    created = []

    def flaky(route):
        if not created:
            created.append(route.fetch().json())  # reached the server, answer lost
            route.abort("connectionreset")
        elif len(shop.order_posts) <= 3:
            route.abort("internetdisconnected")  # the automatic retries fail too
        else:
            route.continue_()

    page.route(ORDERS_URL, flaky)
    submit(page)
    alert = page.locator("#form-alert")
    alert.wait_for(state="visible", timeout=15_000)
    assert "couldn't reach the shop" in alert.inner_text()
    assert "won't be placed twice" in alert.inner_text()
    assert_form_kept(page, values)
    submit(page)
    order_id = wait_confirmation(page)
    assert order_id == created[0]["order_id"]
    assert len({p.key for p in shop.order_posts}) == 1
    assert_one_order_and_two_emails(stack, email, order_id)
    shop.assert_clean(allow=EXPECTED_NETWORK_NOISE)


def test_reload_while_submitting_reuses_the_attempt(shop, stack):
    page, email, values = ready_to_submit(shop, "midsubmit")
    created = []

    def forward_then_hang(route):
        if not created:
            created.append(route.fetch().json())  # created on the server; never answered
        else:
            route.continue_()

    page.route(ORDERS_URL, forward_then_hang)
    submit(page)
    eventually(lambda: created, what="the first request to reach the server", page=page)
    page.reload()  # the shopper gives up waiting
    page.locator("#view-checkout").wait_for(state="visible")
    assert page.locator("#resume-note").is_visible()
    assert_form_kept(page, values)
    wait_turnstile(page)
    submit(page)
    order_id = wait_confirmation(page)
    assert order_id == created[0]["order_id"]
    assert len({p.key for p in shop.order_posts}) == 1
    assert shop.order_posts[0].body == shop.order_posts[-1].body
    assert_one_order_and_two_emails(stack, email, order_id)
    shop.assert_clean(allow=EXPECTED_NETWORK_NOISE)


def test_changing_the_order_starts_a_new_attempt(shop, stack):
    page, email, _ = ready_to_submit(shop, "change")
    calls = []

    def first_503(route):
        calls.append(1)
        if len(calls) == 1:
            route.fulfill(
                status=503,
                content_type="application/json",
                body='{"error":{"code":"service_unavailable","message":"x","fields":{}}}',
            )
        else:
            route.continue_()

    page.route(ORDERS_URL, first_503)
    submit(page)
    page.locator("#form-alert").wait_for(state="visible")
    page.fill("#f-line2", "Floor 3")  # the form changed: a new order attempt, a new key
    submit(page)
    wait_confirmation(page)
    first, second = shop.order_posts
    assert first.key != second.key
    assert len(orders_for(stack, email)) == 1
    shop.assert_clean(allow=EXPECTED_NETWORK_NOISE)
