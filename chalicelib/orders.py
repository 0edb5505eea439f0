"""Order validation and pricing: pure functions on plain values.

The client's prices and totals are never read: every line is priced from the catalog.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from chalicelib import textguard
from chalicelib.catalog import Catalog
from chalicelib.errors import ApiError, validation_failed
from chalicelib.recipients import Undeliverable, normalize_email

if TYPE_CHECKING:
    from chalicelib.shop import ShopProfile

US_STATES = frozenset(
    "AL AK AZ AR CA CO CT DE FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH NJ "
    "NM NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY DC PR GU VI AS MP AA AE AP".split()
)
ZIP_RE = re.compile(r"^[0-9]{5}(-[0-9]{4})?$")
IDEMPOTENCY_KEY_RE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
PHONE_PUNCTUATION = re.compile(r"[\s().\-]")
# bidi overrides/isolates can disguise text in a mail client
_BIDI = {chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))}

MAX_LINES = 50
# Characters per field (docs/guard.md): room for real names and US addresses, not for an ad.
LIMITS = {"name": 60, "line1": 70, "line2": 70, "city": 40, "email": 254, "notes": 280}


@dataclass(frozen=True)
class TextRule:
    """How a free-text field that reaches an email is checked (see `clean_text`).

    noun: how messages name the field ("a name", "an address"); needs: "letter" (at least one
    letter), "letter_or_digit" or "" (nothing more than non-empty)."""

    limit: int
    noun: str
    needs: str = ""
    allow_links: bool = False  # True only for text that never reaches an email


# Every free-text field printed into an email. A later field (e.g. `notes`) gets a row here
# and a `clean_text(body.get("notes"), "notes", ...)` call: the link and Unicode rules follow.
TEXT_RULES: dict[str, TextRule] = {
    "name": TextRule(LIMITS["name"], "a name", needs="letter"),
    "shipping.line1": TextRule(LIMITS["line1"], "an address", needs="letter_or_digit"),
    "shipping.line2": TextRule(LIMITS["line2"], "an address", needs="letter_or_digit"),
    "shipping.city": TextRule(LIMITS["city"], "a city name", needs="letter"),
    "notes": TextRule(LIMITS["notes"], "a note", needs="letter_or_digit"),
}


@dataclass(frozen=True)
class Address:
    line1: str
    line2: str
    city: str
    state: str
    zip: str


@dataclass(frozen=True)
class OrderLine:
    sku: str
    name: str
    qty: int
    unit_price_cents: int
    line_total_cents: int


@dataclass(frozen=True)
class OrderRequest:
    name: str
    email: str
    phone: str
    shipping: Address
    lines: tuple[OrderLine, ...]
    total_cents: int
    currency: str
    turnstile_token: str | None
    honeypot: str
    # total_cents = subtotal_cents + delivery_fee_cents (the fee priced from the shop profile)
    subtotal_cents: int = 0
    delivery_fee_cents: int = 0

    def lines_as_dicts(self) -> list[dict[str, Any]]:
        return [asdict(line) for line in self.lines]


def has_control_chars(value: str) -> bool:
    """True for C0/C1 controls (CR, LF, NUL, tab...), lone surrogates, line/paragraph
    separators and bidi overrides."""
    for ch in value:
        if ch in _BIDI:
            return True
        cat = unicodedata.category(ch)
        if cat in ("Cc", "Cs", "Zl", "Zp"):
            return True
    return False


def clean_text(value: Any, path: str, errors: dict[str, str], *, required: bool, limit: int) -> str:
    """Trim and check a free-text field; record a message in errors on failure.

    Fields listed in TEXT_RULES (everything that reaches an email) also refuse invisible
    characters, need a letter (or digit), refuse links, and have the rule's limit when it is
    tighter than `limit`."""
    if value is None:
        value = ""
    if not isinstance(value, str):
        errors[path] = "Must be text."
        return ""
    value = unicodedata.normalize("NFC", value.strip())
    rule = TEXT_RULES.get(path)
    if rule is not None:
        limit = min(limit, rule.limit)
    if has_control_chars(value):
        errors[path] = "Line breaks and control characters are not allowed."
    elif rule is not None and textguard.invisible_chars(value):
        errors[path] = invisible_message(value)
    elif required and not value:
        errors[path] = "Required."
    elif len(value) > limit:
        errors[path] = f"Must be at most {limit} characters."
    elif rule is not None and value and (problem := text_problem(value, rule)):
        errors[path] = problem
    return value


def invisible_message(value: str) -> str:
    codes = textguard.invisible_chars(value)
    shown = ", ".join(codes[:3]) + (" ..." if len(codes) > 3 else "")
    return f"Remove the invisible characters ({shown}); type the text again if unsure."


def text_problem(value: str, rule: TextRule) -> str | None:
    """The message for a trimmed, NFC, length-checked value that breaks `rule`, or None."""
    if rule.needs == "letter" and not textguard.has_letter(value):
        return "Must contain letters."
    if rule.needs == "letter_or_digit" and not textguard.has_letter_or_digit(value):
        return "Must contain letters or digits."
    if rule.allow_links:
        return None
    found = textguard.find_link(value)
    if found is None:
        return None
    if found.kind == "email":
        return f"Email addresses can't go in {rule.noun}; the email field is for that."
    if found.kind == "domain":
        return f"Links can't go in {rule.noun}. If this isn't a link, put a space after the dot."
    return f"Links can't go in {rule.noun}."


def normalize_us_phone(raw: str) -> str | None:
    """US/NANP phone to E.164 (+1NXXNXXXXXX), or None when it is not one."""
    s = PHONE_PUNCTUATION.sub("", raw)
    if s.startswith("+"):
        s = s[1:]
        if not s.startswith("1"):
            return None
    if not s.isascii() or not s.isdigit():
        return None
    if len(s) == 11 and s.startswith("1"):
        s = s[1:]
    if len(s) != 10:
        return None
    area, exchange = s[:3], s[3:6]
    if area[0] in "01" or exchange[0] in "01" or area[1:] == "11":
        return None
    return "+1" + s


def request_hash(body: Any) -> str:
    """A stable fingerprint of a request body (key order and whitespace don't matter)."""
    # ensure_ascii: lone surrogates (valid in JSON escapes) must not break the encoding
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _parse_items(
    raw: Any, catalog: Catalog, min_items: int, max_qty: int, errors: dict[str, str]
) -> tuple[OrderLine, ...]:
    if not isinstance(raw, list) or not raw:
        errors["items"] = "Add at least one product."
        return ()
    if len(raw) > MAX_LINES:
        errors["items"] = f"At most {MAX_LINES} lines per order."
        return ()
    lines: list[OrderLine] = []
    seen: set[str] = set()
    total_qty = 0
    for i, item in enumerate(raw):
        path = f"items[{i}]"
        if not isinstance(item, dict):
            errors[path] = "Each line must be an object with sku and qty."
            continue
        sku, qty = item.get("sku"), item.get("qty")
        product = catalog.get(sku) if isinstance(sku, str) else None
        if product is None:
            errors[f"{path}.sku"] = "Unknown product."
        elif sku in seen:
            errors[f"{path}.sku"] = "This product is already in the order; combine the quantities."
        if isinstance(sku, str):
            seen.add(sku)
        if not isinstance(qty, int) or isinstance(qty, bool):
            errors[f"{path}.qty"] = "Quantity must be a whole number."
            continue
        if not 1 <= qty <= max_qty:
            errors[f"{path}.qty"] = f"Quantity must be between 1 and {max_qty}."
            continue
        total_qty += qty
        if product is not None and f"{path}.sku" not in errors:
            lines.append(
                OrderLine(
                    product.sku, product.name, qty, product.price_cents, product.price_cents * qty
                )
            )
    if not any(k.startswith("items") for k in errors) and total_qty < min_items:
        errors["items"] = f"Order at least {min_items} items in total."
    return tuple(lines)


def parse_order(
    body: Any,
    catalog: Catalog,
    *,
    min_items: int = 3,
    max_line_qty: int = 50,
    test_environment: bool = False,
    shop: ShopProfile | None = None,
) -> OrderRequest:
    """Validate and price an order body. Raises ApiError (422) listing every bad field."""
    if not isinstance(body, dict):
        raise validation_failed({"body": "Expected a JSON object."})
    errors: dict[str, str] = {}
    name = clean_text(body.get("name"), "name", errors, required=True, limit=LIMITS["name"])

    email = ""
    email_syntax: Undeliverable | None = None
    raw_email = clean_text(body.get("email"), "email", errors, required=True, limit=LIMITS["email"])
    if "email" not in errors:
        try:
            email = normalize_email(raw_email, test_environment=test_environment)
        except Undeliverable as e:
            email_syntax = e
            errors["email"] = "Enter a valid email address."

    phone = ""
    raw_phone = body.get("phone")
    if not isinstance(raw_phone, str) or not raw_phone.strip():
        errors["phone"] = "Required."
    elif len(raw_phone) > 32 or (normalized := normalize_us_phone(raw_phone)) is None:
        errors["phone"] = "Enter a US phone number, e.g. (212) 555-0143."
    else:
        phone = normalized

    ship = body.get("shipping")
    if not isinstance(ship, dict):
        errors["shipping"] = "Shipping address is required."
        ship = {}
    line1 = clean_text(ship.get("line1"), "shipping.line1", errors, required=True, limit=100)
    line2 = clean_text(ship.get("line2"), "shipping.line2", errors, required=False, limit=100)
    city = clean_text(ship.get("city"), "shipping.city", errors, required=True, limit=60)
    state = ship.get("state")
    if not isinstance(state, str) or state.strip().upper() not in US_STATES:
        errors["shipping.state"] = "Choose a US state."
        state = ""
    state = state.strip().upper()
    zip_code = ship.get("zip")
    if not isinstance(zip_code, str) or not ZIP_RE.match(zip_code.strip()):
        errors["shipping.zip"] = "Enter a ZIP code like 10001 or 10001-1234."
        zip_code = ""
    zip_code = zip_code.strip()

    lines = _parse_items(body.get("items"), catalog, min_items, max_line_qty, errors)

    token = body.get("turnstile_token")
    if token is not None and not isinstance(token, str):
        errors["turnstile_token"] = "Must be text."  # nosec B105
        token = None
    elif token and (not token.isascii() or not token.isprintable()):
        # no real token looks like this: refused by the bot check, never sent on
        token = ""  # nosec B105  # not a password
    honeypot = body.get("website")
    honeypot = honeypot if isinstance(honeypot, str) else ("" if honeypot is None else "x")

    if errors:
        if email_syntax is not None and list(errors) == ["email"]:
            raise ApiError(
                422,
                "email_undeliverable",
                "We can't send a receipt to this email address. Please check it.",
                {"email": email_syntax.message},
                extra={"reason": "syntax"},
            )
        raise validation_failed(errors)
    if shop is not None:
        check_delivery_area(shop, state, zip_code)
    subtotal = sum(line.line_total_cents for line in lines)
    fee = delivery_fee_cents(shop, subtotal)
    return OrderRequest(
        name=name,
        email=email,
        phone=phone,
        shipping=Address(line1, line2, city, state, zip_code),
        lines=lines,
        total_cents=subtotal + fee,
        currency=catalog.currency,
        turnstile_token=token,
        honeypot=honeypot,
        subtotal_cents=subtotal,
        delivery_fee_cents=fee,
    )


# --- delivery area and fee (the shop profile) ------------------------------------------------


def check_delivery_area(shop: ShopProfile, state: str, zip_code: str) -> None:
    """422 outside_delivery_area unless the shop delivers to this state + ZIP."""
    if shop.delivery_area.covers(state, zip_code):
        return
    area = shop.delivery_area.description
    raise ApiError(
        422,
        "outside_delivery_area",
        f"Sorry, we only deliver in {area}. Please use a delivery address there.",
        {"shipping.zip": f"We don't deliver to this ZIP code. We deliver in {area}."},
    )


def delivery_fee_cents(shop: ShopProfile | None, subtotal_cents: int) -> int:
    """The delivery fee for this subtotal, priced on the server (0 without a shop profile)."""
    return 0 if shop is None else shop.delivery_fee(subtotal_cents)
