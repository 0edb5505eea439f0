"""chalicelib.tokens: signed, expiring, purpose-bound tokens."""

from __future__ import annotations

import pytest

from chalicelib import tokens

SECRET = b"test-secret"


def test_round_trip_keeps_claims() -> None:
    tok = tokens.sign(SECRET, "order-action", {"order_id": "7MZK3Q0D9X", "action": "confirm"}, 200)
    claims = tokens.verify(SECRET, "order-action", tok, 199)
    assert claims["order_id"] == "7MZK3Q0D9X" and claims["action"] == "confirm"


@pytest.mark.parametrize(
    ("secret", "purpose", "now", "reason"),
    [
        (SECRET, "order-action", 200, "expired"),
        (SECRET, "order-status", 100, "bad_signature"),  # minted for another purpose
        (b"other-secret", "order-action", 100, "bad_signature"),
    ],
)
def test_refusals(secret: bytes, purpose: str, now: int, reason: str) -> None:
    tok = tokens.sign(SECRET, "order-action", {"order_id": "X"}, 200)
    with pytest.raises(tokens.TokenInvalid) as e:
        tokens.verify(secret, purpose, tok, now)
    assert e.value.reason == reason


def test_tampered_payload_is_refused() -> None:
    tok = tokens.sign(SECRET, "order-action", {"order_id": "AAAA"}, 200)
    payload, sig = tok.split(".")
    forged = tokens.sign(b"attacker", "order-action", {"order_id": "BBBB"}, 10**10).split(".")[0]
    with pytest.raises(tokens.TokenInvalid) as e:
        tokens.verify(SECRET, "order-action", f"{forged}.{sig}", 100)
    assert e.value.reason == "bad_signature"
    assert payload != forged


@pytest.mark.parametrize("junk", [None, "", "nodot", ".", "a.b", "é.é", "x" * 3000, 12])
def test_malformed_tokens_are_refused_not_crashed(junk: object) -> None:
    with pytest.raises(tokens.TokenInvalid):
        tokens.verify(SECRET, "order-action", junk, 0)


def test_fingerprint_hides_the_token() -> None:
    tok = tokens.sign(SECRET, "admin-session", {"sub": "m"}, 200)
    fp = tokens.fingerprint(tok)
    assert len(fp) == 12 and fp not in tok
