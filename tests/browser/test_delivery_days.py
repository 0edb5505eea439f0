"""Delivery days at checkout (issue 14), in Chromium against the stack exactly as `make run`
serves it: the radio group from the catalog, a purchase for a later day, and a day that fills
up while the shopper is on the page (422 delivery_day_unavailable, the days offered again)."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from tests.browser.axe import audit
from tests.browser.constants import shopper_email
from tests.browser.flows import (
    add,
    eventually,
    fill_checkout,
    go_to_checkout,
    mail_mentioning,
    open_shop,
    orders_for,
    recipients,
    submit,
    wait_confirmation,
    wait_turnstile,
)
from tests.browser.shop import dynamodb, human_day, screenshot, slot_count

# Chromium logs every non-2xx fetch as a console error; the 422 here is expected.
NETWORK_NOISE = (r"status of 422", r"Failed to load resource")

GROUP = "#day-group"
RADIOS = "#day-options input[type=radio]"


def catalog_days(page: Any) -> list[dict[str, Any]]:
    days: list[dict[str, Any]] = page.evaluate(
        "fetch('/api/catalog', {cache: 'no-store'}).then(r => r.json()).then(c => c.delivery_days)"
    )
    return days


def at_checkout(shop: Any, tag: str) -> tuple[Any, str]:
    page = open_shop(shop)
    add(page, "carrot-ginger", 3)
    go_to_checkout(page)
    page.locator(GROUP).wait_for(state="visible")
    email = shopper_email(tag)
    fill_checkout(page, email)
    wait_turnstile(page)
    return page, email


def checked_day(page: Any) -> str | None:
    value: str | None = page.evaluate(
        "document.querySelector('#day-options input:checked')?.value ?? null"
    )
    return value


def orders_response(page: Any) -> Any:
    return page.expect_response(
        lambda r: r.url.endswith("/api/orders") and r.request.method == "POST"
    )


def table(stack: Any) -> str:
    return str(stack.env.get("ORDERS_TABLE", "orders"))


def set_slot(stack: Any, day: str, n: int | None) -> None:
    """Write the day's counter the way the server keeps it (`slot#<day>`, `n`, `day`)."""
    client = dynamodb(stack)
    key = {"pk": {"S": f"slot#{day}"}}
    if n is None:
        client.delete_item(TableName=table(stack), Key=key)
    else:
        client.put_item(TableName=table(stack), Item={**key, "n": {"N": str(n)}, "day": {"S": day}})


def capacity() -> int:
    from chalicelib.shop import load_shop

    return load_shop().delivery_rules().capacity_per_day


def test_days_are_a_radio_group_with_the_earliest_available_day_chosen(shop, stack):
    page = open_shop(shop)
    add(page, "beet-it", 3)
    go_to_checkout(page)
    days = catalog_days(page)
    assert days, "the shop profile offers delivery days"
    group = page.get_by_role("group", name="Delivery day")
    group.wait_for()
    assert page.evaluate(f"document.querySelector('{GROUP}').tagName") == "FIELDSET"
    assert page.inner_text(f"{GROUP} legend") == "Delivery day"
    radios = page.locator(RADIOS)
    assert radios.count() == len(days)
    for i, day in enumerate(days):
        radio = radios.nth(i)
        assert radio.get_attribute("value") == day["date"]
        label = page.inner_text(f"label[for='day-{day['date']}']")
        if day["available"]:
            assert label == human_day(day["date"])
            assert radio.is_enabled()
        else:
            assert label.startswith(human_day(day["date"])) and "full" in label
            assert radio.is_disabled()
        # the accessible name is the day as people say it
        assert page.get_by_role("radio", name=human_day(day["date"])).count() == 1
    earliest = next(d["date"] for d in days if d["available"])
    assert checked_day(page) == earliest
    assert page.get_by_role("radio", name=human_day(earliest)).is_checked()
    audit(page, "checkout with delivery days")
    screenshot(page, "checkout-delivery-days")
    # a radio group: one Tab stop (the chosen day), arrows move the choice
    page.locator("#f-zip").focus()
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.value") == earliest
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.name") != "delivery_day"
    page.locator(f"#day-{earliest}").focus()
    page.keyboard.press("ArrowDown")
    later = [d["date"] for d in days if d["available"]]
    if len(later) > 1:
        assert checked_day(page) == later[1]
    shop.assert_clean()


def test_a_purchase_for_the_second_day_shows_it_and_stores_it(shop, stack):
    page, email = at_checkout(shop, "secondday")
    free = [d["date"] for d in catalog_days(page) if d["available"]]
    assert len(free) >= 2, free
    second = free[1]
    page.get_by_role("radio", name=human_day(second)).check()
    # the choice is part of the draft: a reload keeps it
    page.reload()
    page.locator(GROUP).wait_for(state="visible")
    page.wait_for_function("() => document.querySelector('#day-options input:checked')")
    assert checked_day(page) == second
    wait_turnstile(page)
    # the group is part of what goes read-only while the order is in flight: submitting
    # disables it in the same task, before the first await (no network stub needed)
    with orders_response(page) as answer:
        in_flight = page.evaluate(
            """() => { document.querySelector('#checkout-form').requestSubmit();
                       const g = document.querySelector('#day-group');
                       return {group: g.disabled, radios: [...g.querySelectorAll('input')]
                                 .every(i => i.matches(':disabled'))}; }"""
        )
    assert in_flight == {"group": True, "radios": True}
    response = answer.value
    assert response.status == 201
    assert response.json()["delivery_day"] == second
    order_id = wait_confirmation(page)
    assert shop.order_posts[-1].body["delivery_day"] == second
    assert page.inner_text("#confirm-day") == human_day(second)
    assert page.locator("#confirm-day-note").is_visible()
    [order] = orders_for(stack, email)
    assert order["order_id"] == order_id and order["delivery_day"] == second
    # the receipt names the same day
    mails = eventually(lambda: len(m := mail_mentioning(stack, order_id)) >= 2 and m, what="mail")
    [receipt] = [m for m in mails if email in recipients(m)]
    assert human_day(second) in str(receipt.get("body"))
    audit(page, "confirmation with a delivery day")
    screenshot(page, "confirmation-delivery-day")
    shop.assert_clean()


def test_a_day_that_fills_up_is_refused_and_the_next_days_are_offered(shop, stack):
    page, email = at_checkout(shop, "fullday")
    chosen = checked_day(page)
    assert chosen, "a day is chosen"
    # the day fills up while the shopper is on the page: its counter at capacity, written
    # the way the server keeps it
    before = slot_count(stack, chosen)
    cap = capacity()
    try:
        set_slot(stack, chosen, cap)
        with orders_response(page) as answer:
            submit(page)
        refused = answer.value
        assert refused.status == 422
        err = refused.json()["error"]
        assert err["code"] == "delivery_day_unavailable" and err["reason"] == "full"
        assert "delivery_day" in err["fields"]
        offered = err["next_available"]
        assert offered and chosen not in offered
        # the message is announced, the group re-rendered from next_available
        alert = page.locator("#form-alert")
        assert alert.get_attribute("role") == "alert"
        eventually(lambda: "fully booked" in alert.inner_text(), what="the alert", page=page)
        assert human_day(offered[0]) in alert.inner_text()
        assert page.locator("#day-error").is_visible()
        values = page.locator(RADIOS).evaluate_all("els => els.map(e => e.value)")
        assert values == sorted([*offered, chosen])
        full = page.locator(f"#day-{chosen}")
        assert full.is_disabled() and "full" in page.inner_text(f"label[for='day-{chosen}']")
        assert checked_day(page) == offered[0]
        assert page.evaluate("document.activeElement.value") == offered[0]
        assert page.locator("#submit-order").is_enabled()
        assert page.input_value("#f-email") == email, "the form keeps what was typed"
        audit(page, "checkout, delivery day full")
        screenshot(page, "checkout-delivery-day-full")

        # resubmit: a new attempt (new body, new key) for the offered day, which succeeds
        with orders_response(page) as answer:
            submit(page)
        assert answer.value.status == 201
        order_id = wait_confirmation(page)
        first, second = shop.order_posts[-2:]
        assert first.body["delivery_day"] == chosen and second.body["delivery_day"] == offered[0]
        assert first.key != second.key
        assert page.inner_text("#confirm-day") == human_day(offered[0])
        [order] = orders_for(stack, email)
        assert order["order_id"] == order_id and order["delivery_day"] == offered[0]
        assert slot_count(stack, chosen) == cap, "the refused order took no slot"
    finally:
        set_slot(stack, chosen, before)  # the stack is shared: give the day its room back
    shop.assert_clean(allow=NETWORK_NOISE)


def test_when_every_day_is_full_the_page_says_how_to_order_anyway(shop, stack):
    with urllib.request.urlopen(stack.url + "/api/catalog", timeout=10) as r:
        days = [d["date"] for d in json.loads(r.read())["delivery_days"]]
    before = {day: slot_count(stack, day) for day in days}
    cap = capacity()
    try:
        for day in days:
            set_slot(stack, day, cap)
        # the page loads the catalog after the days filled up: every day shown, full
        page = open_shop(shop)
        add(page, "beet-it", 3)
        go_to_checkout(page)
        page.locator(GROUP).wait_for(state="visible")
        radios = page.locator(RADIOS)
        assert radios.count() == len(days)
        assert all(radios.nth(i).is_disabled() for i in range(len(days)))
        assert checked_day(page) is None
        note = page.inner_text("#day-error")
        assert "fully booked" in note and "(212) 555-0100" in note
        fill_checkout(page, shopper_email("allfull"))
        wait_turnstile(page)
        audit(page, "checkout, every delivery day full")
        with orders_response(page) as answer:
            submit(page)
        assert answer.value.status == 422
        err = answer.value.json()["error"]
        assert (err["code"], err["reason"], err["next_available"]) == (
            "delivery_day_unavailable",
            "full",
            [],
        )
        assert "delivery_day" not in shop.order_posts[-1].body, "no day to send: none has room"
        alert = page.locator("#form-alert")
        eventually(lambda: "Every delivery day" in alert.inner_text(), page=page)
        assert "fully booked" in alert.inner_text()
        assert "(212) 555-0100" in alert.inner_text()
        # the days stay on show, all full, none chosen
        assert page.locator(GROUP).is_visible() and radios.count() == len(days)
        assert all(radios.nth(i).is_disabled() for i in range(len(days)))
        screenshot(page, "checkout-every-day-full")
    finally:
        for day, n in before.items():
            set_slot(stack, day, n)
    shop.assert_clean(allow=NETWORK_NOISE)
