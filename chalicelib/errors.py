"""The catalogue of public error codes (one constructor each) and the one place that writes
the rejection log line and metric.

`app.py` turns an `ApiError` into `{"error": {"code", "message", "fields", ...}}` with its
status. docs/openapi.yaml lists the same codes; tests/api/test_contract.py keeps them in step.
"""

from __future__ import annotations

from typing import Any

from chalicelib.obs import log, metric


class ApiError(Exception):
    """A refusal the client can act on: HTTP status, stable code, human message."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        fields: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
        reason: str | None = None,
    ) -> None:
        super().__init__(message)
        self._reason = reason
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields or {}
        self.headers = headers or {}
        self.extra = extra or {}

    @property
    def reason(self) -> str:
        """What the log line and the `OrderRejected` metric call this refusal."""
        return str(self._reason or self.extra.get("reason") or self.code)

    def body(self) -> dict[str, Any]:
        err: dict[str, Any] = {"code": self.code, "message": self.message, "fields": self.fields}
        err.update(self.extra)
        return {"error": err}


def reject(error: ApiError, reason: str | None = None, **fields: Any) -> ApiError:
    """Log one `order_rejected` line and count `OrderRejected{reason}`; returns `error` so
    callers write `raise reject(...)`. `fields` must already be masked (obs.mask_*)."""
    why = reason or error.reason
    log("order_rejected", reason=why, code=error.code, **fields)
    metric("OrderRejected", reason=why)
    return error


# --- the catalogue ---------------------------------------------------------------------------
def unsupported_media_type() -> ApiError:
    return ApiError(415, "unsupported_media_type", "Send the order as application/json.")


def payload_too_large(limit: int) -> ApiError:
    return ApiError(413, "payload_too_large", f"The body is over {limit} bytes.")


def invalid_json() -> ApiError:
    return ApiError(400, "invalid_json", "The request body is not valid JSON.")


def validation_failed(
    fields: dict[str, str], message: str = "Some fields need attention."
) -> ApiError:
    return ApiError(422, "validation_failed", message, fields)


def email_undeliverable(message: str, field_message: str, reason: str) -> ApiError:
    return ApiError(
        422, "email_undeliverable", message, {"email": field_message}, extra={"reason": reason}
    )


def suppressed_address() -> ApiError:
    return email_undeliverable(
        "Email to this address has bounced or been refused before. Use another address.",
        "This address can't receive our emails.",
        "suppressed",
    )


def delivery_day_unavailable(reason: str, message: str, next_days: list[str]) -> ApiError:
    """422 for a delivery day that can't be had; `next_available` offers the ones that can."""
    offer = f" The next days with room: {', '.join(next_days[:3])}." if next_days else ""
    return ApiError(
        422,
        "delivery_day_unavailable",
        f"{message}{offer}",
        {"delivery_day": message},
        extra={"reason": reason, "next_available": next_days},
    )


def closed(message: str, opens_at: str | None) -> ApiError:
    return ApiError(422, "closed", message, extra={"opens_at": opens_at})


def rate_limited(retry_after: int, scope: str) -> ApiError:
    wait = max(1, int(retry_after))
    human = f"{wait} seconds" if wait < 90 else f"{(wait + 59) // 60} minutes"
    return ApiError(
        429,
        "rate_limited",
        f"Too many orders. Please try again in {human}.",
        headers={"Retry-After": str(wait)},
        extra={"retry_after": wait},
        reason=f"rate_limited_{scope}",
    )


def bot_check_failed(codes: list[str]) -> ApiError:
    return ApiError(
        403,
        "bot_check_failed",
        "We couldn't confirm you're not a robot. Please complete the check again.",
        extra={"codes": list(codes)},
    )


def forbidden(message: str = "Requests must come through the shop's website.") -> ApiError:
    return ApiError(403, "forbidden", message)


def idempotency_key_reused() -> ApiError:
    return ApiError(
        409,
        "idempotency_key_reused",
        "This Idempotency-Key was already used for a different order. Start a new checkout.",
    )


def service_unavailable(retry_after: int = 5, what: str = "") -> ApiError:
    msg = "We could not take your order just now. Please try again in a moment."
    return ApiError(
        503,
        "service_unavailable",
        msg,
        headers={"Retry-After": str(retry_after)},
        extra={"retry_after": retry_after} | ({"component": what} if what else {}),
    )


def internal_error() -> ApiError:
    return ApiError(500, "internal_error", "Something went wrong on our side. Please try again.")
