"""Fulfilment from the merchant's inbox (issue 14) in a real browser: every transition through
the links in the emails, the mail read from the local mail viewer (/_dev/mail) in Chromium, on
the stack exactly as `make run` serves it (no route stubs).

A GET of a link never changes anything (mail scanners and previewers fetch every link): the
confirm page asks, only its form's POST acts. Every transition emails the customer once; an
old link says "already done" or can't be done (409) and sends nothing.
"""

from __future__ import annotations

from typing import Any

from tests.browser.axe import audit
from tests.browser.constants import shopper_email
from tests.browser.flows import buy, eventually, open_shop, orders_for, recipients
from tests.browser.shop import SCREENSHOTS, on_stack, screenshot, slot_count

# Chromium logs every non-2xx document as a console error; the 409 pages here are expected.
NETWORK_NOISE = (r"status of 409", r"Failed to load resource")
SHOP = "Pressed & Co."


def place_order(shop: Any, tag: str) -> tuple[str, str]:
    page = open_shop(shop)
    email = shopper_email(tag)
    order_id = buy(page, email)
    return email, order_id


def stored(stack: Any, email: str) -> dict[str, Any]:
    [order] = orders_for(stack, email)
    return order


def customer_mail(stack: Any, email: str, order_id: str) -> list[str]:
    """Subjects of the emails moto sent to the customer about this order, oldest first."""
    return [
        str(m.get("subject"))
        for m in stack.sent_mail()
        if email in recipients(m) and order_id in str(m.get("subject"))
    ]


class Viewer:
    """The local mail viewer in a tab of the shopper's browser context."""

    def __init__(self, shop: Any, stack: Any) -> None:
        self.stack = stack
        self.page = shop.new_page()
        self.open()

    def open(self) -> None:
        self.page.goto(self.stack.url + "/_dev/mail")

    def mail(self, subject: str) -> Any:
        """The viewer's articles whose heading is exactly `subject`."""
        heading = self.page.get_by_role("heading", name=subject, exact=True)
        return self.page.locator("article.mail").filter(has=heading)

    def wait_for(self, subject: str, count: int = 1) -> Any:
        def shown() -> bool:
            self.open()
            return bool(self.mail(subject).count() == count)

        eventually(shown, what=f"{count} email(s) {subject!r} in the mail viewer")
        return self.mail(subject)

    def link(self, subject: str, name: str) -> str:
        """The href of the link `name` in the email's HTML part (shown in a sandboxed iframe)."""
        href = self.mail(subject).frame_locator("iframe").get_by_role("link", name=name)
        return str(href.get_attribute("href"))

    def screenshot(self, subject: str, name: str) -> None:
        """One email as the viewer shows it (a full-page shot leaves off-screen iframes blank)."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        article = self.mail(subject)
        article.scroll_into_view_if_needed()
        article.screenshot(path=str(SCREENSHOTS / f"{name}.png"))

    def links(self, subject: str) -> list[str]:
        frame = self.mail(subject).frame_locator("iframe")
        return [str(a) for a in frame.locator("a").evaluate_all("els => els.map(e => e.href)")]


def post_and_wait(page: Any, button: str) -> Any:
    """Click the page's form button; returns the POST's response (the next page)."""
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.get_by_role("button", name=button).click()
    page.wait_for_load_state()
    return answer.value


def test_every_transition_through_the_links_in_the_mail(shop, stack):
    email, order_id = place_order(shop, "links")
    viewer = Viewer(shop, stack)
    alert_subject = f"New order {order_id}"
    viewer.wait_for(alert_subject)
    receipt_subject = f"Your {SHOP} order {order_id}"
    viewer.wait_for(receipt_subject)
    viewer.screenshot(alert_subject, "links-mail-merchant-alert")
    # one link per next action from "accepted": confirm and cancel, nothing else that acts
    actions = [u for u in viewer.links(alert_subject) if "/api/o/" in u]
    assert len(actions) == 2, actions
    confirm_url = on_stack(viewer.link(alert_subject, "Confirm the order"), stack)
    status_url = on_stack(viewer.link(receipt_subject, "Follow your order"), stack)

    # the shopper's status page (from the receipt) before anything happened
    status = shop.new_page()
    assert status.goto(status_url).status == 200
    assert "We have your order." in status.inner_text("main")

    # GET is safe: the confirm page asks, twice over, and nothing changes
    before = stored(stack, email)
    mails_before = len(stack.sent_mail())
    tab = shop.new_page()
    assert tab.goto(confirm_url).status == 200
    assert tab.inner_text("h1") == f"Confirm order {order_id}?"
    assert order_id in tab.inner_text("main") and "Received" in tab.inner_text("main")
    tab.reload()  # a second fetch (a scanner, a link preview) is just as harmless
    after_get = stored(stack, email)
    assert after_get["status"] == "accepted" == before["status"]
    assert after_get["history"] == before["history"]
    assert len(stack.sent_mail()) == mails_before, "a GET sent no email"
    status.reload()
    assert "We have your order." in status.inner_text("main")
    audit(tab, "confirm page")
    screenshot(tab, "links-confirm-page")

    # a second tab keeps the confirm page open: its form is used again later
    stale = shop.new_page()
    stale.goto(confirm_url)

    # confirm -> out for delivery -> delivered, each through the next link on the done page
    steps = [
        ("Confirm order", "confirmed", "confirmed", f"Your {SHOP} order {order_id} is confirmed"),
        (
            "Mark as out for delivery",
            "out for delivery",
            "out_for_delivery",
            f"Your {SHOP} order {order_id} is on its way",
        ),
        (
            "Mark as delivered",
            "delivered",
            "delivered",
            f"Your {SHOP} order {order_id} was delivered",
        ),
    ]
    deliver_url = ""
    for i, (button, words, state, subject) in enumerate(steps):
        if i:  # the done page links to the next confirm page (a GET that asks first)
            tab.get_by_role("link", name=button).click()
            tab.wait_for_load_state()
            assert tab.inner_text("h1").endswith("?"), tab.inner_text("h1")
            assert stored(stack, email)["status"] == steps[i - 1][2], "the GET changed nothing"
            deliver_url = tab.url
        answer = post_and_wait(tab, button)
        assert answer.status == 200
        assert tab.inner_text("h1") == f"Order {order_id} is now {words}"
        assert "The customer will get an email." in tab.inner_text("main")
        order = stored(stack, email)
        assert order["status"] == state
        assert [h["status"] for h in order["history"]][-1] == state
        viewer.wait_for(subject)  # the customer's status email, in the mail viewer
        assert recipients_of(stack, subject) == [email]
        if i == 0:
            screenshot(tab, "links-done-page")
    assert len(stored(stack, email)["history"]) == 4
    assert customer_mail(stack, email, order_id) == [receipt_subject] + [s[3] for s in steps]

    # old links: nothing changes, no second email
    sent = len(stack.sent_mail())
    again = shop.new_page()
    answer = again.goto(confirm_url)
    assert answer.status == 409
    assert again.inner_text("h1") == f"Order {order_id} can't be confirmed"
    assert "Nothing changed" in again.inner_text("main")
    answer = again.goto(deliver_url)
    assert answer.status == 200
    assert again.inner_text("h1") == f"Order {order_id} was already delivered"
    screenshot(again, "links-already-done")
    # the confirm form from the start, submitted now: the POST is refused (409)
    assert post_and_wait(stale, "Confirm order").status == 409
    assert "can't be confirmed" in stale.inner_text("h1")
    assert stored(stack, email)["status"] == "delivered"
    assert len(stack.sent_mail()) == sent, "old links sent no email"

    # the shopper's status page shows the whole history, and offers no action
    status.reload()
    text = status.inner_text("main")
    assert "Your order was delivered. Thank you!" in text
    history = status.locator("ol.history li").all_inner_texts()
    assert [h.split("\n")[0].split(" ")[0] for h in history] == [
        "Received",
        "Confirmed",
        "Out",
        "Delivered",
    ], history
    assert status.locator("form, button").count() == 0
    audit(status, "status page")
    screenshot(status, "links-status-page")
    shop.assert_clean(allow=NETWORK_NOISE)


def recipients_of(stack: Any, subject: str) -> list[str]:
    return [a for m in stack.sent_mail() if m.get("subject") == subject for a in recipients(m)]


def test_cancel_with_a_reason_from_the_alert(shop, stack):
    email, order_id = place_order(shop, "cancel")
    day = stored(stack, email)["delivery_day"]
    slots_before = slot_count(stack, day)
    viewer = Viewer(shop, stack)
    alert_subject = f"New order {order_id}"
    viewer.wait_for(alert_subject)
    cancel_url = on_stack(viewer.link(alert_subject, "Cancel the order"), stack)
    confirm_url = on_stack(viewer.link(alert_subject, "Confirm the order"), stack)
    receipt_subject = f"Your {SHOP} order {order_id}"
    viewer.wait_for(receipt_subject)
    status_url = on_stack(viewer.link(receipt_subject, "Follow your order"), stack)

    tab = shop.new_page()
    assert tab.goto(cancel_url).status == 200
    assert tab.inner_text("h1") == f"Cancel order {order_id}?"
    assert stored(stack, email)["status"] == "accepted"
    reason = "Out of beets <b>today</b> & tomorrow, sorry"
    tab.get_by_label("Reason (optional, shown to the customer)").fill(reason)
    audit(tab, "cancel page with a reason")
    screenshot(tab, "links-cancel-page")
    assert post_and_wait(tab, "Cancel order").status == 200
    assert tab.inner_text("h1") == f"Order {order_id} is now cancelled"
    order = stored(stack, email)
    assert order["status"] == "cancelled"
    assert order["history"][-1]["reason"] == reason
    assert slot_count(stack, day) == (slots_before or 0) - 1, "the slot came back"

    # the customer's email carries the reason, as text (escaped), not as markup
    subject = f"Your {SHOP} order {order_id} was cancelled"
    viewer.wait_for(subject)
    frame = viewer.mail(subject).frame_locator("iframe")
    assert reason in frame.locator("body").inner_text()
    assert frame.locator("b", has_text="today").count() == 0
    viewer.screenshot(subject, "links-mail-cancelled")

    # an old confirm link now can't be used, and nothing is sent
    sent = len(stack.sent_mail())
    again = shop.new_page()
    assert again.goto(confirm_url).status == 409
    assert again.inner_text("h1") == f"Order {order_id} can't be confirmed"
    assert again.goto(cancel_url).status == 200
    assert again.inner_text("h1") == f"Order {order_id} was already cancelled"
    assert len(stack.sent_mail()) == sent
    assert slot_count(stack, day) == (slots_before or 0) - 1, "given back once"

    # the shopper's status page: cancelled, with the reason, escaped
    status = shop.new_page()
    assert status.goto(status_url).status == 200
    text = status.inner_text("main")
    assert "Your order was cancelled." in text and reason in text
    assert status.locator("main b").count() == 0
    assert status.locator("form, button").count() == 0
    shop.assert_clean(allow=NETWORK_NOISE)
