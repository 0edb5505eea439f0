"""What the page says before the shopper types, and the rough edges of issue 13: the shop
profile on the page, the closed state, limits said out loud, the form read-only in flight,
layout shift at 375 px, the sticky totals, Tab order, and axe-core on every view and state."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.browser.axe import audit
from tests.browser.constants import shopper_email
from tests.browser.flows import (
    ORDERS_URL,
    add,
    eventually,
    fill_checkout,
    go_to_checkout,
    open_shop,
    orders_for,
    submit,
    wait_confirmation,
    wait_turnstile,
)
from tests.browser.shop import DESKTOP, screenshot

PHONE_375 = {"width": 375, "height": 667}
NETWORK_NOISE = (r"Failed to load resource", r"status of 5\d\d")

CLS_OBSERVER = """
window.__cls = 0; window.__shifts = [];
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    if (e.hadRecentInput) continue;
    window.__cls += e.value;
    window.__shifts.push({ value: e.value, sources: (e.sources || []).map(s =>
      s.node ? (s.node.id || s.node.className || s.node.nodeName) : "?") });
  }
}).observe({ type: "layout-shift", buffered: true });
"""


def catalog_json(page: Any) -> dict[str, Any]:
    return page.evaluate("fetch('/api/catalog').then(r => r.json())")  # type: ignore[no-any-return]


def closed_catalog(shop: Any, opens_at: str = "2026-12-07T08:00:00-05:00") -> None:
    """The catalog as the API sends it while the shop is closed."""

    def handle(route: Any) -> None:
        resp = route.fetch()
        body = resp.json()
        body.update(open_now=False, opens_at=opens_at)
        route.fulfill(response=resp, body=json.dumps(body))

    shop.context.route("**/api/catalog", handle)


def test_the_shop_says_how_to_pay_where_it_delivers_fee_hours_and_contact(shop):
    page = open_shop(shop)
    info = catalog_json(page)["shop"]
    facts = page.inner_text("#shop-facts")
    assert info["delivery_area"]["description"] in facts
    assert "$5.00, free from $40.00" in facts
    assert info["payment"] in facts and info["hours"] in facts
    footer = page.inner_text(".site-footer")
    assert info["phone"] in footer and info["email"] in footer
    assert info["address"]["line1"] in footer
    assert page.get_attribute(".site-footer a[href^='tel:']", "href") == "tel:+12125550100"
    page.click("#privacy summary")
    assert info["privacy"] in page.inner_text("#privacy")
    page.click("#terms summary")
    assert info["terms"] in page.inner_text("#terms")
    add(page, "green-machine", 3)
    go_to_checkout(page)
    # the privacy note sits by the email field and is read with it
    described = page.get_attribute("#f-email", "aria-describedby").split()
    assert "f-email-privacy" in described
    assert page.inner_text("#f-email-privacy") == info["privacy"]
    assert info["payment"] in page.inner_text("#pay-note")
    assert info["delivery_area"]["description"] in page.inner_text("#summary-info")
    assert page.inner_text("#summary-fee") == "$5.00"
    audit(page, "checkout with the shop profile")
    shop.assert_clean()


def test_free_delivery_from_the_threshold_in_cart_and_summary(shop):
    page = open_shop(shop)
    add(page, "green-machine", 5)  # 5 x 8.99 = 44.95 >= 40.00
    assert page.inner_text("#cart-fee") == "Free"
    assert page.inner_text("#cart-total") == "$44.95"
    go_to_checkout(page)
    assert page.inner_text("#summary-fee") == "Free"
    shop.assert_clean()


def test_closed_shop_says_so_up_front_with_the_next_opening_and_a_disabled_button(shop):
    closed_catalog(shop)
    page = open_shop(shop)
    note = page.inner_text("#closed-note")
    assert "closed" in note and "Monday, December 7" in note and "8:00" in note
    audit(page, "shop while closed")
    add(page, "beet-it", 3)
    go_to_checkout(page)
    alert = page.inner_text("#closed-alert")
    assert "closed" in alert and "Monday, December 7" in alert
    button = page.locator("#submit-order")
    assert button.is_disabled()
    # a disabled button never looks enabled, hovered or not
    before = button.evaluate("el => getComputedStyle(el).backgroundColor")
    button.hover(force=True)
    assert button.evaluate("el => getComputedStyle(el).backgroundColor") == before
    fill_checkout(page, shopper_email("closed"))
    assert shop.order_posts == []
    screenshot(page, "checkout-closed")
    audit(page, "checkout while closed")
    shop.assert_clean()


def test_no_empty_bars_or_dead_checkout_button_before_the_catalog_or_when_it_fails(shop):
    held: list[Any] = []
    shop.context.route("**/api/catalog", lambda route: held.append(route))
    page = shop.goto("/")
    eventually(lambda: held, what="the catalog request", page=page)
    assert page.locator("#min-note").is_hidden()
    assert page.locator("#to-checkout").is_hidden()
    assert page.locator("#shop-facts").is_hidden()
    audit(page, "shop while the catalog loads")
    held.pop().fulfill(status=503, content_type="application/json", body="{}")
    page.get_by_role("button", name="Try again").wait_for()
    assert page.locator("#min-note").is_hidden()
    assert page.locator("#to-checkout").is_hidden()
    audit(page, "shop after the catalog failed")
    shop.context.unroute("**/api/catalog")
    page.get_by_role("button", name="Try again").click()
    page.locator(".product").first.wait_for()
    assert page.locator("#to-checkout").is_visible() and page.locator("#min-note").is_visible()
    shop.assert_clean(allow=NETWORK_NOISE)


@pytest.mark.parametrize("catalog_delay_ms", [0, 1500])
def test_layout_shift_at_375px_is_at_most_0_1(make_shop, catalog_delay_ms):
    """Cumulative layout shift of a load at 375 px, with the catalog as fast as the local stack
    answers and as slow as a phone network (the real answer, held back 1.5 s)."""
    shop = make_shop(viewport=PHONE_375, is_mobile=True, has_touch=True)
    shop.context.add_init_script(CLS_OBSERVER)
    held: list[Any] = []
    if catalog_delay_ms:
        shop.context.route("**/api/catalog", lambda route: held.append(route))
    page = shop.goto("/")
    if catalog_delay_ms:
        eventually(lambda: held, what="the catalog request", page=page)
        page.wait_for_timeout(catalog_delay_ms)
        held[0].continue_()
    page.locator(".product").first.wait_for()
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(500)  # let late shifts be reported
    cls = page.evaluate("window.__cls")
    shifts = page.evaluate("window.__shifts")
    print(f"CLS at 375 px (catalog after {catalog_delay_ms} ms): {cls:.4f} {shifts}")
    assert cls <= 0.1, f"cumulative layout shift {cls:.3f}: {shifts}"
    screenshot(page, f"shop-375-after-{catalog_delay_ms}ms", full_page=False)
    shop.assert_clean()


def test_phones_keep_a_sticky_total_bar(make_shop):
    shop = make_shop(viewport=PHONE_375, is_mobile=True, has_touch=True)
    page = open_shop(shop)
    bar = page.locator("#mobile-bar")
    assert bar.is_hidden()  # nothing to show for an empty cart
    add(page, "green-machine", 2)
    add(page, "beet-it", 1)
    assert bar.is_visible()
    assert page.inner_text("#bar-total") == page.inner_text("#cart-total")
    assert "3 bottles" in page.inner_text("#bar-count")
    for y in (0, 600, 1500):
        page.evaluate(f"window.scrollTo(0, {y})")
        box = bar.bounding_box()
        assert box and abs(box["y"] + box["height"] - PHONE_375["height"]) <= 1, box
    screenshot(page, "shop-mobile-bar", full_page=False)
    audit(page, "phone with the total bar")
    page.click("#bar-checkout")
    page.locator("#view-checkout").wait_for(state="visible")
    assert page.locator("#mobile-bar").is_hidden()  # only on the shop view
    shop.assert_clean()


def test_desktop_cart_total_and_button_stay_visible_with_many_lines(shop):
    page = open_shop(shop)
    for sku in (
        "green-machine",
        "sunrise-citrus",
        "beet-it",
        "pineapple-mint",
        "carrot-ginger",
        "watermelon-cooler",
    ):
        add(page, sku, 1)
    # browsing the products (past the intro) down to the end of the page
    bottom = page.evaluate("document.documentElement.scrollHeight - innerHeight")
    for y in (500, 900, bottom):
        page.evaluate(f"window.scrollTo(0, {y})")
        for sel in ("#cart-total", "#to-checkout"):
            box = page.locator(sel).bounding_box()
            assert box and 0 <= box["y"], (y, sel, box)
            assert box["y"] + box["height"] <= DESKTOP["height"], (y, sel, box)
    screenshot(page, "cart-many-lines-desktop", full_page=False)
    shop.assert_clean()


def test_limits_are_said_out_loud(shop):
    page = open_shop(shop)
    page.fill("#qty-beet-it", "999")
    page.click("[data-add=beet-it]")
    page.wait_for_function("() => document.querySelector('#cart-count').textContent === '50'")
    msg = page.locator(".product[data-sku=beet-it] .qty-msg")
    assert msg.inner_text() == "50 is the most per juice."
    eventually(lambda: "50 is the most per juice" in page.inner_text("#cart-live"), page=page)
    for bad in ("0", "-5"):
        page.fill("#qty-green-machine", bad)
        page.click("[data-add=green-machine]")
        m = page.locator(".product[data-sku=green-machine] .qty-msg")
        m.wait_for(state="visible")
        assert "1 or more" in m.inner_text()
        assert page.inner_text("#cart-count") == "50", f"{bad} must not add anything"
    # in the cart: 0 is refused with a message, the quantity stays
    line = page.locator("#cart-lines li[data-sku=beet-it] input")
    line.fill("0")
    line.press("Tab")
    eventually(lambda: "Quantity not changed" in page.inner_text("#cart-live"), page=page)
    assert line.input_value() == "50"
    shop.assert_clean()


def test_email_and_phone_errors_say_what_is_wrong(shop):
    page = open_shop(shop)
    add(page, "beet-it", 3)
    go_to_checkout(page)
    cases = [
        ("name@", "email", "domain"),
        ("name@example", "email", "needs a dot"),
        ("name example.com", "email", "no spaces"),
        ("name.example.com", "email", "exactly one @"),
        ("212555014", "phone", "has 9"),
        ("212-555-CALL", "phone", "only digits"),
    ]
    for value, field, expected in cases:
        fill_checkout(page, "ok@deliverable.test")
        page.fill(f"#f-{field}", value)
        submit(page)
        err = page.locator(f"#f-{field}-error")
        err.wait_for(state="visible")
        assert expected in err.inner_text(), (value, err.inner_text())
    audit(page, "checkout with field errors")
    assert shop.order_posts == []
    shop.assert_clean()


def test_tab_at_checkout_starts_in_the_form(shop):
    page = open_shop(shop)
    add(page, "beet-it", 3)
    go_to_checkout(page)
    assert page.evaluate("document.activeElement.id") == "checkout-title"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "f-name"
    shop.assert_clean()


def test_form_is_read_only_in_flight_and_focus_stays_on_the_status(shop, stack):
    page = open_shop(shop)
    add(page, "carrot-ginger", 3)
    go_to_checkout(page)
    email = shopper_email("inflight")
    fill_checkout(page, email)
    wait_turnstile(page)
    held: list[Any] = []
    page.route(ORDERS_URL, lambda route: held.append(route))
    submit(page)
    eventually(lambda: held, what="the order request", page=page)
    assert page.evaluate("document.activeElement.id") == "submit-status"
    assert page.get_attribute("#submit-status", "role") == "status"
    assert "Placing your order" in page.inner_text("#submit-status")
    for sel in ("#f-line1", "#f-zip", "#f-state"):
        assert page.locator(sel).is_disabled(), sel
    page.locator("#f-line1").click(force=True)
    page.keyboard.type("99 Other Street")
    assert page.input_value("#f-line1") == "12 Orchard St"  # the edit did not happen
    assert page.locator("#submit-order").is_disabled()
    audit(page, "checkout in flight")
    held[0].continue_()
    wait_confirmation(page)
    [order] = orders_for(stack, email)
    assert order["shipping"]["line1"] == "12 Orchard St"
    assert page.evaluate("document.activeElement.id") == "confirm-title"
    shop.assert_clean()


def test_axe_finds_nothing_in_the_main_views(make_shop, stack):
    shop = make_shop()
    page = shop.goto("/")
    page.locator(".product").first.wait_for()
    audit(page, "shop, empty cart")
    add(page, "green-machine", 2)
    audit(page, "shop, below the minimum")
    add(page, "beet-it", 1)
    audit(page, "shop, cart ready")
    go_to_checkout(page)
    wait_turnstile(page)
    audit(page, "checkout, empty form")
    submit(page)
    page.locator("#f-name-error").wait_for(state="visible")
    audit(page, "checkout, missing fields")
    email = shopper_email("axe")
    fill_checkout(page, email)
    page.check(".ts-standin-fail")
    page.wait_for_function("() => document.querySelector('.ts-standin').dataset.state === 'failed'")
    submit(page)
    page.wait_for_function("() => document.querySelector('#form-alert').textContent.length > 0")
    audit(page, "checkout, security check failed")
    page.uncheck(".ts-standin-fail")
    wait_turnstile(page)
    submit(page)
    wait_confirmation(page)
    audit(page, "confirmation")
    page.go_back()
    page.locator("#view-shop").wait_for(state="visible")
    audit(page, "shop after an order")
    phone = make_shop(viewport=PHONE_375, is_mobile=True, has_touch=True)
    p2 = phone.goto("/")
    p2.locator(".product").first.wait_for()
    add(p2, "sunrise-citrus", 3)
    audit(p2, "phone, cart with the total bar")
    go_to_checkout(p2)
    audit(p2, "phone, checkout")
    shop.assert_clean()
    phone.assert_clean()
