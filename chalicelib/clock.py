"""The one clock the app reads. Tests patch `chalicelib.clock.now` to move time."""

from __future__ import annotations

from datetime import UTC, datetime


def now() -> datetime:
    return datetime.now(UTC)
