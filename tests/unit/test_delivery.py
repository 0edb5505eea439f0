"""Delivery days: parsing the rules, cut-off (DST included), horizon, weekdays, capacity."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.delivery import (
    DeliveryDayUnavailable,
    DeliveryRules,
    check_day,
    choosable_days,
    cutoff_at,
    human_day,
    next_available,
    parse_day,
)

SHOP = {"weekdays": ["Tue", "Wed", "Thu", "Fri", "Sat"], "horizon_days": 14, "cutoff": "20:00",
        "capacity_per_day": 40}  # fmt: skip
NY = "America/New_York"
RULES = DeliveryRules.parse(SHOP, NY)
EVERY_DAY = DeliveryRules.parse({**SHOP, "weekdays": ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat",
                                                      "Sun"]}, NY)  # fmt: skip


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


# --- parsing the shop profile -----------------------------------------------------------


def test_parse_reads_the_shop_profile() -> None:
    assert RULES.weekdays == frozenset({1, 2, 3, 4, 5})
    assert (RULES.horizon_days, RULES.capacity_per_day, RULES.timezone) == (14, 40, NY)
    assert (RULES.cutoff.hour, RULES.cutoff.minute) == (20, 0)


@pytest.mark.parametrize(
    "change, tz, key",
    [
        ({"weekdays": []}, NY, "weekdays"),
        ({"weekdays": ["Tuesday"]}, NY, "weekdays"),
        ({"weekdays": "Tue"}, NY, "weekdays"),
        ({"horizon_days": 0}, NY, "horizon_days"),
        ({"horizon_days": "14"}, NY, "horizon_days"),
        ({"horizon_days": True}, NY, "horizon_days"),
        ({"capacity_per_day": -1}, NY, "capacity_per_day"),
        ({"capacity_per_day": 4.5}, NY, "capacity_per_day"),
        ({"cutoff": "24:00"}, NY, "cutoff"),
        ({"cutoff": "8:00"}, NY, "cutoff"),
        ({"cutoff": "20:00:00"}, NY, "cutoff"),
        ({"cutoff": "２０:００"}, NY, "cutoff"),
        ({}, "Mars/Olympus_Mons", "timezone"),
        ({}, "", "timezone"),
    ],
)
def test_parse_refuses_bad_config(change: dict[str, Any], tz: str, key: str) -> None:
    with pytest.raises(ValueError, match=key):
        DeliveryRules.parse({**SHOP, **change}, tz)


# --- check_day: one table, Tue 1 Dec 2026 in New York (EST, UTC-5) --------------------------

NOON = utc(2026, 12, 1, 17)  # 12:00 EST, Tuesday
BEFORE_CUTOFF = utc(2026, 12, 2, 0, 59, 59)  # Tue 19:59:59 EST (already Wed in UTC)
AT_CUTOFF = utc(2026, 12, 2, 1)  # Tue 20:00:00 EST
LAST_SECOND_OF_TUE = utc(2026, 12, 2, 4, 59, 59)  # Tue 23:59:59 EST
MIDNIGHT_WED = utc(2026, 12, 2, 5)  # Wed 00:00 EST


@pytest.mark.parametrize(
    "now, value, reason",
    [
        (NOON, "2026-12-02", None),  # Wed, tomorrow, before the cut-off
        (BEFORE_CUTOFF, "2026-12-02", None),
        (AT_CUTOFF, "2026-12-02", "past_cutoff"),  # cut-off is exclusive
        (AT_CUTOFF, "2026-12-03", None),
        (NOON, "2026-12-01", "past_cutoff"),  # today: its cut-off was yesterday
        (NOON, "2026-11-30", "out_of_range"),  # the past
        (NOON, "1999-01-05", "out_of_range"),
        (NOON, "2026-12-06", "not_a_delivery_day"),  # Sunday
        (NOON, "2026-12-07", "not_a_delivery_day"),  # Monday
        (NOON, "2026-12-15", None),  # today + 14 (Tue): the last day of the horizon
        (NOON, "2026-12-16", "out_of_range"),  # today + 15
        (LAST_SECOND_OF_TUE, "2026-12-16", "out_of_range"),
        (MIDNIGHT_WED, "2026-12-16", None),  # local midnight moves the horizon
        (MIDNIGHT_WED, "2026-12-02", "past_cutoff"),
        (NOON, "2027-12-02", "out_of_range"),
        (NOON, "2026-12-03", None),
    ],
)
def test_check_day(now: datetime, value: str, reason: str | None) -> None:
    if reason is None:
        check_day(value, now, RULES)
        assert date.fromisoformat(value) in choosable_days(now, RULES)
        return
    with pytest.raises(DeliveryDayUnavailable) as e:
        check_day(value, now, RULES)
    assert e.value.reason == reason
    assert e.value.day == value
    assert e.value.message


@pytest.mark.parametrize(
    "value",
    ["2026-12-3", "20261203", "2026-W49-4", "2026-02-30", "2026-13-01", "", " 2026-12-03",
     "2026-12-03\n", "2026-12-03T00:00", "２０２６-１２-０３", 20261203, None, ["2026-12-03"],
     date(2026, 12, 3)],
)  # fmt: skip
def test_check_day_not_a_date(value: Any) -> None:
    with pytest.raises(DeliveryDayUnavailable) as e:
        check_day(value, NOON, RULES)
    assert e.value.reason == "not_a_date"


# --- DST: New York springs forward Sun 8 Mar 2026 02:00, falls back Sun 1 Nov 2026 02:00 ------


def at(cutoff: str) -> DeliveryRules:
    return DeliveryRules.parse({**SHOP, "weekdays": ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat",
                                                     "Sun"], "cutoff": cutoff}, NY)  # fmt: skip


@pytest.mark.parametrize(
    "cutoff, day, last_ok, first_refused",
    [
        # 20:00 EDT on the spring-forward day is 00:00 UTC (EST would say 01:00)
        ("20:00", "2026-03-09", utc(2026, 3, 8, 23, 59, 59), utc(2026, 3, 9, 0)),
        # the day before the change: 20:00 EST is 01:00 UTC
        ("20:00", "2026-03-08", utc(2026, 3, 8, 0, 59, 59), utc(2026, 3, 8, 1)),
        # 20:00 EST on the fall-back day is 01:00 UTC (EDT would say 00:00)
        ("20:00", "2026-11-02", utc(2026, 11, 2, 0, 59, 59), utc(2026, 11, 2, 1)),
        ("20:00", "2026-11-01", utc(2026, 10, 31, 23, 59, 59), utc(2026, 11, 1, 0)),  # EDT
        # 02:30 does not exist on 8 Mar: fold=0 -> 02:30 EST == 03:30 EDT == 07:30 UTC
        ("02:30", "2026-03-09", utc(2026, 3, 8, 7, 29, 59), utc(2026, 3, 8, 7, 30)),
        # 01:30 happens twice on 1 Nov: the first one (EDT) counts -> 05:30 UTC
        ("01:30", "2026-11-02", utc(2026, 11, 1, 5, 29, 59), utc(2026, 11, 1, 5, 30)),
        ("00:00", "2026-03-09", utc(2026, 3, 8, 4, 59, 59), utc(2026, 3, 8, 5)),
    ],
)
def test_cutoff_is_local_wall_time_across_dst(
    cutoff: str, day: str, last_ok: datetime, first_refused: datetime
) -> None:
    rules = at(cutoff)
    check_day(day, last_ok, rules)
    with pytest.raises(DeliveryDayUnavailable) as e:
        check_day(day, first_refused, rules)
    assert e.value.reason == "past_cutoff"
    assert cutoff_at(date.fromisoformat(day), rules) <= first_refused


def test_now_in_another_timezone_is_the_same_instant() -> None:
    from zoneinfo import ZoneInfo

    tokyo = AT_CUTOFF.astimezone(ZoneInfo("Asia/Tokyo"))
    with pytest.raises(DeliveryDayUnavailable):
        check_day("2026-12-02", tokyo, RULES)
    check_day("2026-12-02", BEFORE_CUTOFF.astimezone(ZoneInfo("Asia/Tokyo")), RULES)


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        choosable_days(datetime(2026, 12, 1, 12), RULES)


# --- choosable_days / next_available ---------------------------------------------------------


def days(*isos: str) -> list[date]:
    return [date.fromisoformat(d) for d in isos]


def test_choosable_days_at_noon_and_after_the_cutoff() -> None:
    week = ("2026-12-03", "2026-12-04", "2026-12-05", "2026-12-08", "2026-12-09", "2026-12-10",
            "2026-12-11", "2026-12-12", "2026-12-15")  # fmt: skip
    assert choosable_days(NOON, RULES) == days("2026-12-02", *week)
    assert choosable_days(AT_CUTOFF, RULES) == days(*week)


@pytest.mark.parametrize(
    "taken, cap, limit, expected",
    [
        ({}, 2, 3, ["2026-12-02", "2026-12-03", "2026-12-04"]),
        ({"2026-12-02": 2, "2026-12-03": 1, "2026-12-04": 5}, 2, 2, ["2026-12-03", "2026-12-05"]),
        ({"2026-12-01": 0, "2026-12-06": 0}, 1, 1, ["2026-12-02"]),  # not choosable anyway
        ({}, 0, None, []),  # capacity 0: nothing
        ({"2026-12-02": 1}, 1, 0, []),
    ],
)
def test_next_available(
    taken: dict[str, int], cap: int, limit: int | None, expected: list[str]
) -> None:
    rules = DeliveryRules.parse({**SHOP, "capacity_per_day": cap}, NY)
    assert next_available(NOON, rules, taken, limit=limit) == days(*expected)


def test_next_available_without_limit_is_every_free_choosable_day() -> None:
    full = {d.isoformat(): 40 for d in choosable_days(NOON, RULES)[:-1]}
    assert next_available(NOON, RULES, full) == days("2026-12-15")


@settings(max_examples=300, deadline=None)
@given(
    now=st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31),
                     timezones=st.just(UTC)),
    offset=st.integers(min_value=-3, max_value=20),
    weekdays=st.sets(st.sampled_from(["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]),
                     min_size=1),
    cutoff=st.sampled_from(["00:00", "01:30", "02:30", "12:00", "20:00", "23:59"]),
    horizon=st.integers(min_value=1, max_value=15),
)  # fmt: skip
def test_check_day_agrees_with_choosable_days(
    now: datetime, offset: int, weekdays: set[str], cutoff: str, horizon: int
) -> None:
    rules = DeliveryRules.parse(
        {**SHOP, "weekdays": sorted(weekdays), "cutoff": cutoff, "horizon_days": horizon}, NY
    )
    choosable = choosable_days(now, rules)
    assert choosable == sorted(set(choosable))
    day = now.date() + timedelta(days=offset)
    try:
        check_day(day.isoformat(), now, rules)
        ok = True
    except DeliveryDayUnavailable:
        ok = False
    assert ok == (day in choosable)
    for d in choosable:  # every choosable day: right weekday, in the future, before its cut-off
        assert d.strftime("%a") in weekdays
        assert now < cutoff_at(d, rules)


@pytest.mark.parametrize(
    "day, text",
    [("2026-12-03", "Thursday 3 December"), (date(2027, 1, 1), "Friday 1 January"),
     ("2026-02-28", "Saturday 28 February")],
)  # fmt: skip
def test_human_day(day: date | str, text: str) -> None:
    assert human_day(day) == text


def test_parse_day_is_strict() -> None:
    assert parse_day("2026-12-03") == date(2026, 12, 3)
    with pytest.raises(DeliveryDayUnavailable):
        parse_day("2026-12-03 ")


@pytest.mark.parametrize(
    "earlier, later",
    [
        (BEFORE_CUTOFF, AT_CUTOFF),  # the last second before the cut-off, then the cut-off
        (LAST_SECOND_OF_TUE, MIDNIGHT_WED),  # local midnight
    ],
)
def test_choosable_days_change_on_the_second_a_boundary_passes(
    earlier: datetime, later: datetime
) -> None:
    """choosable_days is computed once per minute: the minute before a cut-off or midnight
    and the minute it starts must each get their own answer, whatever is asked first."""
    from datetime import timedelta

    for first, second in ((earlier, later), (later, earlier)):
        assert choosable_days(first, RULES) == [
            d
            for d in (first.date() + timedelta(days=i) for i in range(-1, 17))
            if _choosable_now(d, first)
        ]
        assert choosable_days(second, RULES) == [
            d
            for d in (second.date() + timedelta(days=i) for i in range(-1, 17))
            if _choosable_now(d, second)
        ]
    assert choosable_days(earlier, RULES) != choosable_days(later, RULES)


def _choosable_now(day: Any, now: datetime) -> bool:
    try:
        check_day(day.isoformat(), now, RULES)
    except DeliveryDayUnavailable:
        return False
    return True
