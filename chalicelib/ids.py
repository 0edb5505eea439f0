"""Short, unguessable order ids: 10 characters of Crockford base32 (50 random bits)."""

from __future__ import annotations

import secrets

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_order_id(length: int = 10) -> str:
    n = secrets.randbits(5 * length)
    return "".join(CROCKFORD[(n >> (5 * i)) & 31] for i in range(length))


def is_order_id(value: str) -> bool:
    return len(value) == 10 and all(c in CROCKFORD for c in value)
