"""The CSV's cells (pure): formula injection, money, dates in the shop's timezone."""

from __future__ import annotations

import csv
import io

import pytest

from chalicelib import csvexport

ORDER = {
    "order_id": "7MZK3Q0D9X",
    "created_at": 1767225600,  # 2026-01-01 00:00 UTC = 2025-12-31 19:00 in New York
    "day": "2025-12-31",
    "status": "confirmed",
    "customer": {"name": '=HYPERLINK("http://evil")', "email": "a@b.test",
                 "phone": "+12125550143"},
    "shipping": {"line1": "-1 Main", "line2": "@home", "city": "\tTabby", "state": "NY",
                 "zip": "\r10001"},  # fmt: skip
    "items": [
        {"sku": "green-machine", "name": "Green Machine", "qty": 2, "unit_price_cents": 899,
         "line_total_cents": 1798},
        {"sku": "beet-it", "name": "Beet Ït", "qty": 1, "unit_price_cents": 5,
         "line_total_cents": 5},
    ],
    "subtotal_cents": 1803,
    "delivery_fee_cents": 500,
    "total_cents": 2303,
    "currency": "USD",
    "flags": [],
    "emails": {"customer": {"status": "delivered"}},
}  # fmt: skip


# the full-width forms too: spreadsheets (and East Asian input methods) turn them into formulas
@pytest.mark.parametrize(
    "cell", ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx", "\uff1d1+1", "\uff0b1", "\uff0d1",
             "\uff20SUM(A1)"],
)  # fmt: skip
def test_formula_starts_are_neutralised(cell: str) -> None:
    assert csvexport.neutralise(cell) == "'" + cell


@pytest.mark.parametrize("cell", ["Jane", "1 Main", "", "a=b", " =x"])
def test_other_cells_are_untouched(cell: str) -> None:
    assert csvexport.neutralise(cell) == cell


def test_money_is_decimal() -> None:
    assert [csvexport.money(c) for c in (0, 5, 899, 100000, -250)] == [
        "0.00", "0.05", "8.99", "1000.00", "-2.50"
    ]  # fmt: skip


def test_one_row_per_line_with_the_order_repeated() -> None:
    text = csvexport.header(first=True) + csvexport.encode(
        csvexport.rows_for(ORDER, "America/New_York")
    )
    assert text.startswith("\ufeff") and "\r\n" in text
    rows = list(csv.DictReader(io.StringIO(text.removeprefix("\ufeff"))))
    assert len(rows) == 2
    first, second = rows
    assert first["order_id"] == second["order_id"] == "7MZK3Q0D9X"
    assert first["created"] == "2025-12-31 19:00"
    assert first["customer_name"] == '\'=HYPERLINK("http://evil")'
    assert first["customer_phone"] == "'+12125550143"
    assert (first["address_line1"], first["address_line2"]) == ("'-1 Main", "'@home")
    assert first["city"] == "'\tTabby" and first["zip"] == "'\r10001"
    assert (first["unit_price"], first["line_total"], second["unit_price"]) == (
        "8.99",
        "17.98",
        "0.05",
    )
    assert first["total"] == second["total"] == "23.03" and second["product"] == "Beet Ït"
    assert first["receipt_email"] == "delivered"
    assert all(not v.startswith(tuple("=+-@")) for r in rows for v in r.values())
    assert csvexport.header(first=False) == ""


def test_row_cost_counts_json_escaping() -> None:
    assert csvexport.row_cost('a"b') == 4 and csvexport.row_cost("é") == 6
