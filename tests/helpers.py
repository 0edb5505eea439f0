"""Small helpers shared by the API tests."""

from __future__ import annotations

import copy
import json
from typing import Any

CUSTOMER_EMAIL = "shopper@deliverable.test"
JSON = {"Content-Type": "application/json"}

BASE_ORDER: dict[str, Any] = {
    "name": "Jane Doe",
    "email": CUSTOMER_EMAIL,
    "phone": "(212) 555-0143",
    "shipping": {
        "line1": "1 Main Street",
        "line2": "Apt 4",
        "city": "New York",
        "state": "NY",
        "zip": "10001",
    },
    "items": [{"sku": "green-machine", "qty": 2}, {"sku": "beet-it", "qty": 1}],
    "turnstile_token": "XXXX.DUMMY.TOKEN.XXXX",
    "website": "",
}


def order_body(**overrides: Any) -> dict[str, Any]:
    body = copy.deepcopy(BASE_ORDER)
    for k, v in overrides.items():
        if k.startswith("shipping__"):
            body["shipping"][k.split("__", 1)[1]] = v
        else:
            body[k] = v
    return body


def post_order(client: Any, body: Any, key: str | None = None, **headers: str) -> Any:
    h = {**JSON, **headers}
    if key:
        h["Idempotency-Key"] = key
    raw = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return client.http.post("/orders", headers=h, body=raw)


def error_of(response: Any) -> dict[str, Any]:
    body = json.loads(response.body)
    assert set(body) == {"error"}, body
    assert {"code", "message", "fields"} <= set(body["error"]), body
    return dict(body["error"])
