"""chalicelib/retries.py: the bounded memory of Idempotency-Keys seen lately."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from chalicelib.retries import RecentKeys


def test_a_key_is_new_once_then_seen() -> None:
    keys = RecentKeys()
    assert keys.saw("k-1") is False
    assert keys.saw("k-1") is True
    assert keys.saw("k-2") is False


def test_the_least_recently_seen_key_is_forgotten_first() -> None:
    keys = RecentKeys(size=2)
    keys.saw("a")
    keys.saw("b")
    keys.saw("a")  # a is the newest again
    keys.saw("c")  # b goes
    assert len(keys) == 2
    assert keys.saw("a") is True
    assert keys.saw("b") is False


def test_concurrent_first_sightings_of_one_key_give_one_new() -> None:
    keys = RecentKeys()
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: keys.saw("same"), range(200)))
    assert answers.count(False) == 1


def test_a_forgotten_key_is_new_again() -> None:
    keys = RecentKeys()
    keys.saw("k")
    keys.forget("k")
    keys.forget("never-seen")  # no error
    assert keys.saw("k") is False
