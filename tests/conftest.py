"""Shared fixtures: a real moto server over HTTP, the app's environment, a Chalice test client."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.bootstrap import bootstrap
from tests.servers import MotoServer

ROOT = Path(__file__).resolve().parent.parent

pytest_plugins = ["tests.plugins.guard", "tests.plugins.feedback", "tests.plugins.browser"]

# The environment every test starts from (a test may monkeypatch more).
BASE_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "BUSINESS_HOURS": "always",
    "EMAIL_TEST_ENVIRONMENT": "1",
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


@pytest.fixture()
def client(aws: MotoServer, guard_env: dict[str, str]) -> Iterator[object]:
    """chalice.test.Client for the `local` stage, against the real moto server, the local
    siteverify server and the local DNS server."""
    from chalice.test import Client

    from app import app

    with Client(app, stage_name="local", project_dir=str(ROOT)) as c:
        yield c
