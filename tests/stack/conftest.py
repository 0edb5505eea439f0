"""tests/stack: the whole `make run` stack over HTTP on loopback (the session-wide `stack` fixture).

Every test collected here carries the `stack` marker (`pytest -m stack`)."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/tests/stack/" in str(item.path):
            item.add_marker(pytest.mark.stack)
