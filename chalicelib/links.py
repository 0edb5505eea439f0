"""Signed links in emails: one per next order action (merchant) and the status page (shopper).

    <base_url>/api/o/<token>   purpose "order-action", claims {"o": order id, "a": action}
    <base_url>/api/s/<token>   purpose "order-status", claims {"o": order id}

Tokens come from chalicelib.tokens (HMAC-SHA256 over payload + purpose, constant-time check,
expiry inside the signed payload). Anything that does not verify, or verifies but carries claims
we would not have signed, is a LinkRefused with a stable reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chalicelib import tokens
from chalicelib.ids import is_order_id
from chalicelib.lifecycle import ACTIONS, next_actions

ACTION_PURPOSE = "order-action"
STATUS_PURPOSE = "order-status"
DAY = 86400
# the shopper's status link outlives the merchant's action links: it is in the receipt of an
# order that may be delivered up to the delivery horizon later
STATUS_TTL_DAYS = 90


class LinkRefused(Exception):
    """`reason`: malformed, bad_signature, expired, wrong_purpose (from tokens), bad_claims
    (signed, but not an order id / known action), wrong_action (the form asked for another
    action than the token)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ActionClaims:
    order_id: str
    action: str
    expires_at: int


def _secret(secret: bytes | str) -> bytes:
    return secret.encode() if isinstance(secret, str) else secret


def _url(base_url: str, route: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/api/{route}/{token}"


def action_token(order_id: str, action: str, secret: bytes | str, now: int, ttl_days: int) -> str:
    if action not in ACTIONS or not is_order_id(order_id):
        raise ValueError("an order id and a known action")
    claims = {"o": order_id, "a": action}
    return tokens.sign(_secret(secret), ACTION_PURPOSE, claims, int(now) + ttl_days * DAY)


def action_links(
    order_id: str, status: str, base_url: str, secret: bytes | str, now: int, ttl_days: int
) -> dict[str, str]:
    """`{action: url}` for every action possible from `status`, in display order."""
    return {
        a: _url(base_url, "o", action_token(order_id, a, secret, now, ttl_days))
        for a in next_actions(status)
    }


def status_token(
    order_id: str, secret: bytes | str, now: int, ttl_days: int = STATUS_TTL_DAYS
) -> str:
    if not is_order_id(order_id):
        raise ValueError("an order id")
    return tokens.sign(_secret(secret), STATUS_PURPOSE, {"o": order_id}, int(now) + ttl_days * DAY)


def status_link(
    order_id: str, base_url: str, secret: bytes | str, now: int, ttl_days: int = STATUS_TTL_DAYS
) -> str:
    return _url(base_url, "s", status_token(order_id, secret, now, ttl_days))


def _verify(token: Any, secret: bytes | str, purpose: str, now: int) -> dict[str, Any]:
    try:
        claims = tokens.verify(_secret(secret), purpose, token, int(now))
    except tokens.TokenInvalid as e:
        raise LinkRefused(e.reason) from None
    oid = claims.get("o")
    if not isinstance(oid, str) or not is_order_id(oid):
        raise LinkRefused("bad_claims")
    return claims


def parse_action_token(
    token: Any, secret: bytes | str, now: int, expected_action: str | None = None
) -> ActionClaims:
    """The order id and action of a valid action token; LinkRefused otherwise. With
    `expected_action` (what the submitted form says) a token for another action is refused."""
    claims = _verify(token, secret, ACTION_PURPOSE, now)
    action = claims.get("a")
    if not isinstance(action, str) or action not in ACTIONS:
        raise LinkRefused("bad_claims")
    if expected_action is not None and expected_action != action:
        raise LinkRefused("wrong_action")
    return ActionClaims(str(claims["o"]), action, int(claims["exp"]))


def parse_status_token(token: Any, secret: bytes | str, now: int) -> str:
    """The order id of a valid status token; LinkRefused otherwise."""
    return str(_verify(token, secret, STATUS_PURPOSE, now)["o"])
