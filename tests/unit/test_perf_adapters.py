"""Per-call work trimmed from the adapters (issue 11): botocore clients do not rebuild the
User-Agent on every request (one is still sent), and email templates are compiled once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from chalicelib import mail
from chalicelib.settings import load
from tests.servers import MotoServer


def test_clients_do_not_rebuild_the_user_agent_per_request(
    aws: MotoServer, monkeypatch: Any
) -> None:
    from chalicelib import aws as adapters

    adapters.reset_clients()
    client = adapters.client("dynamodb", load())
    handlers = list(
        client.meta.events._emitter._handlers.prefix_search("request-created.dynamodb.ListTables")
    )
    names = [getattr(h, "__name__", "") for h in handlers]
    assert "rebuild_and_replace_user_agent_handler" not in names
    assert "handler" in names  # the signer is still there
    sent: list[str] = []

    def capture(request: Any, **_: Any) -> None:
        sent.append(request.headers.get("User-Agent", b"").decode())

    client.meta.events.register("before-send.dynamodb", capture, unique_id="perf-ua")
    try:
        client.list_tables()
    finally:
        client.meta.events.unregister("before-send.dynamodb", unique_id="perf-ua")
    assert sent and sent[0].startswith("Boto3/")
    adapters.reset_clients()


def test_templates_are_compiled_once_and_not_restatted() -> None:
    assert mail.template("merchant.txt") is mail.template("merchant.txt")
    assert mail._environment().auto_reload is False


_LISTED: list[str] = []
_COUNTING = False


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _COUNTING and event == "os.listdir":
        _LISTED.append(str(args[0]))


def test_a_new_session_does_not_walk_every_service_to_build_the_apps_clients() -> None:
    """botocore's loader listed ~400 service directories (x2 model types) to check that one
    service exists; the app's loader asks about the service it loads."""
    import sys

    import botocore
    from botocore.exceptions import UnknownServiceError

    from chalicelib import aws as adapters

    global _COUNTING
    sys.addaudithook(_audit)  # audit hooks can't be removed: this one counts only when asked
    session = adapters._session.__wrapped__()  # a fresh session, as at a cold start
    data = str(Path(botocore.__file__).parent / "data")
    _LISTED.clear()
    _COUNTING = True
    try:
        for service in ("dynamodb", "sesv2", "ssm"):
            client = session.client(service, region_name="us-east-1", aws_access_key_id="x",
                                    aws_secret_access_key="y")  # fmt: skip
            assert client.meta.service_model.service_name == service
    finally:
        _COUNTING = False
    under_data = [p for p in _LISTED if p.startswith(data)]
    assert len(under_data) <= 3 * 4, under_data  # a few per service, not ~900
    with pytest.raises(UnknownServiceError) as e:
        session.client("no-such-service", region_name="us-east-1")
    assert "dynamodb" in str(e.value)  # the error still lists the known services
