"""boto3 clients, created on first use and shared per (service, endpoint, region, profile).

boto3 is imported on the first call, not at cold start. One boto3 Session is shared, so the
service models are loaded once per container. Parameter validation is off: every request is
built by our own code (and a malformed one still fails at the service), and it costs CPU on
every call.

Profiles: "ddb" (short read timeout; botocore standard retries: throttling, 5xx, timeouts
and connection errors, 3 attempts), "ses" (long read timeout: a retried read timeout could
send a message SES had already accepted), "fast" (one attempt: SSM, reads that may fail).

Per-call work the app does not need is unhooked from each client: botocore rebuilds the
User-Agent string on every request (to add feature ids for AWS's SDK metrics) although it
already set one when the request was built.
"""

from __future__ import annotations

import threading
from functools import cache
from typing import Any

from chalicelib.settings import Settings

_lock = threading.Lock()
_made: list[Any] = []


@cache
def _session() -> Any:
    import boto3

    return boto3.session.Session()


@cache
def _client(service: str, endpoint: str, region: str, profile: str, read_timeout: float) -> Any:
    from botocore.config import Config

    cfg = Config(
        retries={"max_attempts": 1 if profile == "fast" else 3, "mode": "standard"},
        connect_timeout=1 if profile != "ses" else 2,
        read_timeout=read_timeout,
        max_pool_connections=20,
        parameter_validation=False,
        tcp_keepalive=True,
    )
    kwargs: dict[str, Any] = {"region_name": region, "config": cfg}
    if endpoint:
        kwargs["endpoint_url"] = endpoint
    with _lock:  # botocore's client creation is not thread-safe on a shared session
        made = _session().client(service, **kwargs)
        _trim_handlers(made)
        _made.append(made)
        return made


def _trim_handlers(made: Any) -> None:
    """Unregister per-call handlers the app does not need (see the module docstring)."""
    creator = getattr(made, "_user_agent_creator", None)
    if creator is not None:
        service_id = made.meta.service_model.service_id.hyphenize()
        made.meta.events.unregister(
            f"request-created.{service_id}", creator.rebuild_and_replace_user_agent_handler
        )


def client(service: str, settings: Settings, profile: str = "ddb") -> Any:
    """The shared client for `service` with the timeouts/retries of `profile`."""
    timeout = settings.ses_read_timeout if profile == "ses" else settings.ddb_read_timeout
    return _client(service, settings.aws_endpoint_url, settings.region, profile, timeout)


def reset_clients() -> None:
    """Drop cached clients (tests that restart servers)."""
    _client.cache_clear()
    _made.clear()


def all_clients() -> list[Any]:
    """Every client created so far (benchmarks attach event hooks to them)."""
    return list(_made)
