"""Table-driven unit tests for validation and pricing (pure functions, no servers)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest

from chalicelib.catalog import load_catalog, parse_catalog
from chalicelib.errors import ApiError
from chalicelib.hours import closed_message, is_open, parse_hours
from chalicelib.ids import CROCKFORD, new_order_id
from chalicelib.mail import money, render
from chalicelib.orders import normalize_us_phone, parse_order, request_hash
from tests.helpers import order_body

CAT = load_catalog()


def parse(body: Any, **kw: Any) -> Any:
    return parse_order(body, CAT, test_environment=True, **kw)


def fields_of(body: Any, **kw: Any) -> dict[str, str]:
    with pytest.raises(ApiError) as e:
        parse(body, **kw)
    assert e.value.code == "validation_failed"
    return e.value.fields


def test_prices_come_from_the_catalog() -> None:
    req = parse(order_body(items=[{"sku": "beet-it", "qty": 4, "price_cents": 0}]))
    beet = CAT.get("beet-it")
    assert beet is not None
    assert req.total_cents == 4 * beet.price_cents
    assert req.lines[0].unit_price_cents == beet.price_cents


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("(212) 555-0143", "+12125550143"),
        ("212.555.0143", "+12125550143"),
        ("+1 212 555 0143", "+12125550143"),
        ("1-212-555-0143", "+12125550143"),
        ("2125550143", "+12125550143"),
        ("(012) 555-0143", None),  # area code can't start with 0
        ("(212) 155-0143", None),  # exchange can't start with 1
        ("(911) 555-0143", None),  # N11 is not an area code
        ("+44 20 7946 0958", None),
        ("555-0143", None),
        ("212555014３", None),  # fullwidth digit
        ("phone", None),
        ("", None),
    ],
)
def test_phone_normalisation(raw: str, e164: str | None) -> None:
    assert normalize_us_phone(raw) == e164


@pytest.mark.parametrize(
    ("override", "path"),
    [
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"name": "Jane\nDoe"}, "name"),
        ({"name": "Jane\rDoe"}, "name"),
        ({"name": "Jane\x00Doe"}, "name"),
        ({"name": "Jane\u2028Doe"}, "name"),
        ({"name": "Jane\u202eeoD"}, "name"),
        ({"name": "Jane\ud800Doe"}, "name"),  # a lone surrogate can't be encoded for SES
        ({"shipping__city": "\udfff"}, "shipping.city"),
        ({"name": 42}, "name"),
        ({"name": None}, "name"),
        ({"email": ""}, "email"),
        ({"email": ["a@b.c"]}, "email"),
        ({"phone": "12"}, "phone"),
        ({"phone": 2125550143}, "phone"),
        ({"shipping": "1 Main"}, "shipping"),
        ({"shipping__line1": ""}, "shipping.line1"),
        ({"shipping__line2": "x\ty"}, "shipping.line2"),
        ({"shipping__city": "c" * 61}, "shipping.city"),
        ({"shipping__state": "ZZ"}, "shipping.state"),
        ({"shipping__state": None}, "shipping.state"),
        ({"shipping__zip": "1000"}, "shipping.zip"),
        ({"shipping__zip": "10001-12"}, "shipping.zip"),
        ({"shipping__zip": 10001}, "shipping.zip"),
        ({"items": []}, "items"),
        ({"items": "green-machine"}, "items"),
        ({"items": [{"sku": "green-machine", "qty": 2}]}, "items"),  # below minimum
        ({"items": [{"sku": "beet-it", "qty": 51}]}, "items[0].qty"),
        ({"items": [{"sku": "beet-it", "qty": 3.5}]}, "items[0].qty"),
        ({"items": [{"sku": "beet-it", "qty": True}]}, "items[0].qty"),
        ({"items": [{"sku": "beet-it", "qty": "3"}]}, "items[0].qty"),
        ({"items": [{"sku": "beet-it", "qty": -3}]}, "items[0].qty"),
        ({"items": [{"sku": "nope", "qty": 3}]}, "items[0].sku"),
        ({"items": [{"sku": None, "qty": 3}]}, "items[0].sku"),
        ({"items": [{"sku": "beet-it", "qty": 2}, {"sku": "beet-it", "qty": 2}]}, "items[1].sku"),
        ({"items": ["beet-it"]}, "items[0]"),
        ({"items": [{"sku": "beet-it", "qty": 1}] * 51}, "items"),
        ({"turnstile_token": 7}, "turnstile_token"),
    ],
)
def test_validation_rejects(override: dict[str, Any], path: str) -> None:
    assert path in fields_of(order_body(**override))


def test_all_errors_reported_together() -> None:
    fields = fields_of(order_body(name="", phone="x", shipping__zip="x"))
    assert {"name", "phone", "shipping.zip"} <= set(fields)


def test_trimming_and_normalisation() -> None:
    req = parse(
        order_body(
            name="  Jane Doe ",
            email="Shopper@Deliverable.TEST",
            shipping__state=" ny",
            shipping__city=" New York ",
        )
    )
    assert req.name == "Jane Doe"
    assert req.email == "Shopper@deliverable.test"
    assert req.shipping.state == "NY" and req.shipping.city == "New York"


def test_email_syntax_alone_is_email_undeliverable() -> None:
    with pytest.raises(ApiError) as e:
        parse(order_body(email="not-an-address"))
    assert e.value.code == "email_undeliverable"
    assert e.value.extra["reason"] == "syntax"
    assert "email" in e.value.fields


def test_min_items_is_a_setting() -> None:
    assert parse(order_body(items=[{"sku": "beet-it", "qty": 1}]), min_items=1).total_cents > 0
    assert "items" in fields_of(order_body(), min_items=10)


def test_unknown_fields_ignored_and_hostile_unicode_kept_as_text() -> None:
    req = parse(order_body(admin=True, name="Zoë 🍊 O'Brien <b>&amp;"))
    assert req.name == "Zoë 🍊 O'Brien <b>&amp;"


def test_request_hash_ignores_key_order() -> None:
    assert request_hash({"a": 1, "b": [1, 2]}) == request_hash({"b": [1, 2], "a": 1})
    assert request_hash({"a": 1}) != request_hash({"a": 2})


def test_catalog_rejects_bad_data() -> None:
    good = {"sku": "a", "name": "A", "description": "d", "price_cents": 100, "image": "i"}
    with pytest.raises(ValueError):
        parse_catalog({"currency": "USD", "products": [{**good, "price_cents": 1.5}]})
    with pytest.raises(ValueError):
        parse_catalog({"currency": "USD", "products": [good, good]})
    assert 5 <= len(CAT.products) <= 8


def test_order_ids_are_crockford_and_unique() -> None:
    ids = {new_order_id() for _ in range(5000)}
    assert len(ids) == 5000
    assert all(len(i) == 10 and set(i) <= set(CROCKFORD) for i in ids)


@pytest.mark.parametrize(
    ("utc", "open_"),
    [
        (datetime(2026, 11, 30, 13, 0, tzinfo=timezone.utc), True),  # Mon 08:00 NY
        (datetime(2026, 11, 30, 12, 59, tzinfo=timezone.utc), False),  # Mon 07:59 NY
        (datetime(2026, 12, 1, 0, 59, tzinfo=timezone.utc), True),  # Mon 19:59 NY
        (datetime(2026, 12, 1, 1, 0, tzinfo=timezone.utc), False),  # Mon 20:00 NY
        (datetime(2026, 11, 29, 17, 0, tzinfo=timezone.utc), False),  # Sunday
        (datetime(2026, 7, 4, 12, 30, tzinfo=timezone.utc), True),  # Sat 08:30 EDT
    ],
)
def test_business_hours(utc: datetime, open_: bool) -> None:
    assert is_open(utc, "Mon-Sat 08:00-20:00", "America/New_York")[0] is open_


def test_hours_specs() -> None:
    assert parse_hours("always") is None
    assert is_open(datetime(2026, 11, 29, tzinfo=timezone.utc), "always", "UTC") == (True, None)
    _, nxt = is_open(datetime(2026, 11, 29, 17, tzinfo=timezone.utc), "Sun 13:00-14:00", "UTC")
    assert nxt is not None and nxt.hour == 13 and nxt.weekday() == 6
    assert "open again" in closed_message(nxt)
    with pytest.raises(ValueError):
        parse_hours("Mon-Fri 25:00-26:00")


def test_money_and_templates_escape() -> None:
    assert money(0) == "$0.00" and money(123456) == "$1,234.56"
    order = {
        "order_id": "ABCDEFGHJK",
        "customer": {"name": "<b>x</b>", "email": "a@b.test", "phone": "+12125550143"},
        "shipping": {"line1": "&", "line2": "", "city": "c", "state": "NY", "zip": "10001"},
        "items": [
            {"sku": "s", "name": "N", "qty": 1, "unit_price_cents": 5, "line_total_cents": 5}
        ],
        "total_cents": 5,
        "flags": [],
    }
    mail = render(order, "customer", shop_name="Shop", merchant_email="m@shop.test")
    assert "&lt;b&gt;x&lt;/b&gt;" in mail.html and "<b>x</b>" not in mail.html
    assert "<b>x</b>" in mail.text  # plain text is not HTML: shown as typed
    assert mail.to == "a@b.test" and mail.reply_to == "m@shop.test"
    merchant = render(order, "merchant", shop_name="Shop", merchant_email="m@shop.test")
    assert merchant.reply_to == "a@b.test" and "ABCDEFGHJK" in merchant.subject


def test_request_hash_survives_lone_surrogates() -> None:
    """Found by fuzzing: an ignored extra field holding "\\udfff" made hashing raise (500)."""
    assert request_hash({"zz_extra": "\udfff"}) != request_hash({"zz_extra": "\udffe"})


# -- issue 12: no relayed content, no invisible characters, tight limits --------------------

TEXT_FIELDS = {
    "name": "name",
    "shipping__line1": "shipping.line1",
    "shipping__line2": "shipping.line2",
    "shipping__city": "shipping.city",
}
NOUNS = {"name": "a name", "shipping.city": "a city name"}
RELAYED = [
    "WIN $1000 http://evil.example/claim",
    "Visit www.evil.example now",
    "claim at evil.com",
    "evil[.]example",
    "hxxp://evil",
    "ｅｖｉｌ．ｃｏｍ",
    "jane＠evil.com",
    "write jane@evil.com",
    "evil dot com",
]


@pytest.mark.parametrize("text", RELAYED)
@pytest.mark.parametrize("field", sorted(TEXT_FIELDS))
def test_links_are_refused_in_every_field_that_reaches_an_email(field: str, text: str) -> None:
    path = TEXT_FIELDS[field]

    fields = fields_of(order_body(**{field: text}))

    assert set(fields) == {path}
    noun = NOUNS.get(path, "an address")
    if "@" in text or "＠" in text:
        assert fields[path].startswith(f"Email addresses can't go in {noun}")
    else:
        assert fields[path].startswith(f"Links can't go in {noun}")


def test_the_name_message_is_plain() -> None:
    assert fields_of(order_body(name="Jane http://x.example"))["name"] == (
        "Links can't go in a name."
    )
    assert "put a space after the dot" in fields_of(order_body(name="Jane.Black"))["name"]


def test_links_are_refused_with_validation_failed_not_a_5xx() -> None:
    with pytest.raises(ApiError) as e:
        parse(order_body(name="www.evil.example", shipping__line2="http://evil.example"))
    assert e.value.status == 422 and e.value.code == "validation_failed"
    assert set(e.value.fields) == {"name", "shipping.line2"}


@pytest.mark.parametrize(
    ("field", "text"),
    [
        ("name", "J.R.R. Tolkien"),
        ("name", "Mr. A.M. Smith"),
        ("name", "Zoë O'Brien-Lee"),
        ("shipping__line1", "12 St. Marks Pl."),
        ("shipping__line1", "P.O. Box 12"),
        ("shipping__line1", "No.5 Main St"),
        ("shipping__line2", "Apt. 4B"),
        ("shipping__line2", "Floor 1.5"),
        ("shipping__city", "St. Louis"),
    ],
)
def test_abbreviations_and_numbers_stay_allowed(field: str, text: str) -> None:
    req = parse(order_body(**{field: text}))
    assert text in (req.name, req.shipping.line1, req.shipping.line2, req.shipping.city)


@pytest.mark.parametrize(
    ("field", "limit"),
    [("name", 60), ("shipping__line1", 70), ("shipping__line2", 70), ("shipping__city", 40)],
)
def test_tight_length_limits(field: str, limit: int) -> None:
    path = TEXT_FIELDS[field]
    assert parse(order_body(**{field: "a" * limit}))
    assert fields_of(order_body(**{field: "a" * (limit + 1)}))[path] == (
        f"Must be at most {limit} characters."
    )


INVISIBLE = [
    "\u200b",  # zero width space
    "\u200c",  # ZWNJ
    "\u200d",  # ZWJ
    "\u200e",  # LRM
    "\u200f",  # RLM
    "\u061c",  # ALM
    "\ufeff",  # BOM
    "\U000e0041",  # tag character
    "\u2060",  # word joiner
    "\u2063",  # invisible separator
    "\u00ad",  # soft hyphen
    "\u115f",  # Hangul choseong filler
    "\u1160",  # Hangul jungseong filler
    "\u3164",  # Hangul filler
    "\uffa0",  # halfwidth Hangul filler
    "\u2800",  # braille blank
    "\u034f",  # combining grapheme joiner
]


@pytest.mark.parametrize("ch", INVISIBLE)
@pytest.mark.parametrize("field", sorted(TEXT_FIELDS))
def test_invisible_characters_are_refused(field: str, ch: str) -> None:
    path = TEXT_FIELDS[field]

    fields = fields_of(order_body(**{field: f"Jane{ch}Doe"}))

    assert set(fields) == {path}
    assert fields[path].startswith("Remove the invisible characters (U+")


@pytest.mark.parametrize("value", ["\u200b", "\u200b\u200b\u200b", "\u3164", "\u2800", "\ufe0f"])
def test_a_name_of_only_invisible_characters_is_not_filled_in(value: str) -> None:
    assert "name" in fields_of(order_body(name=value))


@pytest.mark.parametrize("value", ["42", "---", "!!", "\u0301\u0301", "🍊"])
def test_a_name_needs_letters(value: str) -> None:
    assert fields_of(order_body(name=value))["name"] == "Must contain letters."


def test_address_lines_need_letters_or_digits() -> None:
    assert parse(order_body(shipping__line1="42")).shipping.line1 == "42"
    assert "shipping.line1" in fields_of(order_body(shipping__line1="-- --"))
    assert "shipping.city" in fields_of(order_body(shipping__city="10001"))


def test_a_variation_selector_after_an_emoji_is_fine_but_zwj_sequences_are_not() -> None:
    assert parse(order_body(shipping__line2="Door with a \u2764\ufe0f")).shipping.line2
    assert "name" in fields_of(order_body(name="Zoë 👩\u200d🍳"))


@pytest.mark.parametrize(
    ("email", "ok"),
    [
        ("a" * 64 + "@deliverable.test", True),
        ("a" * 65 + "@deliverable.test", False),
        ("j@" + ".".join(["d" * 60] * 4) + ".test", True),  # 251 characters
        ("jjjjj@" + ".".join(["d" * 61] * 4) + ".t", False),  # 255 characters
        ("a" * 60 + "@" + ".".join(["bü" * 12] * 6) + ".test", False),  # 257 as punycode
    ],
)
def test_email_local_part_and_total_length(email: str, ok: bool) -> None:
    if ok:
        assert parse(order_body(email=email)).email == email
        return
    with pytest.raises(ApiError) as e:
        parse(order_body(email=email))
    assert e.value.status == 422 and "email" in e.value.fields
    assert e.value.code in ("email_undeliverable", "validation_failed")


def test_a_65_character_local_part_says_why() -> None:
    with pytest.raises(ApiError) as e:
        parse(order_body(email="a" * 65 + "@deliverable.test"))
    assert e.value.code == "email_undeliverable" and e.value.extra["reason"] == "syntax"
    assert e.value.fields["email"] == "The part before the @ can be at most 64 characters."


def test_a_later_notes_field_reuses_the_rules() -> None:
    """`notes` has a TEXT_RULES row: clean_text applies links/invisible/limit to it."""
    from chalicelib.orders import LIMITS, clean_text

    errors: dict[str, str] = {}
    assert clean_text(" Ring twice ", "notes", errors, required=False, limit=1000) == "Ring twice"
    clean_text("see evil.com", "notes", errors, required=False, limit=1000)
    assert errors == {
        "notes": "Links can't go in a note. If this isn't a link, put a space after the dot."
    }
    errors.clear()
    clean_text("x" * (LIMITS["notes"] + 1), "notes", errors, required=False, limit=1000)
    assert errors["notes"] == f"Must be at most {LIMITS['notes']} characters."
