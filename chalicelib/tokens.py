"""Signed, expiring tokens for links in emails and for sessions (HMAC-SHA256, no library).

A token is `<payload>.<signature>`, both base64url without padding. The payload is compact JSON
with the token's `purpose` (e.g. "order-action", "order-status", "admin-login",
"admin-session"), its expiry `exp` (epoch seconds) and the caller's claims. The signature
covers the payload *and* the purpose, so a token minted for one purpose never verifies for
another. Comparison is constant-time. Nothing here logs: callers log `fingerprint(token)`,
never the token itself.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

MAX_TOKEN_LENGTH = 2048


class TokenInvalid(Exception):
    """The token cannot be used; `reason` is one of malformed, bad_signature, expired,
    wrong_purpose (stable: tests and log lines use it)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: bytes, purpose: str, payload: str) -> bytes:
    return hmac.new(secret, f"{purpose}\n{payload}".encode(), hashlib.sha256).digest()


def sign(secret: bytes, purpose: str, claims: dict[str, Any], expires_at: int) -> str:
    """A token for `purpose` carrying `claims` (JSON-serialisable), valid until `expires_at`."""
    if not secret:
        raise ValueError("an empty signing secret")
    body = {**claims, "purpose": purpose, "exp": int(expires_at)}
    payload = _b64(json.dumps(body, separators=(",", ":"), sort_keys=True).encode())
    return f"{payload}.{_b64(_mac(secret, purpose, payload))}"


def verify(secret: bytes, purpose: str, token: Any, now: int) -> dict[str, Any]:
    """The claims of a valid token for `purpose` at `now`; raises TokenInvalid otherwise."""
    if not secret or not isinstance(token, str) or not 0 < len(token) <= MAX_TOKEN_LENGTH:
        raise TokenInvalid("malformed")
    payload, sep, signature = token.partition(".")
    if not sep or not payload or not signature or not token.isascii():
        raise TokenInvalid("malformed")
    try:
        got = _unb64(signature)
    except ValueError:
        raise TokenInvalid("malformed") from None
    if not hmac.compare_digest(got, _mac(secret, purpose, payload)):
        raise TokenInvalid("bad_signature")
    try:
        claims = json.loads(_unb64(payload))
    except ValueError:
        raise TokenInvalid("malformed") from None
    if not isinstance(claims, dict) or claims.get("purpose") != purpose:
        raise TokenInvalid("wrong_purpose")
    exp = claims.get("exp")
    if not isinstance(exp, int) or isinstance(exp, bool) or exp <= now:
        raise TokenInvalid("expired")
    return claims


def fingerprint(token: str) -> str:
    """What a log line may say about a token: 12 hex characters of its SHA-256."""
    return hashlib.sha256(str(token).encode("utf-8", "replace")).hexdigest()[:12]
