"""Read the local tables for the mail viewer and the CLI (local tooling only)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from chalicelib import aws
from chalicelib.settings import load
from chalicelib.store import OrderStore


def order_store() -> OrderStore:
    s = load()
    return OrderStore(aws.client("dynamodb", s), s.orders_table)


def email_statuses(limit: int = 100) -> list[dict[str, Any]]:
    """Newest orders first with the status of each of their emails."""
    orders = sorted(order_store().scan_orders(), key=lambda o: o["created_at"], reverse=True)
    return [
        {
            "order_id": o["order_id"],
            "created": datetime.fromtimestamp(o["created_at"], timezone.utc).isoformat(),
            "emails": o.get("emails", {}),
            "flags": o.get("flags", []),
        }
        for o in orders[:limit]
    ]


def suppression_list(limit: int = 200) -> list[dict[str, Any]]:
    from chalicelib.suppression import SuppressionStore

    s = load()
    return SuppressionStore(aws.client("dynamodb", s), s.suppression_table).list(limit)
