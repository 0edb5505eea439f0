"""tests/infra: the packaged CloudFormation template (no AWS account, nothing leaves loopback).

Every test collected here carries the `infra` marker (`pytest -m infra`)."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/tests/infra/" in str(item.path):
            item.add_marker(pytest.mark.infra)
