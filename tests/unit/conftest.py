"""tests/unit: pure logic and single adapters, each against its real local server (moto,
DNS, siteverify).

Every test collected here carries the `unit` marker (`pytest -m unit`)."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/tests/unit/" in str(item.path):
            item.add_marker(pytest.mark.unit)
