"""TurnstileClient against the real local siteverify server (devstack/siteverify.py) over HTTP."""

from __future__ import annotations

import json
import time
import uuid

import pytest
import requests

from chalicelib.turnstile import (
    BotCheckFailed,
    BotCheckUnavailable,
    TurnstileClient,
    idempotency_uuid,
)
from devstack.siteverify import (
    DUMMY_TOKEN,
    FAIL_SECRET,
    PASS_SECRET,
    SPENT_SECRET,
    SiteverifyServer,
)
from tests.servers import free_port


def client(
    sv: SiteverifyServer,
    secret: str = PASS_SECRET,
    hostnames: tuple[str, ...] = (),
    action: str = "order",
    timeout: float = 2.0,
) -> TurnstileClient:
    return TurnstileClient(secret, sv.url, hostnames, action, timeout)


def log_lines(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def test_pass_sends_the_token_and_logs_one_line_without_secrets(
    siteverify: SiteverifyServer, capsys: pytest.CaptureFixture[str]
) -> None:
    client(siteverify).verify(DUMMY_TOKEN, "203.0.113.9", "order-key-1")
    reqs = siteverify.requests()
    assert len(reqs) == 1
    assert reqs[0]["response"] == DUMMY_TOKEN
    assert reqs[0]["secret"] == "***"  # the server got one (redacted in its log)
    assert reqs[0]["_format"] == "form"
    out = capsys.readouterr().out
    lines = [r for r in log_lines(out) if r["event"] == "turnstile"]
    assert len(lines) == 1
    assert lines[0]["outcome"] == "pass"
    assert lines[0]["hostname"] == "example.com"
    assert lines[0]["testing_key"] is True
    assert PASS_SECRET not in out and DUMMY_TOKEN not in out


def test_always_failing_secret_is_refused(siteverify: SiteverifyServer) -> None:
    with pytest.raises(BotCheckFailed) as e:
        client(siteverify, FAIL_SECRET).verify(DUMMY_TOKEN, None, None)
    assert e.value.codes == ["invalid-input-response"]


def test_spent_token_is_refused_as_duplicate(siteverify: SiteverifyServer) -> None:
    with pytest.raises(BotCheckFailed) as e:
        client(siteverify, SPENT_SECRET).verify(DUMMY_TOKEN, None, None)
    assert e.value.codes == ["timeout-or-duplicate"]
    assert len(siteverify.requests()) == 1  # a refusal is not retried


def test_a_real_looking_token_fails_with_a_test_secret(siteverify: SiteverifyServer) -> None:
    with pytest.raises(BotCheckFailed) as e:
        client(siteverify).verify("0.abcdef-real-token", None, None)
    assert e.value.codes == ["invalid-input-response"]


@pytest.mark.parametrize("token", [None, ""])
def test_missing_token_is_refused_without_a_call(
    siteverify: SiteverifyServer, token: str | None, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(BotCheckFailed) as e:
        client(siteverify).verify(token, "203.0.113.9", "k")
    assert e.value.codes == ["missing-input-response"]
    assert siteverify.requests() == []
    line = [r for r in log_lines(capsys.readouterr().out) if r["event"] == "turnstile"][0]
    assert line["outcome"] == "fail" and line["why"] == "token_missing"


def test_oversized_token_is_refused_without_a_call(siteverify: SiteverifyServer) -> None:
    with pytest.raises(BotCheckFailed) as e:
        client(siteverify).verify("x" * 2049, None, None)
    assert e.value.codes == ["invalid-input-response"]
    assert siteverify.requests() == []
    # 2048 characters is still allowed through to siteverify (which refuses this one)
    with pytest.raises(BotCheckFailed):
        client(siteverify).verify("x" * 2048, None, None)
    assert len(siteverify.requests()) == 1


def test_internal_error_is_retried_once_then_passes(siteverify: SiteverifyServer) -> None:
    siteverify.control(mode="internal-error", fail_times=1)
    client(siteverify).verify(DUMMY_TOKEN, None, "k")
    reqs = siteverify.requests()
    assert len(reqs) == 2
    assert reqs[0]["idempotency_key"] == reqs[1]["idempotency_key"]  # same UUID on the retry


def test_internal_error_twice_is_unavailable(siteverify: SiteverifyServer) -> None:
    siteverify.control(mode="internal-error")
    with pytest.raises(BotCheckUnavailable) as e:
        client(siteverify).verify(DUMMY_TOKEN, None, None)
    assert e.value.reason == "internal-error"
    assert len(siteverify.requests()) == 2


def test_http_500_twice_is_unavailable_after_exactly_one_retry(
    siteverify: SiteverifyServer, capsys: pytest.CaptureFixture[str]
) -> None:
    siteverify.control(mode="http500")
    with pytest.raises(BotCheckUnavailable) as e:
        client(siteverify).verify(DUMMY_TOKEN, None, None)
    assert e.value.reason == "http_500"
    assert len(siteverify.requests()) == 2
    line = [r for r in log_lines(capsys.readouterr().out) if r["event"] == "turnstile"][0]
    assert line["outcome"] == "unavailable" and line["level"] == "error"
    assert line["attempts"] == 2


def test_http_500_once_then_success(siteverify: SiteverifyServer) -> None:
    siteverify.control(mode="http500", fail_times=1)
    client(siteverify).verify(DUMMY_TOKEN, None, None)
    assert len(siteverify.requests()) == 2


def test_hang_times_out_twice_within_about_twice_the_timeout(
    siteverify: SiteverifyServer,
) -> None:
    siteverify.control(mode="hang")
    started = time.monotonic()
    with pytest.raises(BotCheckUnavailable) as e:
        client(siteverify, timeout=0.3).verify(DUMMY_TOKEN, None, None)
    elapsed = time.monotonic() - started
    assert e.value.reason == "timeout"
    assert 0.55 <= elapsed < 0.9, elapsed
    assert len(siteverify.requests()) == 2


def test_connection_refused_is_unavailable() -> None:
    url = f"http://127.0.0.1:{free_port()}/turnstile/v0/siteverify"
    c = TurnstileClient(PASS_SECRET, url, (), "order", 1.0)
    started = time.monotonic()
    with pytest.raises(BotCheckUnavailable) as e:
        c.verify(DUMMY_TOKEN, None, None)
    assert e.value.reason == "connection"
    assert time.monotonic() - started < 1.0


def test_unknown_secret_is_our_misconfiguration_not_a_bot(siteverify: SiteverifyServer) -> None:
    with pytest.raises(BotCheckUnavailable) as e:
        client(siteverify, "0x4AAAAAAA-not-a-known-secret").verify(DUMMY_TOKEN, None, None)
    assert e.value.reason == "config"
    assert len(siteverify.requests()) == 1  # not retried


def test_empty_secret_fails_closed_without_a_call(siteverify: SiteverifyServer) -> None:
    with pytest.raises(BotCheckUnavailable) as e:
        client(siteverify, "").verify(DUMMY_TOKEN, None, None)
    assert e.value.reason == "config"
    assert siteverify.requests() == []


def test_hostname_must_match_when_configured(siteverify: SiteverifyServer) -> None:
    with pytest.raises(BotCheckFailed) as e:
        client(siteverify, hostnames=("shop.example",)).verify(DUMMY_TOKEN, None, None)
    assert e.value.codes == ["hostname-mismatch"]
    siteverify.control(hostname="shop.example")
    client(siteverify, hostnames=("www.shop.example", "Shop.Example")).verify(
        DUMMY_TOKEN, None, None
    )
    # no hostnames configured: any hostname is accepted (Cloudflare's test secrets say
    # example.com whatever the page was)
    siteverify.control()
    client(siteverify, hostnames=()).verify(DUMMY_TOKEN, None, None)


def test_action_must_match_when_the_response_has_one(siteverify: SiteverifyServer) -> None:
    siteverify.control(action="login")
    with pytest.raises(BotCheckFailed) as e:
        client(siteverify, action="order").verify(DUMMY_TOKEN, None, None)
    assert e.value.codes == ["action-mismatch"]
    siteverify.control(action="order")
    client(siteverify, action="order").verify(DUMMY_TOKEN, None, None)
    siteverify.control()  # empty action, as Cloudflare's test secrets return
    client(siteverify, action="order").verify(DUMMY_TOKEN, None, None)


def test_idempotency_key_is_a_stable_uuid5(siteverify: SiteverifyServer) -> None:
    c = client(siteverify)
    c.verify(DUMMY_TOKEN, None, "order-key-1")
    c.verify(DUMMY_TOKEN, None, "order-key-1")
    c.verify(DUMMY_TOKEN, None, "order-key-2")
    c.verify(DUMMY_TOKEN, None, None)
    keys = [r.get("idempotency_key") for r in siteverify.requests()]
    assert keys[0] == keys[1] != keys[2]
    assert keys[3] is None
    parsed = uuid.UUID(keys[0])
    assert parsed.version == 5 and str(parsed) == keys[0]
    assert keys[0] == idempotency_uuid("order-key-1", DUMMY_TOKEN)
    # a fresh token under the same order key is a fresh validation
    assert idempotency_uuid("order-key-1", "another-token") != keys[0]


def test_remoteip_is_sent_only_when_known(siteverify: SiteverifyServer) -> None:
    c = client(siteverify)
    c.verify(DUMMY_TOKEN, "2001:db8::7", None)
    c.verify(DUMMY_TOKEN, None, None)
    first, second = siteverify.requests()
    assert first["remoteip"] == "2001:db8::7"
    assert "remoteip" not in second


def test_secret_is_not_in_repr() -> None:
    c = TurnstileClient(PASS_SECRET, "http://127.0.0.1:1/x", (), "order", 1.0)
    assert PASS_SECRET not in repr(c)


def test_server_speaks_json_and_http_control(siteverify: SiteverifyServer) -> None:
    base = siteverify.base_url
    ok = requests.post(siteverify.url, json={"secret": PASS_SECRET, "response": DUMMY_TOKEN})
    assert ok.status_code == 200
    body = ok.json()
    assert body["success"] is True and body["metadata"]["result_with_testing_key"] is True
    bad = requests.post(siteverify.url, json={"secret": "nope", "response": DUMMY_TOKEN})
    assert bad.json()["error-codes"] == ["invalid-input-secret"]
    missing = requests.post(siteverify.url, data={"secret": PASS_SECRET})
    assert missing.json()["error-codes"] == ["missing-input-response"]
    garbage = requests.post(
        siteverify.url, data=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert garbage.status_code == 400 and garbage.json()["error-codes"] == ["bad-request"]

    state = requests.post(base + "/_control", json={"mode": "http500", "fail_times": 1}).json()
    assert state["mode"] == "http500" and state["fail_times"] == 1
    assert requests.post(siteverify.url, data={"secret": PASS_SECRET}).status_code == 500
    assert requests.post(siteverify.url, data={"secret": PASS_SECRET}).status_code == 200
    assert requests.post(base + "/_control", json={"mode": "bogus"}).status_code == 400

    logged = requests.get(base + "/_requests").json()
    assert [r["_format"] for r in logged] == ["json", "json", "form", "invalid", "form", "form"]
    assert all(r.get("secret", "***") == "***" for r in logged)
    requests.post(base + "/_reset")
    assert requests.get(base + "/_requests").json() == []


def test_proxy_settings_in_the_environment_are_not_used(
    siteverify: SiteverifyServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The session ignores HTTP(S)_PROXY / netrc (trust_env off): a dead proxy in the
    environment does not turn every order into `bot_check_unavailable`."""
    dead = f"http://127.0.0.1:{free_port()}"
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, dead)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(name, "")
    client(siteverify).verify(DUMMY_TOKEN, None, None)
    assert len(siteverify.requests()) == 1


def test_verification_works_without_a_charset_detector(siteverify: SiteverifyServer) -> None:
    """The Lambda package leaves charset_normalizer out (infra/lambdazip.py): requests still
    verifies a token, and prints no warning about the missing detector."""
    import os
    import subprocess
    import sys

    code = f"""
import sys, warnings
warnings.simplefilter("error")
class Blocked:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("charset_normalizer", "chardet"):
            raise ImportError(name)
        return None
sys.meta_path.insert(0, Blocked())
from chalicelib.turnstile import TurnstileClient
TurnstileClient({PASS_SECRET!r}, {siteverify.url!r}, (), "order", 2.0).verify(
    {DUMMY_TOKEN!r}, None, None)
import requests
assert requests.compat.chardet is None
print("verified")
"""
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("verified")
    assert "character detection" not in out.stderr
    assert len(siteverify.requests()) == 1
