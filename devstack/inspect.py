"""The one reader of the local stack's state: moto's sent mail and the orders / suppression
tables (local tooling only). Used by the CLI, the mail viewer (devstack/devserver.py), the
load run, the benchmarks and the tests.

    sent_mail("http://127.0.0.1:4566")          # every email moto's SES recorded, oldest first
    orders("http://127.0.0.1:4566", "orders")   # every order item

moto's /moto-api/data.json dumps every backend (the orders table too), so after a big run it
takes a while: callers reading a large state pass a long `timeout`.
"""

from __future__ import annotations

import json
import urllib.request
from datetime import datetime, timezone
from typing import Any

LOCAL_CREDENTIALS = "local"  # moto takes any key that is not one of its IAM users: one account


def moto_data(moto_url: str, timeout: float = 10.0) -> dict[str, Any]:
    """moto's whole recorded state (/moto-api/data.json)."""
    with urllib.request.urlopen(moto_url + "/moto-api/data.json", timeout=timeout) as r:
        data: dict[str, Any] = json.loads(r.read())
    return data


def sent_mail(moto_url: str, timeout: float = 10.0) -> list[dict[str, Any]]:
    """Every email moto's SES recorded, oldest first, as moto stores them."""
    return list(moto_data(moto_url, timeout).get("ses", {}).get("Message", []))


def client(service: str, endpoint_url: str) -> Any:
    """A plain boto3 client for the local endpoint (moto)."""
    import boto3

    return boto3.client(
        service,
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        aws_access_key_id=LOCAL_CREDENTIALS,
        aws_secret_access_key=LOCAL_CREDENTIALS,
    )


def orders(endpoint_url: str, table: str = "orders", limit: int = 500) -> list[dict[str, Any]]:
    """Every order item in `table` (a scan), at most `limit`."""
    from chalicelib.store import OrderStore

    return OrderStore(client("dynamodb", endpoint_url), table).scan_orders(limit=limit)


def email_statuses(
    endpoint_url: str, table: str = "orders", limit: int = 100
) -> list[dict[str, Any]]:
    """Newest orders first with the status of each of their emails."""
    newest = sorted(orders(endpoint_url, table), key=lambda o: o["created_at"], reverse=True)
    return [
        {
            "order_id": o["order_id"],
            "created": datetime.fromtimestamp(o["created_at"], timezone.utc).isoformat(),
            "emails": o.get("emails", {}),
            "flags": o.get("flags", []),
        }
        for o in newest[:limit]
    ]


def suppression_list(
    endpoint_url: str, table: str = "suppression", limit: int = 200
) -> list[dict[str, Any]]:
    """Up to `limit` suppression records, newest first."""
    from chalicelib.suppression import SuppressionStore

    return SuppressionStore(client("dynamodb", endpoint_url), table).list(limit)
