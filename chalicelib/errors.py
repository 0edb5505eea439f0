"""Every rejection the API can give: a stable code, an HTTP status, a human message."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """Raised by chalicelib; app.py turns it into `{"error": {...}}` with `status`."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        fields: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields or {}
        self.headers = headers or {}
        self.extra = extra or {}

    def body(self) -> dict[str, Any]:
        err: dict[str, Any] = {"code": self.code, "message": self.message, "fields": self.fields}
        err.update(self.extra)
        return {"error": err}


def validation_failed(fields: dict[str, str]) -> ApiError:
    return ApiError(422, "validation_failed", "Some fields need attention.", fields)


def service_unavailable(retry_after: int = 5, what: str = "") -> ApiError:
    msg = "We could not take your order just now. Please try again in a moment."
    return ApiError(
        503,
        "service_unavailable",
        msg,
        headers={"Retry-After": str(retry_after)},
        extra={"retry_after": retry_after} | ({"component": what} if what else {}),
    )
