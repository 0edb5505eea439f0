"""The app behind CloudFront: origin-verify header in cloud stages, client IP for Turnstile
and rate limits (never a client-supplied X-Forwarded-For)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from chalicelib import edge
from devstack.bootstrap import bootstrap
from tests.conftest import ROOT
from tests.helpers import JSON, order_body

SECRET = "s3cr3t-origin-header-value"


@pytest.fixture()
def prod_client(aws: Any, guard_env: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The `prod` stage's configuration against the local servers (secrets in moto's SSM)."""
    from chalice.test import Client

    from app import app

    ssm = boto3.client("ssm", endpoint_url=aws.url, region_name="us-east-1")
    ssm.put_parameter(Name="/juice-orders/prod/origin-verify", Value=SECRET, Type="SecureString")
    ssm.put_parameter(Name="/juice-orders/prod/link-secret", Value="k" * 40, Type="SecureString")
    ssm.put_parameter(
        Name="/juice-orders/prod/turnstile-secret",
        Value=guard_env["TURNSTILE_SECRET"],
        Type="SecureString",
    )
    monkeypatch.delenv("TURNSTILE_SECRET", raising=False)
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    prod_env = config["stages"]["prod"]["environment_variables"]
    bootstrap(aws.url, {**os.environ, **prod_env})
    edge.clear_cache()
    with Client(app, stage_name="prod", project_dir=str(ROOT)) as c:
        yield c
    edge.clear_cache()


def test_cloud_stage_refuses_requests_that_bypass_cloudfront(prod_client: Any) -> None:
    r = prod_client.http.get("/catalog")
    assert r.status_code == 403
    assert json.loads(r.body)["error"]["code"] == "forbidden"
    r = prod_client.http.get("/catalog", headers={"X-Origin-Verify": "wrong"})
    assert r.status_code == 403
    r = prod_client.http.post("/orders", headers=JSON, body=json.dumps(order_body()))
    assert r.status_code == 403


def test_cloud_stage_accepts_cloudfront_and_uses_the_viewer_address(
    prod_client: Any, aws: Any, siteverify: Any
) -> None:
    assert prod_client.http.get("/catalog", headers={"X-Origin-Verify": SECRET}).status_code == 200
    headers = {
        **JSON,
        "X-Origin-Verify": SECRET,
        "CloudFront-Viewer-Address": "203.0.113.9:51234",
        "X-Forwarded-For": "6.6.6.6, 203.0.113.9, 130.176.0.1",
    }
    r = prod_client.http.post("/orders", headers=headers, body=json.dumps(order_body()))
    assert r.status_code == 201, r.body
    assert [q.get("remoteip") for q in siteverify.requests()] == ["203.0.113.9"]
    assert len(aws.sent_mail()) == 2


def test_local_stage_needs_no_header_and_ignores_spoofed_forwarded_for(
    client: Any, siteverify: Any
) -> None:
    headers = {**JSON, "X-Forwarded-For": "6.6.6.6", "CloudFront-Viewer-Address": "6.6.6.6:1"}
    r = client.http.post("/orders", headers=headers, body=json.dumps(order_body()))
    assert r.status_code == 201
    [seen] = siteverify.requests()
    assert seen.get("remoteip") not in ("6.6.6.6", None)


def test_spoofed_forwarded_for_does_not_escape_the_ip_rate_limit(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RATE_LIMIT_IP", "2/600")
    codes = []
    for i in range(3):
        headers = {**JSON, "X-Forwarded-For": f"10.0.0.{i}"}
        body = order_body(email=f"buyer{i}@deliverable.test")
        codes.append(client.http.post("/orders", headers=headers, body=json.dumps(body)))
    assert [r.status_code for r in codes] == [201, 201, 429]
    err = json.loads(codes[2].body)["error"]
    assert err["code"] == "rate_limited" and int(codes[2].headers["Retry-After"]) > 0
