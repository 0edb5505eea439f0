"""The bot check: the local stand-in `make run` serves (no route stubs), and Cloudflare's real
script blocked or hanging (a cloud stage's config, as a shopper behind a filter sees it)."""

from __future__ import annotations

import json

import pytest

from tests.browser.axe import audit
from tests.browser.constants import shopper_email
from tests.browser.flows import (
    add,
    fill_checkout,
    go_to_checkout,
    open_shop,
    orders_for,
    submit,
    wait_confirmation,
    wait_turnstile,
)
from tests.browser.shop import screenshot

CLOUDFLARE = "https://challenges.cloudflare.com/**"
# Chromium logs a console error for the blocked script
BLOCKED_NOISE = (r"Failed to load resource", r"ERR_BLOCKED_BY_CLIENT", r"ERR_FAILED")


def _cloud_config(shop) -> None:
    """Serve the page a cloud stage's config.json (no turnstileScript: Cloudflare's script)."""

    def config(route) -> None:
        body = {"stage": "prod", "apiBase": "/api", "turnstileSitekey": "1x00000000000000000000AA"}
        route.fulfill(status=200, content_type="application/json", body=json.dumps(body))

    shop.context.route("**/config.json", config)


def _at_checkout(shop, tag: str):
    page = open_shop(shop)
    add(page, "beet-it", 3)
    go_to_checkout(page)
    email = shopper_email(tag)
    fill_checkout(page, email)
    return page, email


def test_local_stand_in_is_labelled_keyboard_accessible_and_can_fail(shop, stack):
    page, email = _at_checkout(shop, "standin")
    wait_turnstile(page)
    widget = page.locator("#bot-check-widget .ts-standin")
    assert "Local test check" in widget.inner_text()
    assert "Cloudflare" in widget.inner_text()  # says what it stands in for
    assert page.evaluate("window.turnstile.standin") is True
    # keyboard: Tab reaches the "make it fail" box, Space ticks it
    page.focus("#f-zip")
    fail_box = widget.locator(".ts-standin-fail")
    for _ in range(6):
        page.keyboard.press("Tab")
        if fail_box.evaluate("el => el === document.activeElement"):
            break
    assert fail_box.evaluate("el => el === document.activeElement"), "the check is reachable by Tab"
    page.keyboard.press("Space")
    page.wait_for_function(
        "() => document.querySelector('.ts-standin')?.dataset.state === 'failed'"
    )
    assert page.evaluate("window.turnstile.getResponse()") == ""
    screenshot(page, "checkout-standin-failed")
    audit(page, "checkout, local test check failed")
    submit(page)
    alert = page.locator("#form-alert")
    page.wait_for_function("() => document.querySelector('#form-alert').textContent.length > 0")
    assert "security check" in alert.inner_text()
    assert page.locator("#submit-order").is_enabled()
    assert orders_for(stack, email) == []
    # untick: the check passes again and the order goes through
    fail_box.uncheck()
    wait_turnstile(page)
    submit(page)
    assert wait_confirmation(page)
    assert len(orders_for(stack, email)) == 1
    shop.assert_clean()


def test_stand_in_token_expiry_is_renewed(make_shop):
    shop = make_shop()
    shop.context.add_init_script("window.__turnstileStandin = {expiryMs: 400}")
    page, _ = _at_checkout(shop, "expiry")
    wait_turnstile(page)
    page.evaluate(
        """() => { window.__expired = 0;
             const w = document.querySelector('.ts-standin');
             new MutationObserver((records) => {
               for (const r of records) if (r.oldValue === 'expired') window.__expired++;
             }).observe(w, {attributes: true, attributeOldValue: true,
                            attributeFilter: ['data-state']}); }"""
    )
    page.wait_for_function("() => window.__expired >= 1")
    wait_turnstile(page)  # refresh-expired: auto, a new token arrives by itself
    assert page.evaluate("window.turnstile.isExpired()") is False


@pytest.mark.parametrize("how", ["blocked", "hanging"])
def test_cloudflare_script_blocked_or_hanging_says_how_to_order_anyway(shop, stack, how):
    _cloud_config(shop)
    held = []
    if how == "blocked":
        shop.context.route(CLOUDFLARE, lambda route: route.abort("blockedbyclient"))
    else:
        shop.context.route(CLOUDFLARE, lambda route: held.append(route))  # never answered
    page, email = _at_checkout(shop, how)
    catalog = page.evaluate("fetch('/api/catalog').then(r => r.json())")
    submit(page)
    alert = page.get_by_role("alert").filter(has_text="security check")
    # Playwright's expect timeout (10 s) is the spec: the message comes within 10 s
    from playwright.sync_api import expect

    expect(alert).to_be_visible(timeout=10_000)
    text = alert.inner_text()
    assert "didn't load" in text
    assert catalog["shop"]["phone"] in text and catalog["shop"]["email"] in text
    expect(page.locator("#submit-order")).to_be_enabled(timeout=10_000)
    assert page.inner_text("#submit-order") == "Place order"
    assert page.locator("#form-alert").get_attribute("role") == "alert"
    assert orders_for(stack, email) == []
    screenshot(page, f"checkout-turnstile-{how}")
    audit(page, f"checkout, Cloudflare's script {how}")
    shop.assert_clean(allow=BLOCKED_NOISE)
