"""Smoke test of the whole `make run` stack: moto, siteverify, DNS, chalice local, web server.

Everything over real HTTP on loopback: POST through the dev web server (port 8000's role)
and find both emails in the local mail viewer; the local CLI feeds a bounce that the viewer
then lists.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from typing import Any

from devstack.stack import ROOT, Stack
from tests.helpers import CUSTOMER_EMAIL, order_body


def http(method: str, url: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def test_order_through_port_8000_reaches_the_mail_viewer(stack: Stack) -> None:
    status, headers, body = http("GET", stack.url + "/")
    assert status == 200 and b"<html" in body.lower()
    assert (
        "script-src 'self' https://challenges.cloudflare.com" in headers["Content-Security-Policy"]
    )
    status, _, body = http("GET", stack.url + "/config.json")
    assert status == 200 and json.loads(body)["turnstileSitekey"] == "1x00000000000000000000AA"

    status, _, body = http(
        "POST",
        stack.url + "/api/orders",
        order_body(),
        {"Content-Type": "application/json", "Idempotency-Key": "smoke-test-0001"},
    )
    assert status == 201, body
    oid = json.loads(body)["order_id"]

    status, _, page = http("GET", stack.url + "/_dev/mail")
    assert status == 200
    text = page.decode()
    assert text.count(oid) >= 2 and "New order" in text and CUSTOMER_EMAIL in text
    status, _, raw = http("GET", stack.url + "/_dev/mail.json")
    mail = json.loads(raw)
    subjects = [m["subject"] for m in mail["mail"] if oid in m["subject"]]
    assert len(subjects) == 2
    [order] = [o for o in mail["orders"] if o["order_id"] == oid]
    assert {order["emails"][r]["status"] for r in ("merchant", "customer")} == {"sent"}


def test_errors_pass_through_the_proxy_unchanged(stack: Stack) -> None:
    status, headers, body = http(
        "POST",
        stack.url + "/api/orders",
        order_body(email="x@null-mx.test"),
        {"Content-Type": "application/json"},
    )
    assert status == 422
    err = json.loads(body)["error"]
    assert err["code"] == "email_undeliverable" and err["reason"] == "null_mx"


def test_cli_feeds_a_bounce_and_runs_the_sweeper(stack: Stack) -> None:
    env = {**os.environ, "MOTO_PORT": str(stack.moto_port), "AWS_ENDPOINT_URL": stack.moto_url}
    run = [sys.executable, "-m", "devstack.cli"]
    out = subprocess.run(
        [*run, "bounce", "gone@deliverable.test"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert '"suppressed": 1' in out.stdout
    sweep = subprocess.run(
        [*run, "sweep"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=True
    )
    assert '"claimed"' in sweep.stdout
    _, _, raw = http("GET", stack.url + "/_dev/mail.json")
    assert "gone@deliverable.test" in [s["email"] for s in json.loads(raw)["suppression"]]
    status, _, body = http(
        "POST",
        stack.url + "/api/orders",
        order_body(email="gone@deliverable.test"),
        {"Content-Type": "application/json"},
    )
    assert status == 422 and json.loads(body)["error"]["reason"] == "suppressed"
