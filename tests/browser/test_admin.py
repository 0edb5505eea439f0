"""The back office in Chromium against the local stack: sign in through the link in the mail
viewer (/_dev/mail), list and search orders, confirm one, download the CSV, email health."""

from __future__ import annotations

import json
import re
import urllib.request
from typing import Any
from urllib.parse import urlparse

from tests.browser.axe import audit
from tests.browser.flows import eventually, mail_mentioning
from tests.helpers import order_body

MERCHANT = "merchant@juice.example.com"


def place_order(stack: Any, email: str) -> tuple[str, str]:
    """(order id, delivery day) of a new order placed through the local API."""
    req = urllib.request.Request(
        stack.url + "/api/orders",
        data=json.dumps(order_body(email=email)).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=30) as r:  # noqa: S310 - the local stack
        placed = json.loads(r.read())
    return str(placed["order_id"]), str(placed["delivery_day"])


def sign_in_link(shop: Any, stack: Any, before: int) -> str:
    """The link of the newest sign-in email, read in the mail viewer like a person would."""
    eventually(lambda: len(mail_mentioning(stack, "/api/admin/login/")) > before, what="mail")
    viewer = shop.new_page()
    viewer.goto(stack.url + "/_dev/mail")
    article = viewer.locator("article.mail", has=viewer.locator("h2", has_text="Sign in to")).first
    frame = article.frame_locator("iframe")
    href = frame.locator("a", has_text="Sign in").get_attribute("href")
    viewer.close()
    assert href and "/api/admin/login/" in href
    return stack.url + urlparse(href).path  # PUBLIC_BASE_URL is :8000; the stack's port varies


def test_back_office_sign_in_search_confirm_export(shop: Any, stack: Any) -> None:
    oid, day = place_order(stack, "office.buyer@deliverable.test")
    page = shop.goto("/admin")  # what merchants type (CloudFront: AdminPathFunction)
    page.locator("#signin").wait_for(state="visible")
    audit(page, "admin: sign in")
    before = len(mail_mentioning(stack, "/api/admin/login/"))
    page.fill("#signin-email", MERCHANT)
    page.click("#signin-form button")
    page.locator("#signin-done").wait_for(state="visible")
    assert "sign-in link is on its way" in page.inner_text("#signin-done")

    link = sign_in_link(shop, stack, before)
    page.goto(link)  # what the email opens: a button, nothing used yet
    assert page.locator("button", has_text="Sign in").is_visible()
    page.click("button:has-text('Sign in')")
    page.wait_for_url(re.compile(r"/admin$"))
    page.locator("#office").wait_for(state="visible")
    assert "m***@juice.example.com" in page.inner_text("#who")
    cookies = {c["name"]: c for c in shop.context.cookies()}
    session = cookies["admin_session"]
    assert session["httpOnly"] and session["sameSite"] == "Strict"
    assert session["path"] == "/api/admin"

    # the list opens on today's deliveries; the merchant picks the order's delivery day
    page.fill("#filter-day", day)
    page.click("#filter button")
    page.locator(f"#orders button[data-order='{oid}']").wait_for()
    page.fill("#search-q", oid)
    page.click("#search button")
    page.locator("#orders[aria-busy='false']").wait_for(state="attached")  # the search's answer
    page.locator(f"#orders button[data-order='{oid}']").wait_for()
    assert page.locator("#orders tbody tr").count() == 1
    page.fill("#search-q", "Office.Buyer+x@deliverable.test")
    page.click("#search button")
    page.locator(f"#orders button[data-order='{oid}']").wait_for()

    page.click(f"#orders button[data-order='{oid}']")
    page.locator("#detail").wait_for(state="visible")
    assert "office.buyer@deliverable.test" in page.inner_text("#d-customer")
    assert "Green Machine" in page.inner_text("#d-items")
    page.click("#d-actions button[data-action='confirm']")
    eventually(lambda: "Confirmed" in page.inner_text("#detail-title"), page=page, what="confirm")
    history = page.inner_text("#d-history")
    assert "Confirmed (admin)" in history
    audit(page, "admin: order detail")
    assert "status_confirmed" in page.inner_text("#d-emails")

    page.click("[data-tab='export']")
    page.fill("#export-from", day)  # the export covers orders by their (delivery) day
    page.fill("#export-to", day)
    with page.expect_download() as info:
        page.click("#export-form button")
    path = info.value.path()
    raw = open(path, "rb").read()
    assert raw.startswith(b"\xef\xbb\xbf") and oid.encode() in raw
    assert info.value.suggested_filename.startswith("orders-")

    page.click("[data-tab='health']")
    page.locator("#health tbody tr").nth(1).wait_for()
    assert "Last 7 days" in page.inner_text("#health") and "Last 30 days" in page.inner_text(
        "#health"
    )

    # a reused link: refused, no second session
    page.goto(link)
    page.click("button:has-text('Sign in')")
    assert "not valid any more" in page.inner_text("main")
    shop.assert_clean(allow=(r"status of 401",))
