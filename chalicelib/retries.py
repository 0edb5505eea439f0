"""Which Idempotency-Keys this container has seen lately: a hint, never a decision.

POST /orders reads nothing before its create transaction when the request's key is new here
(Turnstile starts at once); when the key was seen lately it reads the key's record first and
starts Turnstile only after it: a key seen again is most likely a retry, and a retry is most
likely a replay, which then costs one read and no siteverify call. Getting the hint wrong
costs time, not correctness: a replay landing on a container that never saw its key makes
one siteverify call and is found by the transaction (or by a refusal's look-up); a first
attempt whose key someone sent before waits for the read before Turnstile starts.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

RECENT_KEYS = 4096  # ~0.5 MB at most; a retry comes seconds after the first attempt


class RecentKeys:
    """A bounded, thread-safe memory of keys (least recently seen forgotten first)."""

    def __init__(self, size: int = RECENT_KEYS) -> None:
        self.size = size
        self._keys: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def saw(self, key: str) -> bool:
        """Remember `key`; True if it was already remembered (then it is the newest again)."""
        with self._lock:
            if key in self._keys:
                self._keys.move_to_end(key)
                return True
            self._keys[key] = None
            if len(self._keys) > self.size:
                self._keys.popitem(last=False)
            return False

    def forget(self, key: str) -> None:
        """Drop `key` (as if this container had never seen it)."""
        with self._lock:
            self._keys.pop(key, None)

    def __len__(self) -> int:
        return len(self._keys)
