"""Test data for the browser tests, in one place."""

from __future__ import annotations

import secrets

# A domain the local DNS zone (devstack/zone.txt) makes deliverable (MX records).
EMAIL_DOMAIN = "deliverable.test"
# A domain with an RFC 7505 null MX: the server answers email_undeliverable.
UNDELIVERABLE_DOMAIN = "null-mx.test"

PHONE = "(212) 555-0143"
# Passes the storefront's lenient check (10 digits) but not the server's NANP rules.
SERVER_ONLY_BAD_PHONE = "(012) 555-0143"

NAME = "Ada Lovelace"
ADDRESS = {
    "line1": "12 Orchard St",
    "line2": "Apt 4B",
    "city": "New York",
    "state": "NY",
    "zip": "10002",
}

DUMMY_TOKEN = "XXXX.DUMMY.TOKEN.XXXX"

CART_KEY = "pressed.cart.v1"
LEGACY_CART_KEY = "pressed.cart"
CHECKOUT_KEY = "pressed.checkout.v1"


def shopper_email(tag: str, domain: str = EMAIL_DOMAIN) -> str:
    """A unique address per test (orders are counted per email)."""
    return f"shopper.{tag}.{secrets.token_hex(3)}@{domain}".lower()
