"""CSV export: one row per order line, BOM, shop timezone, decimals, formula injection
neutralised, range limits (422), and 10,000 orders in parts under Lambda's 6 MB."""

from __future__ import annotations

import csv
import io
import json
import time
from typing import Any

import pytest

from tests.api.adminkit import body, sign_in

DAY = "2026-03-02"
LAMBDA_LIMIT = 6 * 1024 * 1024


def seeded_order(n: int, day: str = DAY, **over: Any) -> dict[str, Any]:
    oid = f"{n:010d}".translate(str.maketrans("01", "AB"))  # 10 Crockford characters
    base = 1772427600  # 2026-03-02 05:00 UTC = 00:00 in New York
    order = {
        "pk": f"order#{oid}",
        "kind": "order",
        "order_id": oid,
        "created_at": base + n,
        "day": day,
        "status": "accepted",
        "email_key": f"buyer{n}@deliverable.test",
        "history": [{"status": "accepted", "at": base + n}],
        "customer": {"name": f"Buyer Number {n}", "email": f"buyer{n}@deliverable.test",
                     "phone": "+12125550143"},
        "shipping": {"line1": f"{n} Main Street", "line2": "", "city": "New York",
                     "state": "NY", "zip": "10001"},
        "items": [
            {"sku": "green-machine", "name": "Green Machine", "qty": 2,
             "unit_price_cents": 899, "line_total_cents": 1798},
            {"sku": "beet-it", "name": "Beet It", "qty": 1, "unit_price_cents": 849,
             "line_total_cents": 849},
        ],
        "subtotal_cents": 2647, "delivery_fee_cents": 500, "total_cents": 3147,
        "currency": "USD", "flags": [],
        "emails": {"merchant": {"status": "sent"}, "customer": {"status": "delivered"}},
    }  # fmt: skip
    order.update(over)
    return order


def seed(ddb: Any, orders: list[dict[str, Any]]) -> None:
    from chalicelib import ddb as codec

    for i in range(0, len(orders), 25):
        request = [{"PutRequest": {"Item": codec.dump(o)}} for o in orders[i : i + 25]]
        pending: dict[str, Any] = {"orders": request}
        while pending:
            pending = ddb.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}


def export(client: Any, headers: dict[str, str], query: str) -> Any:
    return client.http.get(f"/admin/orders.csv?{query}", headers={"Cookie": headers["Cookie"]})


@pytest.fixture()
def signed(client: Any, aws: Any) -> dict[str, str]:
    return sign_in(client, aws)


def test_formula_injection_is_neutralised(client: Any, ddb: Any, signed: dict[str, str]) -> None:
    evil = seeded_order(
        1,
        customer={"name": '=HYPERLINK("http://evil.test","x")', "email": "@x@deliverable.test",
                  "phone": "+12125550143"},
        shipping={"line1": "-2+3", "line2": "\tcmd", "city": "\rNew York", "state": "NY",
                  "zip": "10001"},
    )  # fmt: skip
    seed(ddb, [evil, seeded_order(2, day="2026-03-05")])
    r = export(client, signed, f"from={DAY}&to={DAY}")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/csv")
    assert "attachment" in r.headers["Content-Disposition"]
    raw = r.body if isinstance(r.body, bytes) else r.body.encode()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert len(rows) == 2  # two lines; the order on 03-05 is outside the range
    row = rows[0]
    assert row["customer_name"] == '\'=HYPERLINK("http://evil.test","x")'
    assert row["customer_email"] == "'@x@deliverable.test"
    assert (row["address_line1"], row["address_line2"], row["city"]) == (
        "'-2+3",
        "'\tcmd",
        "'\rNew York",
    )
    assert row["created"] == "2026-03-02 00:00:01"[:16] and row["total"] == "31.47"
    assert row["unit_price"] == "8.99" and rows[1]["unit_price"] == "8.49"


@pytest.mark.parametrize(
    "query,field",
    [("from=2026-03-05&to=2026-03-01", "to"), ("from=2026-01-01&to=2026-06-30", "to"),
     ("from=2026-02-30&to=2026-03-01", "from"), ("to=2026-03-01", "from"),
     ("from=2026-03-01", "to"), ("from=tomorrow&to=2026-03-01", "from"),
     ("from=2026-03-01&to=2026-03-01&sep=;", "sep"),
     ("from=2026-03-01&to=2026-03-01&cursor=abc", "cursor")],
)  # fmt: skip
def test_bad_ranges_are_422(client: Any, signed: dict[str, str], query: str, field: str) -> None:
    r = export(client, signed, query)
    assert r.status_code == 422
    assert field in body(r)["error"]["fields"]


@pytest.mark.timeout(1500)  # moto takes minutes to take and serve 10,000 orders
def test_ten_thousand_orders_export_in_parts_under_the_lambda_limit(
    client: Any, ddb: Any, signed: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DDB_READ_TIMEOUT", "120")  # moto filters 10,000 items per query
    import chalicelib.admin

    # 10,000 orders (~4.2 MB escaped) fit one part of the real budget (4.5 MB); a third of
    # it makes the same export come in parts, which must concatenate into the same file
    assert chalicelib.admin.CSV_BUDGET < LAMBDA_LIMIT - 100_000
    monkeypatch.setattr(chalicelib.admin, "CSV_BUDGET", 1_500_000)
    orders = [seeded_order(n) for n in range(10_000)]
    t0 = time.perf_counter()
    seed(ddb, orders)
    seeded = time.perf_counter() - t0
    parts: list[str] = []
    cursor = ""
    started = time.perf_counter()
    while True:
        q = f"from={DAY}&to=2026-03-03" + (f"&cursor={cursor}" if cursor else "")
        r = export(client, signed, q)
        assert r.status_code == 200, r.body[:300]
        text = r.body.decode() if isinstance(r.body, bytes) else r.body
        # what Lambda returns: the body inside a JSON envelope
        assert len(json.dumps({"body": text, "headers": r.headers})) < LAMBDA_LIMIT
        parts.append(text)
        cursor = r.headers.get("X-Next-Cursor", "")
        if not cursor:
            break
        assert len(parts) < 20
    seconds = time.perf_counter() - started
    assert len(parts) >= 3
    assert all(not p.startswith("\ufeff") for p in parts[1:])
    rows = list(csv.DictReader(io.StringIO("".join(parts).removeprefix("\ufeff"))))
    assert len(rows) == 20_000
    ids = [r["order_id"] for r in rows]
    assert len(set(ids)) == 10_000 and set(ids) == {o["order_id"] for o in orders}
    assert sum(1 for r in rows if r["sku"] == "beet-it") == 10_000
    sizes = [len(p.encode()) for p in parts]
    escaped = sum(len(json.dumps(p)) for p in parts)
    print(f"csv: seeded in {seeded:.0f} s; {len(parts)} parts, bytes {sizes}, "
          f"{escaped} escaped in all, {seconds:.0f} s")  # fmt: skip
    assert escaped < chalicelib.admin.CSV_BUDGET * len(parts)
