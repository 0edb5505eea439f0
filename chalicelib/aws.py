"""Lazily created, cached boto3 clients (boto3 is imported on first use: cold start)."""

from __future__ import annotations

import threading
from typing import Any

from chalicelib.settings import Settings

_clients: dict[tuple[str, str, str, str], Any] = {}
_lock = threading.Lock()


def client(service: str, settings: Settings, profile: str = "default") -> Any:
    """A shared client for `service`; `profile` selects the timeout/retry shape.

    profiles: "default" and "ses" (botocore standard retries: throttling, 5xx, timeouts and
    connection errors are retried in-call with backoff), "fast" (one attempt).
    """
    key = (service, settings.aws_endpoint_url, settings.region, profile)
    found = _clients.get(key)
    if found is not None:
        return found
    with _lock:
        found = _clients.get(key)
        if found is None:
            import boto3
            from botocore.config import Config

            attempts = {"default": 3, "ses": 3, "fast": 1}[profile]
            mode = "standard"
            # SES: a read timeout is retried by botocore and may send twice if SES had
            # accepted, so give SendEmail a long read timeout (slow sends are rare; a duplicate
            # is worse). The outbox lease (120 s) outlasts 3 x (2 + 15) s plus backoff.
            cfg = Config(
                retries={"max_attempts": attempts, "mode": mode},
                connect_timeout=2,
                read_timeout=15 if profile == "ses" else 5,
                max_pool_connections=20,
            )
            kwargs: dict[str, Any] = {"region_name": settings.region, "config": cfg}
            if settings.aws_endpoint_url:
                kwargs["endpoint_url"] = settings.aws_endpoint_url
            found = boto3.session.Session().client(service, **kwargs)
            _clients[key] = found
    return found


def reset_clients() -> None:
    """Drop cached clients (tests that restart servers)."""
    with _lock:
        _clients.clear()
