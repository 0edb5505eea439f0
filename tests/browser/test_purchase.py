"""A whole purchase in a real browser against the real local stack."""

from __future__ import annotations

import json
import re

from tests.browser.axe import audit
from tests.browser.constants import CART_KEY, CHECKOUT_KEY, shopper_email
from tests.browser.flows import (
    add,
    eventually,
    fill_checkout,
    go_to_checkout,
    local_storage,
    mail_mentioning,
    open_shop,
    orders_for,
    recipients,
    submit,
    wait_confirmation,
    wait_turnstile,
)
from tests.browser.shop import MOBILE, screenshot

PAGE_BUDGET_BYTES = 60 * 1024

TRANSFERRED = """() => {
  const entries = [...performance.getEntriesByType("navigation"),
                   ...performance.getEntriesByType("resource")];
  return entries.filter(e => !e.name.startsWith("https://challenges.cloudflare.com"))
    .map(e => ({url: e.name, bytes: e.transferSize || e.encodedBodySize || 0}));
}"""


def test_full_purchase_emails_receipt_and_merchant_alert(shop, stack):
    page = open_shop(shop)
    page.wait_for_load_state("networkidle")
    sent = page.evaluate(TRANSFERRED)
    total = sum(e["bytes"] for e in sent)
    assert total <= PAGE_BUDGET_BYTES, f"shop page transfers {total} bytes: {sent}"
    # every product shows name, description, price and a sized image with alt text
    cards = page.locator(".product")
    assert cards.count() == 6
    for i in range(cards.count()):
        img = cards.nth(i).locator("img")
        assert img.get_attribute("alt"), "product image without alt text"
        assert img.get_attribute("width") and img.get_attribute("height")
        assert re.search(r"\$\d+\.\d\d", cards.nth(i).inner_text())
    screenshot(page, "shop-desktop")

    email = shopper_email("full")
    add(page, "green-machine", 2)
    add(page, "watermelon-cooler", 1)
    assert page.inner_text("#cart-subtotal") == "$25.48"  # 2 x 8.99 + 7.50, display only
    assert page.inner_text("#cart-fee") == "$5.00"  # below the free-delivery threshold
    assert page.inner_text("#cart-total") == "$30.48"
    go_to_checkout(page)
    fill_checkout(page, email)
    wait_turnstile(page)
    screenshot(page, "checkout-desktop")
    submit(page)
    order_id = wait_confirmation(page)
    assert re.fullmatch(r"[A-Z0-9]{6,40}", order_id), order_id

    # the confirmation shows the server's priced lines and total
    [order] = orders_for(stack, email)
    assert order["order_id"] == order_id
    rows = page.locator("#confirm-lines tr")
    assert rows.count() == len(order["items"]) == 2
    text = page.inner_text("#view-confirmation")
    for item in order["items"]:
        assert item["name"] in text
        assert f"${item['line_total_cents'] / 100:.2f}" in text
    assert page.inner_text("#confirm-subtotal") == "$25.48"
    assert page.inner_text("#confirm-fee") == f"${order['delivery_fee_cents'] / 100:.2f}" == "$5.00"
    assert page.inner_text("#confirm-total") == f"${order['total_cents'] / 100:.2f}" == "$30.48"
    # where, who, how to pay, what next, how to reach the shop
    catalog = page.evaluate("fetch('/api/catalog').then(r => r.json())")
    address = page.inner_text("#confirm-address")
    for part in ("12 Orchard St", "Apt 4B", "New York, NY 10002"):
        assert part in address
    assert page.inner_text("#confirm-phone") == "(212) 555-0143"
    assert catalog["shop"]["payment"] in page.inner_text("#confirm-payment")
    assert "deliver" in page.inner_text("#confirm-next")
    contact = page.inner_text("#confirm-contact")
    assert catalog["shop"]["phone"] in contact and catalog["shop"]["email"] in contact
    assert email in page.inner_text("#confirm-email-note")
    assert "receipt" in page.inner_text("#confirm-email-note")
    # ... and only now the cart is empty, and the checkout draft is gone
    assert page.inner_text("#cart-count") == "0"
    assert local_storage(page, CART_KEY) is None
    assert page.evaluate("k => sessionStorage.getItem(k)", CHECKOUT_KEY) is None
    # (an empty style="" is what Playwright's screenshot leaves behind after hiding the caret)
    styled = page.evaluate(
        "[...document.querySelectorAll('[style]:not([style=\"\"])')]"
        ".map(e => e.outerHTML.slice(0, 120))"
    )
    assert not styled, f"style attributes (CSP: style-src 'self' has no 'unsafe-inline'): {styled}"
    screenshot(page, "confirmation-desktop")

    # both emails went out: the receipt to the shopper and the alert to the merchant
    mails = eventually(lambda: len(m := mail_mentioning(stack, order_id)) >= 2 and m, what="mail")
    to_shopper = [m for m in mails if email in recipients(m)]
    to_merchant = [m for m in mails if email not in recipients(m)]
    assert len(to_shopper) == 1 and len(to_merchant) == 1, mails
    merchant = (stack.env.get("MERCHANT_EMAIL") or "merchant@juice.example.com").lower()
    assert recipients(to_merchant[0]) == [merchant]

    # the dev mail viewer shows both, with the order id
    viewer = shop.new_page()
    viewer.goto(stack.url + "/_dev/mail")
    body = viewer.inner_text("body")
    assert body.count(order_id) >= 2, body[:2000]
    assert email in body and merchant in body
    listed = json.loads(viewer.goto(stack.url + "/_dev/mail.json").text())
    listed = listed if isinstance(listed, list) else listed.get("messages", listed.get("mail", []))
    mine = [m for m in listed if order_id in json.dumps(m)]
    assert {a.lower() for m in mine for a in m["to"]} >= {email, merchant}
    viewer.close()

    # offline for real: nothing but the local stack was asked for anything (no route stubs)
    foreign = [u for u in shop.requested if not u.startswith((stack.url + "/", "data:"))]
    assert not foreign, f"requests that need the internet: {foreign}"
    assert any("/_dev/turnstile/" in u for u in shop.requested), "the local test check ran"

    # Back from the confirmation returns to the shop, not to an empty checkout
    page.go_back()
    page.locator("#view-shop").wait_for(state="visible")
    assert page.locator("#view-checkout").is_hidden()
    assert page.evaluate("location.hash") in ("", "#shop", "#cart")
    shop.assert_clean()


def test_purchase_on_a_360px_phone(make_shop, stack):
    shop = make_shop(viewport=MOBILE, is_mobile=True, has_touch=True)
    page = open_shop(shop)

    def no_horizontal_scroll(where: str) -> None:
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= MOBILE["width"], f"{where}: page is {width}px wide"

    no_horizontal_scroll("shop")
    screenshot(page, "shop-mobile")
    email = shopper_email("mobile")
    add(page, "sunrise-citrus", 1)
    add(page, "pineapple-mint", 1)
    add(page, "carrot-ginger", 1)
    no_horizontal_scroll("shop with a cart")
    screenshot(page, "cart-mobile")
    go_to_checkout(page)
    fill_checkout(page, email)
    wait_turnstile(page)
    no_horizontal_scroll("checkout")
    screenshot(page, "checkout-mobile")
    submit(page)
    order_id = wait_confirmation(page)
    no_horizontal_scroll("confirmation")
    screenshot(page, "confirmation-mobile")
    audit(page, "confirmation on a 360 px phone")
    assert [o["order_id"] for o in orders_for(stack, email)] == [order_id]
    shop.assert_clean()
