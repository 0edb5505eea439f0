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
    req = parse(order_body(admin=True, name="Zoë 👩‍🍳 O'Brien"))
    assert req.name == "Zoë 👩‍🍳 O'Brien"


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
