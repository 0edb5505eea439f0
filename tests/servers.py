"""Real local servers for tests: a moto server subprocess."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from devstack.stack import die_with_parent


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except Exception as e:  # noqa: BLE001 - retry until the server answers
            last = e
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer: {last}")


class MotoServer:
    """`python -m moto.server` on a free loopback port."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> MotoServer:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "devstack.moto_server", "-H", "127.0.0.1", "-p", str(self.port)],
            cwd=str(Path(__file__).resolve().parent.parent),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "MOTO_ALLOW_NONEXISTENT_REGION": "1"},
            preexec_fn=die_with_parent,
        )
        wait_http(self.url + "/moto-api/data.json")
        return self

    def stop(self) -> None:
        if self.proc:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def client(self, service: str) -> Any:
        """A boto3 client for this server."""
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def reset(self) -> None:
        req = urllib.request.Request(self.url + "/moto-api/reset", method="POST", data=b"")
        urllib.request.urlopen(req, timeout=10).read()

    def data(self) -> dict[str, Any]:
        with urllib.request.urlopen(self.url + "/moto-api/data.json", timeout=120) as r:
            return json.loads(r.read())

    def sent_mail(self) -> list[dict[str, Any]]:
        """Every email moto's SES recorded, oldest first."""
        return list(self.data().get("ses", {}).get("Message", []))
