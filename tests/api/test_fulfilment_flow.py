"""The fulfilment loop end to end through the API: the merchant alert carries one signed link
per next action, a transition through a link emails the customer once (through the outbox),
and the receipt links to the read-only status page."""

from __future__ import annotations

import html
import json
import re
from typing import Any
from urllib.parse import urlencode, urlparse

from tests.helpers import CUSTOMER_EMAIL, order_body, post_order

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def links_in(message: dict[str, Any]) -> list[str]:
    return [html.unescape(u) for u in re.findall(r'href="([^"]+)"', message["body"])]


def path_of(url: str) -> str:
    """`http://127.0.0.1:8000/api/o/<token>` -> `/o/<token>` (chalice.test has no /api)."""
    return urlparse(url).path.removeprefix("/api")


def mail_to(aws: Any, address: str) -> list[dict[str, Any]]:
    return [m for m in aws.sent_mail() if m["destinations"]["ToAddresses"] == [address]]


def test_links_in_the_alert_move_the_order_and_email_the_customer_once(
    client: Any, aws: Any
) -> None:
    r = post_order(client, order_body())
    assert r.status_code == 201
    oid = json.loads(r.body)["order_id"]
    [alert] = mail_to(aws, "merchant@juice.example.com")
    actions = [u for u in links_in(alert) if "/api/o/" in u]
    assert len(actions) == 2  # confirm and cancel: the next actions from "accepted"
    [receipt] = mail_to(aws, CUSTOMER_EMAIL)
    [status_link] = [u for u in links_in(receipt) if "/api/s/" in u]

    confirm = path_of(actions[0])
    page = client.http.get(confirm)  # a mail scanner's GET
    assert page.status_code == 200 and "Confirm order" in page.body.decode()
    assert len(mail_to(aws, CUSTOMER_EMAIL)) == 1  # nothing changed, nothing sent

    done = client.http.post(confirm, headers=FORM, body=urlencode({"action": "confirm"}))
    assert done.status_code == 200, done.body[:300]
    sent = mail_to(aws, CUSTOMER_EMAIL)
    assert len(sent) == 2 and oid in sent[1]["subject"]
    again = client.http.post(confirm, headers=FORM, body=urlencode({"action": "confirm"}))
    assert again.status_code == 200
    assert len(mail_to(aws, CUSTOMER_EMAIL)) == 2  # the same transition twice: no second email

    status = client.http.get(path_of(status_link))
    assert status.status_code == 200 and "Confirmed" in status.body.decode()
    from chalicelib.services import services

    order = services().store.get_order(oid)
    assert order is not None and order["status"] == "confirmed"
    assert order["emails"]["status_confirmed"]["status"] == "sent"
    assert "outbox" not in order
