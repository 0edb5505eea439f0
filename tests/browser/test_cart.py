"""The cart: minimum explained up front, persistence, tabs, editing, recovery from bad storage."""

from __future__ import annotations

import json

import pytest

from tests.browser.constants import CART_KEY, LEGACY_CART_KEY
from tests.browser.flows import add, cart_count, local_storage, open_shop, seed_storage


def cart_lines(page) -> dict[str, int]:
    return {
        li.get_attribute("data-sku"): int(li.locator("input").input_value())
        for li in page.locator("#cart-lines > li").all()
    }


def test_minimum_is_explained_before_checkout(shop):
    page = open_shop(shop)
    # on the page before anything is in the cart
    assert "3 bottles or more" in page.inner_text(".intro")
    assert "3 bottles" in page.inner_text("#min-note")
    add(page, "beet-it", 2)
    note = page.inner_text("#min-note")
    assert "Add 1 more bottle" in note and "minimum is 3" in note
    button = page.locator("#to-checkout")
    assert button.get_attribute("aria-disabled") == "true"
    assert "min-note" in button.get_attribute("aria-describedby")
    button.click(force=True)  # Playwright treats aria-disabled as disabled; people can click
    assert page.locator("#view-checkout").is_hidden(), "checkout opened below the minimum"
    page.wait_for_function(
        "() => /Add 1 more/.test(document.querySelector('#cart-live').textContent)"
    )
    add(page, "beet-it", 1)
    assert button.get_attribute("aria-disabled") == "false"
    assert "meets the 3-bottle minimum" in page.inner_text("#min-note")
    assert not shop.order_posts
    shop.assert_clean()


def test_edit_quantities_remove_and_totals(shop):
    page = open_shop(shop)
    add(page, "green-machine", 1)
    add(page, "sunrise-citrus", 3)
    line = page.locator("#cart-lines > li[data-sku=green-machine]")
    line.get_by_role("button", name="One more Green Machine").click()
    assert cart_lines(page) == {"green-machine": 2, "sunrise-citrus": 3}
    assert page.inner_text("#cart-total") == "$41.95"  # 2 x 8.99 + 3 x 7.99
    # typing a quantity
    qty = page.locator("#cart-lines > li[data-sku=sunrise-citrus] input")
    qty.fill("5")
    qty.press("Tab")
    assert cart_lines(page) == {"green-machine": 2, "sunrise-citrus": 5}
    # an invalid quantity is ignored, the old one comes back
    qty.fill("")
    qty.press("Tab")
    assert cart_lines(page) == {"green-machine": 2, "sunrise-citrus": 5}
    # 1 is the floor for the minus button; "Remove" takes the line out
    minus = line.get_by_role("button", name="One less Green Machine")
    minus.click()
    assert minus.get_attribute("aria-disabled") == "true"
    minus.click(force=True)  # a no-op at 1 (Playwright won't click aria-disabled unforced)
    assert cart_lines(page)["green-machine"] == 1
    line.get_by_role("button", name="Remove Green Machine").click()
    assert cart_lines(page) == {"sunrise-citrus": 5}
    assert cart_count(page) == 5
    assert local_storage(page, CART_KEY) == {"v": 1, "lines": [{"sku": "sunrise-citrus", "qty": 5}]}
    shop.assert_clean()


def test_cart_survives_reload_and_follows_other_tabs(shop):
    page = open_shop(shop)
    add(page, "pineapple-mint", 2)
    page.reload()
    page.locator("#cart-lines > li").first.wait_for()
    assert cart_lines(page) == {"pineapple-mint": 2}

    other = open_shop(shop, shop.new_page())
    assert cart_lines(other) == {"pineapple-mint": 2}
    add(other, "carrot-ginger", 1)  # -> a storage event in the first tab
    page.wait_for_function("() => document.querySelector('#cart-count').textContent === '3'")
    assert cart_lines(page) == {"pineapple-mint": 2, "carrot-ginger": 1}
    other.locator("#cart-lines > li[data-sku=pineapple-mint]").get_by_role(
        "button", name="Remove Pineapple Mint"
    ).click()
    page.wait_for_function("() => document.querySelector('#cart-count').textContent === '1'")
    assert cart_lines(page) == {"carrot-ginger": 1}
    other.evaluate("localStorage.clear()")
    page.wait_for_function("() => document.querySelector('#cart-count').textContent === '0'")
    shop.assert_clean()


GOOD = {"v": 1, "lines": [{"sku": "beet-it", "qty": 2}]}


@pytest.mark.parametrize(
    ("stored", "expected"),
    [
        pytest.param({CART_KEY: "{not json"}, {}, id="garbage"),
        pytest.param({CART_KEY: "\x00\ufffd\ud83c"}, {}, id="binary-garbage"),
        pytest.param({CART_KEY: json.dumps([1, 2, 3])}, {}, id="foreign-array"),
        pytest.param({CART_KEY: json.dumps({"user": "x", "lines": "beet-it"})}, {}, id="foreign"),
        pytest.param({CART_KEY: "null"}, {}, id="null"),
        pytest.param({CART_KEY: json.dumps({"v": 2, "lines": GOOD["lines"]})}, {}, id="future"),
        pytest.param(
            {CART_KEY: json.dumps({"v": 1, "lines": [{"sku": "beet-it", "qty": "lots"}, 7]})},
            {},
            id="bad-lines",
        ),
        pytest.param(
            {LEGACY_CART_KEY: json.dumps([{"sku": "beet-it", "qty": 2}])},
            {"beet-it": 2},
            id="old-format-list",
        ),
        pytest.param(
            {LEGACY_CART_KEY: json.dumps({"beet-it": 1, "green-machine": 2})},
            {"beet-it": 1, "green-machine": 2},
            id="old-format-map",
        ),
        pytest.param(
            {
                CART_KEY: json.dumps(
                    {
                        "v": 1,
                        "lines": [
                            {"sku": "kale-crush", "qty": 2},
                            {"sku": "beet-it", "qty": 1},
                            {"sku": "beet-it", "qty": 2},
                            {"sku": "green-machine", "qty": 5000},
                        ],
                    }
                )
            },
            {"beet-it": 3, "green-machine": 50},
            id="unknown-sku-duplicates-and-huge-qty",
        ),
    ],
)
def test_bad_storage_recovers_silently(shop, stored, expected):
    page = open_shop(shop)
    seed_storage(page, stored)
    page.wait_for_function(
        "() => !document.querySelector('#cart-empty').hidden || "
        "document.querySelectorAll('#cart-lines > li').length > 0"
    )
    assert cart_lines(page) == expected
    assert cart_count(page) == sum(expected.values())
    assert page.locator("#catalog-status").is_hidden()  # no error state
    # storage is repaired: only the current format, only known products
    assert page.evaluate("k => localStorage.getItem(k)", LEGACY_CART_KEY) is None
    saved = local_storage(page, CART_KEY)
    if expected:
        assert saved == {"v": 1, "lines": [{"sku": s, "qty": q} for s, q in expected.items()]}
    else:
        assert saved is None
    # and the cart works normally afterwards
    add(page, "watermelon-cooler", 1)
    assert cart_lines(page) == {**expected, "watermelon-cooler": 1}
    shop.assert_clean()
