"""tests/api: the Chalice app through chalice.test.Client, against real moto, DNS and
siteverify servers.

Every test collected here carries the `api` marker (`pytest -m api`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import ROOT
from tests.servers import MotoServer


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/tests/api/" in str(item.path):
            item.add_marker(pytest.mark.api)


@pytest.fixture()
def client(aws: MotoServer, guard_env: dict[str, str]) -> Iterator[object]:
    """chalice.test.Client for the `local` stage, against the real moto server, the local
    siteverify server and the local DNS server."""
    from chalice.test import Client

    from app import app

    with Client(app, stage_name="local", project_dir=str(ROOT)) as c:
        yield c
