"""Observability: one JSON log line per decision, EMF metrics, PII masking."""

from __future__ import annotations

import json
import sys
import time
from typing import Any

NAMESPACE = "OrderFulfilment"


def mask_email(address: str | None) -> str:
    """`jane.doe@example.org` -> `j***@example.org` (domain kept: it is what we act on)."""
    if not address:
        return ""
    local, sep, domain = str(address).rpartition("@")
    if not sep:
        return "***"
    return f"{local[:1]}***@{domain.lower()}"


def mask_phone(phone: str | None) -> str:
    """`+12125550143` -> `***0143`."""
    if not phone:
        return ""
    digits = "".join(c for c in str(phone) if c.isdigit())
    return "***" + digits[-4:] if len(digits) >= 4 else "***"


def log(event: str, level: str = "info", **fields: Any) -> None:
    """Write one structured line. Callers must pass addresses/phones through mask_*."""
    record = {"level": level, "event": event, "ts": round(time.time(), 3), **fields}
    sys.stdout.write(json.dumps(record, default=str, separators=(",", ":")) + "\n")


def metric(name: str, value: float = 1, unit: str = "Count", **dimensions: str) -> None:
    """Emit a CloudWatch Embedded Metric Format line (CloudWatch turns it into a metric)."""
    dims = {k: str(v) for k, v in dimensions.items()}
    record: dict[str, Any] = {
        "_aws": {
            "Timestamp": int(time.time() * 1000),
            "CloudWatchMetrics": [
                {
                    "Namespace": NAMESPACE,
                    "Dimensions": [sorted(dims)] if dims else [[]],
                    "Metrics": [{"Name": name, "Unit": unit}],
                }
            ],
        },
        name: value,
        **dims,
    }
    sys.stdout.write(json.dumps(record, separators=(",", ":")) + "\n")
