"""Signed order links: what they contain, and every way a token is refused."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from chalicelib import tokens
from chalicelib.links import (
    ACTION_PURPOSE,
    DAY,
    STATUS_PURPOSE,
    LinkRefused,
    action_links,
    action_token,
    parse_action_token,
    parse_status_token,
    status_link,
)

SECRET = b"test-link-secret"
NOW = 1_796_000_000
OID = "7MZK3Q0D9X"
BASE = "https://juice.example.com"


def token_of(url: str) -> str:
    return url.rsplit("/", 1)[1]


@pytest.mark.parametrize(
    "status, actions",
    [
        ("accepted", ["confirm", "cancel"]),
        ("confirmed", ["dispatch", "cancel"]),
        ("out_for_delivery", ["deliver"]),
        ("delivered", []),
        ("cancelled", []),
    ],
)
def test_action_links_are_the_next_actions(status: str, actions: list[str]) -> None:
    links = action_links(OID, status, BASE + "/", SECRET, NOW, 14)
    assert list(links) == actions
    for action, url in links.items():
        assert url.startswith(f"{BASE}/api/o/")
        claims = parse_action_token(token_of(url), SECRET, NOW)
        assert (claims.order_id, claims.action, claims.expires_at) == (OID, action, NOW + 14 * DAY)


def test_status_link_round_trip() -> None:
    url = status_link(OID, BASE, SECRET, NOW)
    assert url.startswith(f"{BASE}/api/s/")
    assert parse_status_token(token_of(url), SECRET, NOW + 89 * DAY) == OID
    with pytest.raises(LinkRefused) as e:
        parse_status_token(token_of(url), SECRET, NOW + 90 * DAY)
    assert e.value.reason == "expired"


def test_action_token_expires_after_ttl() -> None:
    t = action_token(OID, "confirm", SECRET, NOW, 14)
    parse_action_token(t, SECRET, NOW + 14 * DAY - 1)
    with pytest.raises(LinkRefused) as e:
        parse_action_token(t, SECRET, NOW + 14 * DAY)
    assert e.value.reason == "expired"


def _flip(token: str, index: int) -> str:
    c = token[index]
    return token[:index] + ("A" if c != "A" else "B") + token[index + 1 :]


def _forge(claims: dict[str, Any], purpose: str = ACTION_PURPOSE) -> str:
    return tokens.sign(SECRET, purpose, claims, NOW + DAY)


def _resign_payload(token: str, change: dict[str, Any]) -> str:
    """Edit the payload without the secret (keeps the old signature): a tamper attempt."""
    payload, sig = token.split(".")
    body = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    body.update(change)
    raw = json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode() + "." + sig


GOOD = action_token(OID, "confirm", SECRET, NOW, 14)


@pytest.mark.parametrize(
    "token, reason",
    [
        (_flip(GOOD, 3), "bad_signature"),
        (_flip(GOOD, len(GOOD) - 2), "bad_signature"),
        (_resign_payload(GOOD, {"a": "deliver"}), "bad_signature"),
        (_resign_payload(GOOD, {"o": "0000000000"}), "bad_signature"),
        (_resign_payload(GOOD, {"exp": NOW + 999 * DAY}), "bad_signature"),
        (action_token(OID, "confirm", b"another-secret", NOW, 14), "bad_signature"),
        (tokens.sign(SECRET, STATUS_PURPOSE, {"o": OID, "a": "confirm"}, NOW + DAY),
         "bad_signature"),  # a status token on the action route: purpose is signed in
        (action_token(OID, "confirm", SECRET, NOW - 15 * DAY, 14), "expired"),
        (_forge({"o": OID, "a": "refund"}), "bad_claims"),
        (_forge({"o": OID}), "bad_claims"),
        (_forge({"o": "not-an-id", "a": "confirm"}), "bad_claims"),
        (_forge({"o": 12345, "a": "confirm"}), "bad_claims"),
        (_forge({"a": "confirm"}), "bad_claims"),
        ("", "malformed"),
        ("abc", "malformed"),
        ("a.b.c", "malformed"),
        ("x" * 5000, "malformed"),
        ("é.é", "malformed"),
        (None, "malformed"),
        (["a", "b"], "malformed"),
    ],
)  # fmt: skip
def test_refused_action_tokens(token: Any, reason: str) -> None:
    with pytest.raises(LinkRefused) as e:
        parse_action_token(token, SECRET, NOW)
    assert e.value.reason == reason


def test_wrong_action_in_the_form_is_refused() -> None:
    assert parse_action_token(GOOD, SECRET, NOW, expected_action="confirm").action == "confirm"
    with pytest.raises(LinkRefused) as e:
        parse_action_token(GOOD, SECRET, NOW, expected_action="cancel")
    assert e.value.reason == "wrong_action"


def test_an_action_token_is_no_status_token() -> None:
    with pytest.raises(LinkRefused):
        parse_status_token(GOOD, SECRET, NOW)


def test_refuses_to_sign_junk() -> None:
    with pytest.raises(ValueError):
        action_token("bad", "confirm", SECRET, NOW, 14)
    with pytest.raises(ValueError):
        action_token(OID, "refund", SECRET, NOW, 14)


def test_str_secret_equals_bytes_secret() -> None:
    assert parse_action_token(GOOD, SECRET.decode(), NOW).order_id == OID
