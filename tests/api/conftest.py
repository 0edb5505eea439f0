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


# The create transaction is cancelled with an item holding an attribute type no DynamoDB item
# can have: botocore parses the reply, the app's codec can't decode it (an unexpected error,
# i.e. a bug's stand-in).
GARBLED_CANCELLATION = (
    b'{"__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",'
    b' "Message": "Transaction cancelled", "CancellationReasons": [{"Code":'
    b' "ConditionalCheckFailed", "Item": {"pk": {"S": "x"}, "a": {"boom /secret": "x"}}}]}'
)


@pytest.fixture()
def garbled_read(aws: MotoServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """Injected fault at the HTTP level: the order's TransactWriteItems gets
    GARBLED_CANCELLATION back from a proxy in front of moto instead of moto's answer."""
    from tests.servers import LostResponseProxy, app_behind

    with (
        LostResponseProxy(
            aws.url, "TransactWriteItems", answer=GARBLED_CANCELLATION, answer_status=400
        ) as proxy,
        app_behind(proxy, monkeypatch),
    ):
        yield proxy
