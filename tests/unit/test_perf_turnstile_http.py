"""Turnstile's siteverify call goes through urllib3 alone (botocore's HTTP client, already
loaded by the first order): `requests` is never imported on the order path, and the
verifications share one connection pool."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from devstack.siteverify import DUMMY_TOKEN, PASS_SECRET, SiteverifyServer
from tests.conftest import ROOT

CHILD = """
import json, sys
from chalicelib.turnstile import TurnstileClient
c = TurnstileClient(sys.argv[1], sys.argv[2], (), "order", 2.0)
for i in range(3):
    c.verify(sys.argv[3], "203.0.113.9", f"perf-key-{i}")
pool = c._session.connection_from_url(sys.argv[2])
print(json.dumps({"requests": "requests" in sys.modules, "connections": pool.num_connections}))
"""


def test_verify_uses_urllib3_without_requests(siteverify: SiteverifyServer) -> None:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, PASS_SECRET, siteverify.url, DUMMY_TOKEN],
        cwd=str(ROOT),
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result == {"requests": False, "connections": 1}
