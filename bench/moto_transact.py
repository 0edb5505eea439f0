"""How long moto's TransactWriteItems takes, seen from a client (not part of `make bench`).

Starts devstack.moto_server as a child process, fills one hash-key table with `--items`
order-sized items, then times `--rounds` transactions of the app's shape: a Put of a new
order (attribute_not_exists) + an Update of an existing order (nested map path and a
counter). Every other round also times one that is cancelled (a ConditionCheck fails).

    .venv/bin/python -m bench.moto_transact --items 200 --rounds 60
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from bench.common import PY, Child, summary, wait_until
from devstack import inspect
from devstack.servers import free_port

TABLE = "orders"


def order_item(i: int) -> dict[str, Any]:
    return {
        "pk": {"S": f"order#{i:06d}"},
        "kind": {"S": "order"},
        "created_at": {"N": str(1_700_000_000 + i)},
        "email": {"S": f"shopper{i}@example.test"},
        "lines": {
            "L": [
                {"M": {"sku": {"S": f"sku-{j}"}, "qty": {"N": "2"}, "price": {"N": "450"}}}
                for j in range(4)
            ]
        },
        "emails": {
            "M": {
                "merchant": {"M": {"s": {"S": "sent"}, "id": {"S": "m" * 40}}},
                "customer": {"M": {"s": {"S": "sent"}, "id": {"S": "c" * 40}}},
            }
        },
        "n": {"N": "0"},
        "note": {"S": "x" * 300},
    }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--items", type=int, default=200)
    p.add_argument("--rounds", type=int, default=60)
    a = p.parse_args()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    child = Child(
        "moto",
        [PY, "-m", "devstack.moto_server", "-H", "127.0.0.1", "-p", str(port)],
        {"MOTO_ALLOW_NONEXISTENT_REGION": "1"},
    )
    try:
        wait_until(lambda: inspect.moto_data(url, timeout=2) is not None, "moto")
        ddb = inspect.client("dynamodb", url)
        ddb.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        for i in range(a.items):
            ddb.put_item(TableName=TABLE, Item=order_item(i))
        ok: list[float] = []
        cancelled: list[float] = []
        for r in range(a.rounds):
            fail = r % 2 == 1
            items: list[dict[str, Any]] = [
                {
                    "Put": {
                        "TableName": TABLE,
                        "Item": order_item(100_000 + r),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
                {
                    "Update": {
                        "TableName": TABLE,
                        "Key": {"pk": {"S": f"order#{r % a.items:06d}"}},
                        "UpdateExpression": "SET emails.merchant.#s = :v ADD n :one",
                        "ExpressionAttributeNames": {"#s": "s"},
                        "ExpressionAttributeValues": {":v": {"S": "bounced"}, ":one": {"N": "1"}},
                    }
                },
            ]
            if fail:
                items.append(
                    {
                        "ConditionCheck": {
                            "TableName": TABLE,
                            "Key": {"pk": {"S": f"order#{(r + 1) % a.items:06d}"}},
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    }
                )
            t = time.perf_counter()
            try:
                ddb.transact_write_items(TransactItems=items)
            except ddb.exceptions.TransactionCanceledException:
                pass
            (cancelled if fail else ok).append((time.perf_counter() - t) * 1000)
        data_json = len(json.dumps(inspect.moto_data(url, timeout=120)))
        out = {
            "table_items": a.items,
            "ok_ms": summary(ok),
            "cancelled_ms": summary(cancelled),
            "data_json_bytes": data_json,
        }
        print(json.dumps(out, indent=1))
    finally:
        child.stop()


if __name__ == "__main__":
    main()
