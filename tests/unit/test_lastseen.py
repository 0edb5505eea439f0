"""LastSeen: the bounded memory of items the order's transaction checks (a guess)."""

from __future__ import annotations

from chalicelib.lastseen import LastSeen


def test_an_item_is_remembered_as_put_and_absent_means_none() -> None:
    seen = LastSeen()
    seen.put("rl#email#a", {"w": 600, "c": 2, "p": 0}, 1000.0)
    seen.put("rl#email#b", None, 1000.0)
    assert seen.get("rl#email#a", 1001.0) == {"w": 600, "c": 2, "p": 0}
    assert seen.get("rl#email#b", 1001.0) is None
    assert seen.get("never", 1001.0) is None


def test_max_age_forgets_what_is_too_old_to_trust() -> None:
    seen = LastSeen()
    seen.put("slot#2026-12-03", {"n": 10}, 1000.0)
    assert seen.get("slot#2026-12-03", 1029.0, max_age=30) == {"n": 10}
    assert seen.get("slot#2026-12-03", 1030.0, max_age=30) is None
    assert seen.get("slot#2026-12-03", 1030.0, max_age=0) is None  # 0: never trusted


def test_it_is_bounded_and_forgets_the_least_recently_put_first() -> None:
    seen = LastSeen(size=2)
    seen.put("a", {"c": 1}, 1.0)
    seen.put("b", {"c": 1}, 1.0)
    seen.put("a", {"c": 2}, 2.0)  # a is the newest again
    seen.put("c", {"c": 1}, 3.0)
    assert len(seen) == 2
    assert seen.get("b", 3.0) is None and seen.get("a", 3.0) == {"c": 2}


def test_a_stored_item_is_a_copy() -> None:
    seen = LastSeen()
    item = {"c": 1}
    seen.put("a", item, 1.0)
    item["c"] = 99
    assert seen.get("a", 1.0) == {"c": 1}
