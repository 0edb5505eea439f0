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

Cold start: to check that a service exists before loading its model, botocore's data loader
lists every service directory it knows (~400, ~900 listdir/stat calls, ~25 ms per model type
on the benchmark machine, twice per cold start). `AppLoader` asks only about the service
being loaded; everything else (paths, versions, extras, the models themselves) is botocore's.
And botocore's endpoints.json (1.25 MB, every service in every partition, decoded at the first
client) is found first in BOTOCORE_DATA when the package has it: the same document with only
the services in SERVICES (infra/lambdazip.py writes it; botocore's documented data-path
override). The source tree has none, so tests and `make run` use botocore's own.
"""

from __future__ import annotations

import threading
from functools import cache
from pathlib import Path
from typing import Any

from chalicelib.settings import Settings

SERVICES = ("dynamodb", "sesv2", "ssm")  # every client the app creates
BOTOCORE_DATA = Path(__file__).parent / "data" / "botocore"  # only in the Lambda package
_lock = threading.Lock()
_made: list[Any] = []


class _KnownServices:
    """What `Loader.list_available_services` answers: `name in known` asks the search paths
    about that one service; iterating (only an error message does) lists them all."""

    def __init__(self, loader: Any, type_name: str) -> None:
        self._loader, self._type = loader, type_name

    def __contains__(self, service: object) -> bool:
        from botocore.exceptions import DataNotFoundError

        try:
            return bool(self._loader.list_api_versions(str(service), self._type))
        except DataNotFoundError:
            return False

    def __iter__(self) -> Any:
        return iter(self._loader.all_services(self._type))


def _app_loader(search_paths: list[str]) -> Any:
    from botocore.loaders import Loader

    class AppLoader(Loader):  # botocore.loaders.Loader, asked less
        def list_available_services(self, type_name: str) -> Any:
            return _KnownServices(self, type_name)

        def all_services(self, type_name: str) -> list[str]:
            return list(Loader.list_available_services(self, type_name))

    return AppLoader(extra_search_paths=list(search_paths), include_default_search_paths=False)


@cache
def _session() -> Any:
    import boto3
    import botocore.session

    core = botocore.session.get_session()
    ours = [str(BOTOCORE_DATA)] if BOTOCORE_DATA.is_dir() else []
    paths = ours + list(core.get_component("data_loader").search_paths)
    core.register_component("data_loader", _app_loader(paths))
    return boto3.session.Session(botocore_session=core)


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
    if service not in SERVICES:  # its endpoints would be missing from the package's data
        raise ValueError(f"{service} is not in aws.SERVICES")
    timeout = settings.ses_read_timeout if profile == "ses" else settings.ddb_read_timeout
    return _client(service, settings.aws_endpoint_url, settings.region, profile, timeout)


def reset_clients() -> None:
    """Drop cached clients (tests that restart servers)."""
    _client.cache_clear()
    _made.clear()


def all_clients() -> list[Any]:
    """Every client created so far (benchmarks attach event hooks to them)."""
    return list(_made)
