"""Business hours: "always" or comma-separated "Mon-Sat 08:00-20:00" style specs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


@dataclass(frozen=True)
class Window:
    days: frozenset[int]
    start_min: int
    end_min: int


def _minutes(hhmm: str) -> int:
    h, m = hhmm.strip().split(":")
    hours, minutes = int(h), int(m)
    if not (0 <= hours <= 24 and 0 <= minutes < 60) or hours * 60 + minutes > 1440:
        raise ValueError(hhmm)
    return hours * 60 + minutes


def _days(spec: str) -> frozenset[int]:
    out: set[int] = set()
    for part in spec.lower().split("/"):
        if "-" in part:
            a, b = (DAYS.index(x.strip()[:3]) for x in part.split("-", 1))
            i = a
            while True:
                out.add(i)
                if i == b:
                    break
                i = (i + 1) % 7
        else:
            out.add(DAYS.index(part.strip()[:3]))
    return frozenset(out)


def parse_hours(spec: str) -> list[Window] | None:
    """None means always open. Raises ValueError on a malformed spec."""
    if spec.strip().lower() in ("always", "24/7", ""):
        return None
    windows = []
    for chunk in spec.split(","):
        days, times = chunk.strip().split()
        start, end = times.split("-")
        windows.append(Window(_days(days), _minutes(start), _minutes(end)))
    return windows


def is_open(now: datetime, spec: str, tz: str) -> tuple[bool, datetime | None]:
    """(open?, next opening time in the shop's timezone if closed)."""
    windows = parse_hours(spec)
    if windows is None:
        return True, None
    local = now.astimezone(ZoneInfo(tz))
    minute = local.hour * 60 + local.minute
    for w in windows:
        if local.weekday() in w.days and w.start_min <= minute < w.end_min:
            return True, None
    # find the next opening within a week
    day0 = local.replace(hour=0, minute=0, second=0, microsecond=0)
    best: datetime | None = None
    for offset in range(0, 8):
        day = day0 + timedelta(days=offset)
        for w in windows:
            if day.weekday() in w.days:
                start = day + timedelta(minutes=w.start_min)
                if start > local and (best is None or start < best):
                    best = start
        if best is not None:
            break
    return False, best


def closed_message(next_open: datetime | None) -> str:
    if next_open is None:
        return "The shop is closed right now and takes no orders."
    when = next_open.strftime("%A at %-I:%M %p").replace(":00 ", " ")
    return f"The shop is closed right now. We open again {when} ({next_open.tzname()})."
