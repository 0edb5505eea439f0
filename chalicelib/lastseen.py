"""What this container last saw of the items an order's create transaction checks: a guess,
never a decision.

POST /orders reads nothing before it writes (issue 11: four AWS calls per order). The create
transaction states what it expects of each item it checks or counts (a rate-limit window as
it was, a delivery day with room, no suppression of any recipient) and DynamoDB checks it,
atomically with the order. Where an expectation was wrong the transaction is cancelled and
hands back the item as it really is (`ReturnValuesOnConditionCheckFailure=ALL_OLD`): the
order is decided again on that, and this memory learns it.

The expectations come from here: each rate-limit window as this container last wrote or was
shown it (an item never seen is expected absent), and the delivery days this container saw
full (for `slots_cache_seconds`, since a cancelled order gives its slot back). Getting a guess
wrong costs one more transaction, never a wrong answer: another container's orders move the
windows it shares with this one (an IP, a returning customer), and their next order here is
decided on what the cancellation shows.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

SEEN_ITEMS = 8192  # rate windows are ~100 bytes each: well under 2 MB at most


class LastSeen:
    """A bounded, thread-safe memory: pk -> (item or None for absent, when it was seen)."""

    def __init__(self, size: int = SEEN_ITEMS) -> None:
        self.size = size
        self._items: OrderedDict[str, tuple[dict[str, Any] | None, float]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, pk: str, now: float, max_age: float | None = None) -> dict[str, Any] | None:
        """The item as last seen (None: never seen, seen absent, or older than `max_age`)."""
        with self._lock:
            found = self._items.get(pk)
        if found is None or (max_age is not None and now - found[1] >= max_age):
            return None
        return found[0]

    def put(self, pk: str, item: dict[str, Any] | None, now: float) -> None:
        with self._lock:
            self._items[pk] = (dict(item) if item else None, now)
            self._items.move_to_end(pk)
            if len(self._items) > self.size:
                self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)
