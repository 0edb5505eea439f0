"""HTTP responses of the JSON API: one error shape and `X-Content-Type-Options: nosniff` on all.

* `json_response(status, body, headers)`: every response app.py builds.
* `install(app)`: a Chalice HTTP middleware that rewrites Chalice's own error bodies
  (`{"Code": "MethodNotAllowedError", "Message": ...}` for a wrong method, 415, 500 ...) into
  `{"error": {"code", "message", "fields"}}` and adds nosniff to any response that lacks it,
  in Lambda, `chalice local` and `chalice.test.Client` alike.
* `error_body`, `reshape_chalice_error`, `gateway_error_body`: the same shape for the local
  gateway (devstack/chalice_local.py), which answers unknown routes before the app runs.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from chalice import Response

NOSNIFF_HEADER = "X-Content-Type-Options"
NOSNIFF = {NOSNIFF_HEADER: "nosniff"}
JSON_HEADERS = {"Content-Type": "application/json", "Cache-Control": "no-store", **NOSNIFF}

# Our answers to what Chalice / the gateway say on their own. (code, message) by status.
_BY_STATUS: dict[int, tuple[str, str]] = {
    400: ("bad_request", "The request could not be read."),
    401: ("unauthorized", "This request needs to be signed in."),
    403: ("forbidden", "This request is not allowed."),
    404: ("not_found", "There is nothing at this address."),
    405: ("method_not_allowed", "This address does not accept this method."),
    408: ("request_timeout", "The request took too long. Please try again."),
    409: ("conflict", "This request conflicts with another one."),
    413: ("payload_too_large", "The request is too large."),
    414: ("uri_too_long", "The address is too long."),
    415: ("unsupported_media_type", "Send the order as JSON (Content-Type: application/json)."),
    422: ("validation_failed", "Some fields need attention."),
    429: ("rate_limited", "Too many requests. Please wait a moment and try again."),
    431: ("headers_too_large", "The request headers are too large."),
    500: ("internal_error", "Something went wrong on our side. Please try again."),
    501: ("method_not_allowed", "This address does not accept this method."),
    502: ("bad_gateway", "Something went wrong on our side. Please try again."),
    503: ("service_unavailable", "We can't answer just now. Please try again in a moment."),
    504: ("timeout", "Something took too long on our side. Please try again."),
}


def json_response(
    status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> Response:
    """A compact JSON response with Content-Type, `Cache-Control: no-store` (override it in
    `headers`) and nosniff."""
    return Response(
        body=json.dumps(body, separators=(",", ":")),
        status_code=status,
        headers={**JSON_HEADERS, **(headers or {})},
    )


def error_body(
    code: str, message: str, fields: dict[str, str] | None = None, **extra: Any
) -> dict[str, Any]:
    """`{"error": {"code", "message", "fields", ...extra}}` (the documented error shape)."""
    return {"error": {"code": code, "message": message, "fields": fields or {}, **extra}}


def status_error_body(status: int, method: str = "") -> dict[str, Any]:
    """The error body for a bare HTTP status (unknown statuses map by their class)."""
    default = _BY_STATUS[500 if status >= 500 else 400]
    code, message = _BY_STATUS.get(status, default)
    if code == "method_not_allowed" and method:
        safe = method if method.isascii() and method.isalpha() and len(method) <= 16 else ""
        if safe:
            message = f"This address does not accept {safe.upper()} requests."
    return error_body(code, message)


def is_chalice_error(body: Any) -> bool:
    """Chalice's own error body: `{"Code": ..., "Message": ...}`."""
    return isinstance(body, dict) and "Code" in body and "Message" in body and len(body) == 2


def reshape_chalice_error(status: int, body: Any, method: str = "") -> dict[str, Any] | None:
    """Our error body for a Chalice error body, or None when `body` is not one."""
    if not is_chalice_error(body):
        return None
    return status_error_body(status if status >= 400 else 500, method)


def gateway_error_body(status: int, raw: bytes | None) -> tuple[int, dict[str, Any]]:
    """(status, body) for an error Chalice's local API Gateway raised before the app ran.

    An unknown route answers 403 "Missing Authentication Token" like API Gateway; to a
    client that is a 404."""
    text = (raw or b"").decode("utf-8", "replace")
    if status == 403 and ("Missing Authentication Token" in text or "Authorization header" in text):
        return 404, status_error_body(404)
    return status, status_error_body(status)


def has_header(headers: Any, name: str) -> bool:
    return any(str(k).lower() == name.lower() for k in (headers or {}))


def error_shape_middleware(event: Any, get_response: Callable[[Any], Response]) -> Response:
    """Chalice HTTP middleware: Chalice's error bodies get our shape; nosniff everywhere."""
    response = get_response(event)
    reshaped = reshape_chalice_error(
        response.status_code, response.body, str(getattr(event, "method", "") or "")
    )
    if reshaped is not None:
        response.body = json.dumps(reshaped, separators=(",", ":"))
        for key in [k for k in response.headers if k.lower() == "content-type"]:
            del response.headers[key]
        response.headers.update({"Content-Type": "application/json", "Cache-Control": "no-store"})
    if not has_header(response.headers, NOSNIFF_HEADER):
        response.headers[NOSNIFF_HEADER] = "nosniff"
    return response


def install(app: Any) -> None:
    """Register `error_shape_middleware` for the app's HTTP routes (call once, in app.py)."""
    app.register_middleware(error_shape_middleware, "http")
