"""Delivery days: which days a shopper may choose, and why a day cannot be chosen (pure).

Rules come from the shop profile's `delivery` dict plus its timezone:
  {"weekdays": ["Tue", ...], "horizon_days": 14, "cutoff": "20:00", "capacity_per_day": 40}

A day D can be chosen at instant `now` when, in the shop's timezone (today = now's local date):
  - today < D <= today + horizon_days            (else out_of_range)
  - D's weekday is a delivery weekday             (else not_a_delivery_day)
  - now is before `cutoff` on D - 1, local time   (else past_cutoff)
Cut-off instants are built as local wall-clock times and compared in UTC, so DST days work:
a cut-off that falls in the spring-forward gap (e.g. 02:30) resolves to the instant before the
gap's end (zoneinfo fold=0: 02:30 EST == 03:30 EDT); in the autumn overlap fold=0 is the first
(earlier) of the two instants.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTH_NAMES = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip
_ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_HHMM = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")

REASONS = {
    "not_a_date": "Choose a delivery day as a date (YYYY-MM-DD).",
    "not_a_delivery_day": "We don't deliver on that day of the week.",
    "past_cutoff": "It's too late to order for that day.",
    "out_of_range": "That day is outside the days we take orders for.",
    "full": "That day is fully booked.",
}


class DeliveryDayUnavailable(ValueError):
    """`reason` is one of not_a_date, not_a_delivery_day, past_cutoff, out_of_range (and
    `full`, which the caller raises when the day's slot is taken)."""

    def __init__(self, reason: str, day: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.day = day

    @property
    def message(self) -> str:
        return REASONS.get(self.reason, "That delivery day can't be chosen.")


@dataclass(frozen=True)
class DeliveryRules:
    weekdays: frozenset[int]  # date.weekday(): Mon = 0
    horizon_days: int
    cutoff: time
    capacity_per_day: int
    timezone: str

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @classmethod
    def parse(cls, delivery: Mapping[str, Any], timezone: str) -> DeliveryRules:
        """Rules from the shop profile; ValueError names the bad key (a config error)."""
        raw_days = delivery.get("weekdays")
        if not isinstance(raw_days, list | tuple) or not raw_days:
            raise ValueError("delivery.weekdays: a non-empty list of Mon..Sun")
        days = set()
        for d in raw_days:
            if d not in WEEKDAYS:
                raise ValueError(f"delivery.weekdays: unknown day {d!r}")
            days.add(WEEKDAYS.index(d))
        horizon = delivery.get("horizon_days")
        if not isinstance(horizon, int) or isinstance(horizon, bool) or not 1 <= horizon <= 366:
            raise ValueError("delivery.horizon_days: an integer 1..366")
        cap = delivery.get("capacity_per_day")
        if not isinstance(cap, int) or isinstance(cap, bool) or cap < 0:
            raise ValueError("delivery.capacity_per_day: an integer >= 0")
        m = _HHMM.fullmatch(str(delivery.get("cutoff", "")))
        if not m:
            raise ValueError("delivery.cutoff: HH:MM (24-hour)")
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError, TypeError) as e:
            raise ValueError(f"timezone: unknown {timezone!r}") from e
        return cls(
            weekdays=frozenset(days),
            horizon_days=horizon,
            cutoff=time(int(m.group(1)), int(m.group(2))),
            capacity_per_day=cap,
            timezone=timezone,
        )


def _aware(now: datetime) -> datetime:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(UTC)


def local_today(now: datetime, rules: DeliveryRules) -> date:
    return _aware(now).astimezone(rules.tz).date()


def cutoff_at(day: date, rules: DeliveryRules) -> datetime:
    """The instant (UTC) before which an order for `day` must be placed."""
    local = datetime.combine(day - timedelta(days=1), rules.cutoff, tzinfo=rules.tz)
    return local.astimezone(UTC)


def _reason(day: date, now_utc: datetime, today: date, rules: DeliveryRules) -> str | None:
    if day < today or day > today + timedelta(days=rules.horizon_days):
        return "out_of_range"
    if day.weekday() not in rules.weekdays:
        return "not_a_delivery_day"
    if now_utc >= cutoff_at(day, rules):
        return "past_cutoff"
    return None


def choosable_days(now: datetime, rules: DeliveryRules) -> list[date]:
    """Every day a shopper may choose at `now`, earliest first (capacity not considered)."""
    now_utc = _aware(now)
    if rules.cutoff.second or rules.cutoff.microsecond:
        return _choosable(now_utc, rules)
    # The answer only changes at a cut-off or a local midnight, both on a whole minute: one
    # computation per minute (an order asks twice, the catalog once more).
    return list(_choosable_in_minute(int(now_utc.timestamp()) // 60, rules))


@lru_cache(maxsize=16)
def _choosable_in_minute(minute: int, rules: DeliveryRules) -> tuple[date, ...]:
    return tuple(_choosable(datetime.fromtimestamp(minute * 60, UTC), rules))


def _choosable(now_utc: datetime, rules: DeliveryRules) -> list[date]:
    today = local_today(now_utc, rules)
    days = (today + timedelta(days=i) for i in range(1, rules.horizon_days + 1))
    return [d for d in days if _reason(d, now_utc, today, rules) is None]


def parse_day(value: Any) -> date:
    """A strict `YYYY-MM-DD` calendar date; DeliveryDayUnavailable("not_a_date") otherwise."""
    if not isinstance(value, str) or not _ISO_DAY.fullmatch(value):
        raise DeliveryDayUnavailable("not_a_date")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise DeliveryDayUnavailable("not_a_date") from None


def check_day(value: Any, now: datetime, rules: DeliveryRules) -> None:
    """None if `value` (an ISO date string) may be chosen at `now`; raises
    DeliveryDayUnavailable(reason) otherwise. Agrees with choosable_days()."""
    day = parse_day(value)
    now_utc = _aware(now)
    reason = _reason(day, now_utc, local_today(now_utc, rules), rules)
    if reason is not None:
        raise DeliveryDayUnavailable(reason, day.isoformat())


def next_available(
    now: datetime, rules: DeliveryRules, taken: Mapping[str, int], limit: int | None = None
) -> list[date]:
    """The choosable days that still have room, given the orders per day (`"YYYY-MM-DD"` ->
    count; missing days count 0), earliest first, at most `limit`."""
    free = [
        d
        for d in choosable_days(now, rules)
        if taken.get(d.isoformat(), 0) < rules.capacity_per_day
    ]
    return free if limit is None else free[: max(limit, 0)]


def human_day(day: date | str) -> str:
    """`2026-12-03` -> `Thursday 3 December` (what emails and pages say)."""
    d = parse_day(day) if isinstance(day, str) else day
    return f"{_DAY_NAMES[d.weekday()]} {d.day} {_MONTH_NAMES[d.month - 1]}"


def day_label(value: Any) -> str:
    """`human_day` for display: blank for a missing or malformed date."""
    try:
        return human_day(str(value)) if value else ""
    except ValueError:
        return ""


def moment_label(epoch: Any, tz: str) -> str:
    """Epoch seconds -> `Tuesday 1 December 2026, 3:04 PM EST` in the timezone `tz`
    (blank when it can't be read)."""
    try:
        dt = datetime.fromtimestamp(int(epoch), UTC).astimezone(ZoneInfo(tz))
    except (TypeError, ValueError, KeyError, OverflowError, OSError):
        return ""
    hour, half = dt.hour % 12 or 12, "AM" if dt.hour < 12 else "PM"
    return f"{human_day(dt.date())} {dt.year}, {hour}:{dt.minute:02d} {half} {dt.tzname()}"
