"""Chalice app: wiring only. Parse the request, call chalicelib, map results to responses."""

from __future__ import annotations

import json
from typing import Any

from chalice import Chalice, Response

from chalicelib.errors import ApiError
from chalicelib.obs import log

app = Chalice(app_name="juice-orders")

JSON_HEADERS = {"Content-Type": "application/json", "Cache-Control": "no-store"}


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return Response(
        body=json.dumps(body, separators=(",", ":")),
        status_code=status,
        headers={**JSON_HEADERS, **(headers or {})},
    )


def _error(e: ApiError) -> Response:
    return _json(e.status, e.body(), e.headers)


def _internal_error(where: str, exc: Exception) -> Response:
    log("unhandled_error", "error", where=where, error=type(exc).__name__)
    return _error(
        ApiError(500, "internal_error", "Something went wrong on our side. Please try again.")
    )


def _headers() -> dict[str, str]:
    return {k.lower(): v for k, v in (app.current_request.headers or {}).items()}


@app.route("/catalog", methods=["GET"], cors=False)
def get_catalog() -> Response:
    from chalicelib.catalog import load_catalog
    from chalicelib.settings import load

    return _json(
        200, load_catalog().as_response(load().min_items), {"Cache-Control": "public, max-age=60"}
    )


@app.route("/orders", methods=["POST"], content_types=["*/*"], cors=False)
def post_order() -> Response:
    from chalicelib import checkout

    req = app.current_request
    headers = _headers()
    identity = (req.context or {}).get("identity") or {}
    incoming = checkout.IncomingOrder(
        raw_body=req.raw_body or b"",
        content_type=headers.get("content-type", ""),
        idempotency_key=headers.get("idempotency-key"),
        source_ip=identity.get("sourceIp"),
        headers=headers,
    )
    try:
        result = checkout.place_order(incoming)
    except ApiError as e:
        return _error(e)
    except Exception as e:  # noqa: BLE001 - never a stack trace to the client
        return _internal_error("post_order", e)
    return _json(result.status, result.body, result.headers)
