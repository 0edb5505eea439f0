"""The accountant's CSV (pure): one row per order line, the order's columns repeated.

* UTF-8 with a BOM (first part only) so Excel opens it as UTF-8; CRLF line ends (RFC 4180).
* Dates in the shop's timezone (`YYYY-MM-DD HH:MM`), money as decimal (`12.34`).
* Formula injection neutralised: a cell that starts with `=`, `+`, `-`, `@`, tab or CR gets a
  leading `'`, so a spreadsheet shows it as text (OWASP "CSV Injection").
* Size: `row_cost` is what a row adds to the Lambda response once JSON-escaped, the measure
  the export's byte budget uses (Lambda's response limit is 6 MB of JSON).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

BOM = "\ufeff"
# OWASP's list, plus the full-width forms (U+FF1D, U+FF0B, U+FF0D, U+FF20) that spreadsheets
# and East Asian input methods turn into the ASCII ones
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")
COLUMNS = (
    "order_id",
    "created",
    "day",
    "status",
    "customer_name",
    "customer_email",
    "customer_phone",
    "address_line1",
    "address_line2",
    "city",
    "state",
    "zip",
    "sku",
    "product",
    "qty",
    "unit_price",
    "line_total",
    "subtotal",
    "delivery_fee",
    "total",
    "currency",
    "flags",
    "receipt_email",
)


def neutralise(value: Any) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def money(cents: Any) -> str:
    try:
        n = int(cents)
    except (TypeError, ValueError):
        return ""
    sign = "-" if n < 0 else ""
    return f"{sign}{abs(n) // 100}.{abs(n) % 100:02d}"


def local_time(epoch: Any, tz: str) -> str:
    try:
        return datetime.fromtimestamp(int(epoch), ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M")
    except (TypeError, ValueError, OverflowError):
        return ""


def rows_for(order: Mapping[str, Any], tz: str) -> list[list[str]]:
    """The CSV rows of one order (one per line; an order without lines gets one row)."""
    customer = order.get("customer") or {}
    ship = order.get("shipping") or {}
    emails = order.get("emails") or {}
    receipt = emails.get("customer", {}).get("status", "") if isinstance(emails, dict) else ""
    head = [
        order.get("order_id"),
        local_time(order.get("created_at"), tz),
        order.get("day", ""),
        order.get("status", ""),
        customer.get("name", ""),
        customer.get("email", ""),
        customer.get("phone", ""),
        ship.get("line1", ""),
        ship.get("line2", ""),
        ship.get("city", ""),
        ship.get("state", ""),
        ship.get("zip", ""),
    ]
    tail = [
        money(order.get("subtotal_cents", order.get("total_cents"))),
        money(order.get("delivery_fee_cents", 0)),
        money(order.get("total_cents")),
        order.get("currency", ""),
        " ".join(str(f) for f in order.get("flags") or []),
        receipt,
    ]
    lines = [x for x in order.get("items") or [] if isinstance(x, Mapping)] or [{}]
    rows = []
    for line in lines:
        middle = [
            line.get("sku", ""),
            line.get("name", ""),
            line.get("qty", ""),
            money(line.get("unit_price_cents")) if line else "",
            money(line.get("line_total_cents")) if line else "",
        ]
        rows.append([neutralise(v) for v in (*head, *middle, *tail)])
    return rows


def encode(rows: Iterable[list[str]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerows(rows)
    return buf.getvalue()


def header(first: bool) -> str:
    """The file's start: BOM + column names (only in the first part)."""
    return BOM + encode([list(COLUMNS)]) if first else ""


def row_cost(text: str) -> int:
    """Bytes `text` adds to a JSON-escaped Lambda response body."""
    return len(json.dumps(text)) - 2
