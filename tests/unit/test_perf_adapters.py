"""Per-call work trimmed from the adapters (issue 11): botocore clients do not rebuild the
User-Agent on every request (one is still sent), and email templates are compiled once."""

from __future__ import annotations

from typing import Any

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
