"""Fixed-window rate limits kept in DynamoDB (one conditional UpdateItem per counter).

Item: pk = "rl#{scope}#{sha256(key)[:32]}#{window_start}", n = hits so far, expires_at = the
window's end plus a minute (the table's TTL attribute; expired items are also simply never
read again because the next window has another pk). Keys are hashed so the table holds no
email or IP addresses.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

from chalicelib.obs import log

EXPIRY_SLACK_SECONDS = 60


class RateLimited(Exception):
    """Too many requests for `scope` ("ip"/"email"); retry after `retry_after` seconds."""

    def __init__(self, scope: str, retry_after: int) -> None:
        super().__init__(f"rate limited ({scope}); retry after {retry_after}s")
        self.scope = scope
        self.retry_after = retry_after


def hashed_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


def counter_pk(scope: str, key: str, window_seconds: int, now: float) -> tuple[str, int]:
    """(pk, window_start) of the counter for `key` in the window containing `now`."""
    window_start = int(now // window_seconds) * window_seconds
    return f"rl#{scope}#{hashed_key(key)}#{window_start}", window_start


class RateLimiter:
    def __init__(self, ddb_client: Any, table: str) -> None:
        self.ddb = ddb_client
        self.table = table

    def hit(self, counters: list[tuple[str, str, int, int]], now: float) -> None:
        """Count one hit on each (scope, key, limit, window_seconds), in order.

        Raises RateLimited for the first counter already at its limit (that hit is not
        counted; earlier counters in the list keep theirs). Other botocore errors propagate.
        """
        from botocore.exceptions import ClientError

        for scope, key, limit, window in counters:
            pk, window_start = counter_pk(scope, key, window, now)
            window_end = window_start + window
            try:
                self.ddb.update_item(
                    TableName=self.table,
                    Key={"pk": {"S": pk}},
                    UpdateExpression="ADD n :one SET expires_at = :exp",
                    ConditionExpression="attribute_not_exists(n) OR n < :limit",
                    ExpressionAttributeValues={
                        ":one": {"N": "1"},
                        ":limit": {"N": str(int(limit))},
                        ":exp": {"N": str(window_end + EXPIRY_SLACK_SECONDS)},
                    },
                )
            except ClientError as e:
                if e.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                    raise
                retry_after = max(1, math.ceil(window_end - now))
                log(
                    "rate_limited",
                    level="warning",
                    scope=scope,
                    limit=limit,
                    window=window,
                    retry_after=retry_after,
                )
                raise RateLimited(scope, retry_after) from None
