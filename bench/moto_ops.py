"""How long the local moto server takes for the app's four hot operations (not part of
`make bench`).

Starts two devstack.moto_server children on free ports - one as shipped ("fast") and one
with its speed-ups turned off (DEVSTACK_MOTO_FAST=0: "plain", the "before") - bootstraps
the app's tables in both, then times from one boto3 client each, over HTTP on loopback
(network instant), alternating plain/fast (the order flips every round) so drift on a noisy
machine hits both alike:

- UpdateItem, the app's shape: SET of 6 paths (nested `emails.merchant.status`, ...,
  `outbox`, `due_at`), ADD a counter, REMOVE a field, a ConditionExpression;
- TransactWriteItems: 1 Put (attribute_not_exists) + 4 Updates (ADD counters, conditions);
- BatchGetItem: 10 keys over the 3 tables;
- SESv2 SendEmail: HTML + text, ~6 kB.

    .venv/bin/python -m bench.moto_ops --rounds 60
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from typing import Any

from bench.common import PY, Child, summary, wait_until
from devstack import inspect
from devstack.bootstrap import bootstrap
from devstack.servers import free_port

OPS = ("update_item", "transact_write_items", "batch_get_item", "send_email")
SEED = 40  # orders (and suppression / rate-limit rows) in each table before timing


def order_item(i: int) -> dict[str, Any]:
    return {
        "pk": {"S": f"order#{i:06d}"},
        "kind": {"S": "order"},
        "created_at": {"N": str(1_700_000_000 + i)},
        "day": {"S": "2026-12-02"},
        "status": {"S": "paid"},
        "email_key": {"S": f"shopper{i}@example.test"},
        "lines": {
            "L": [
                {"M": {"sku": {"S": f"sku-{j}"}, "qty": {"N": "2"}, "price": {"N": "450"}}}
                for j in range(4)
            ]
        },
        "emails": {
            "M": {
                "merchant": {"M": {"status": {"S": "queued"}, "attempts": {"N": "0"}}},
                "customer": {"M": {"status": {"S": "queued"}, "attempts": {"N": "0"}}},
            }
        },
        "outbox": {"S": "pending"},
        "due_at": {"N": "1700000000"},
        "lease": {"N": "1700000000"},
        "note": {"S": "x" * 300},
    }


def update_item_args(r: int) -> dict[str, Any]:
    return {
        "TableName": "orders",
        "Key": {"pk": {"S": f"order#{r % SEED:06d}"}},
        "UpdateExpression": (
            "SET #e.merchant.#s = :sent, #e.merchant.message_id = :m0, #e.merchant.sent_at = :w, "
            "#e.customer.#s = :sent, outbox = :pending, due_at = :due "
            "ADD #e.merchant.attempts :one REMOVE lease"
        ),
        "ConditionExpression": "attribute_exists(pk) AND #e.merchant.#s <> :bounced",
        "ExpressionAttributeNames": {"#e": "emails", "#s": "status"},
        "ExpressionAttributeValues": {
            ":sent": {"S": "sent"},
            ":m0": {"S": f"0100018c-{r:08d}-message-id"},
            ":w": {"N": str(1_700_000_100 + r)},
            ":pending": {"S": "pending"},
            ":due": {"N": str(1_700_000_500 + r)},
            ":one": {"N": "1"},
            ":bounced": {"S": "bounced"},
        },
        "ReturnValues": "NONE",
    }


def transact_args(r: int, tag: str) -> dict[str, Any]:
    new = order_item(0)
    new["pk"] = {"S": f"order#{tag}-{r:06d}"}
    updates = [
        {
            "Update": {
                "TableName": "rate-limits",
                "Key": {"pk": {"S": f"{kind}#{r % SEED}"}},
                "UpdateExpression": "ADD #n :one SET expires_at = :exp",
                "ConditionExpression": "attribute_not_exists(#n) OR #n < :cap",
                "ExpressionAttributeNames": {"#n": "n"},
                "ExpressionAttributeValues": {
                    ":one": {"N": "1"},
                    ":cap": {"N": "1000000000"},
                    ":exp": {"N": str(1_800_000_000 + r)},
                },
            }
        }
        for kind in ("ip", "email", "slot", "day")
    ]
    return {
        "TransactItems": [
            {
                "Put": {
                    "TableName": "orders",
                    "Item": new,
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
            *updates,
        ]
    }


def batch_get_args(r: int) -> dict[str, Any]:
    return {
        "RequestItems": {
            "orders": {"Keys": [{"pk": {"S": f"order#{(r + j) % SEED:06d}"}} for j in range(4)]},
            "suppression": {"Keys": [{"pk": {"S": f"s#{(r + j) % SEED}"}} for j in range(3)]},
            "rate-limits": {
                "Keys": [{"pk": {"S": f"{k}#{r % SEED}"}} for k in ("ip", "email", "slot")]
            },
        }
    }


HTML = "<html><body>" + "<p>Your order: 2 x Orange juice, 450 cents each.</p>" * 80 + "</body>"
TEXT = "Your order: 2 x Orange juice, 450 cents each.\n" * 40


def send_email_args(r: int) -> dict[str, Any]:
    return {
        "FromEmailAddress": "orders@juice.example.com",
        "Destination": {"ToAddresses": [f"shopper{r}@example.test"]},
        "Content": {
            "Simple": {
                "Subject": {"Data": f"Your order {r}"},
                "Body": {"Html": {"Data": HTML}, "Text": {"Data": TEXT}},
            }
        },
        "ConfigurationSetName": "orders",
    }


class Target:
    """One moto server child and its clients."""

    def __init__(self, name: str, env: dict[str, str]) -> None:
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        args = [PY, "-m", "devstack.moto_server", "-H", "127.0.0.1", "-p", str(self.port)]
        self.child = Child(name, args, {"MOTO_ALLOW_NONEXISTENT_REGION": "1", **env})
        self.times: dict[str, list[float]] = {op: [] for op in OPS}

    def setup(self) -> None:
        wait_until(lambda: inspect.moto_data(self.url, timeout=2) is not None, self.name)
        bootstrap(self.url, {})
        self.ddb = inspect.client("dynamodb", self.url)
        self.ses = inspect.client("sesv2", self.url)
        for i in range(SEED):
            self.ddb.put_item(TableName="orders", Item=order_item(i))
            self.ddb.put_item(
                TableName="suppression",
                Item={"pk": {"S": f"s#{i}"}, "listed": {"S": "y"}, "suppressed_at": {"N": "1"}},
            )

    def calls(self, r: int) -> dict[str, Callable[[], Any]]:
        return {
            "update_item": lambda: self.ddb.update_item(**update_item_args(r)),
            "transact_write_items": lambda: self.ddb.transact_write_items(
                **transact_args(r, self.name)
            ),
            "batch_get_item": lambda: self.ddb.batch_get_item(**batch_get_args(r)),
            "send_email": lambda: self.ses.send_email(**send_email_args(r)),
        }

    def time(self, op: str, r: int) -> None:
        call = self.calls(r)[op]
        t = time.perf_counter()
        call()
        self.times[op].append((time.perf_counter() - t) * 1000)


def run(rounds: int = 60, warmup: int = 5) -> dict[str, Any]:
    targets = [Target("plain", {"DEVSTACK_MOTO_FAST": "0"}), Target("fast", {})]
    try:
        for t in targets:
            t.setup()
        for r in range(-warmup, rounds):
            order = targets if r % 2 == 0 else targets[::-1]
            for op in OPS:
                for t in order:
                    t.time(op, r + warmup)
                    if r < 0:
                        t.times[op].pop()
        out: dict[str, Any] = {"rounds": rounds}
        for op in OPS:
            plain, fast = (summary(t.times[op]) for t in targets)
            out[op] = {
                "plain_ms": {k: round(plain[k], 2) for k in ("p50", "p95")},
                "fast_ms": {k: round(fast[k], 2) for k in ("p50", "p95")},
                "p50_ratio": round(fast["p50"] / plain["p50"], 3),
            }
        return out
    finally:
        for t in targets:
            t.child.stop()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=60)
    a = p.parse_args()
    print(json.dumps(run(a.rounds), indent=1))


if __name__ == "__main__":
    main()
