"""Shared fixtures: a real moto server over HTTP, the app's environment, a Chalice test client."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.bootstrap import bootstrap
from tests.servers import MotoServer

ROOT = Path(__file__).resolve().parent.parent

pytest_plugins = ["tests.plugins.guard", "tests.plugins.feedback"]

# The environment every test starts from (a test may monkeypatch more).
BASE_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "BUSINESS_HOURS": "always",
    "EMAIL_TEST_ENVIRONMENT": "1",
    # tests reset moto and write slot counters directly: no cached counts between them
    # (tests/api/test_perf_catalog_cache.py turns the cache on)
    "SLOTS_CACHE_SECONDS": "0",
}

# The shared stack: generous rate limits (every test orders from 127.0.0.1), always open.
STACK_ENV = {
    "RATE_LIMIT_EMAIL": "1000/600",
    "RATE_LIMIT_IP": "10000/600",
    "BUSINESS_HOURS": "always",
    "SLOTS_CACHE_SECONDS": "0",  # the browser tests fill days from outside the app
}


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    server = MotoServer().start()
    yield server
    server.stop()


@pytest.fixture()
def aws(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> MotoServer:
    """A freshly reset and bootstrapped moto server; AWS_ENDPOINT_URL points at it."""
    for k, v in BASE_ENV.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server.url)
    moto_server.reset()
    bootstrap(moto_server.url, dict(os.environ))
    return moto_server


@pytest.fixture()
def ddb(aws: MotoServer) -> object:
    """A boto3 DynamoDB client for the freshly bootstrapped moto server."""
    return aws.client("dynamodb")


@pytest.fixture(scope="session")
def stack() -> Iterator[object]:
    """The whole local stack (moto, siteverify, DNS, chalice local, web server) on free ports,
    started once per test run and shared by tests/stack and tests/browser."""
    from devstack.stack import Stack

    s = Stack(env=STACK_ENV).start()
    try:
        yield s
    finally:
        s.stop()
