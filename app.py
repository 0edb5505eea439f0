"""Chalice app: wiring only. Parse the request, call chalicelib, map results to responses."""

from __future__ import annotations

import os
from typing import Any

from chalice import Chalice, Rate, Response
from chalice.app import Request

from chalicelib import http, startup
from chalicelib.errors import ApiError, internal_error
from chalicelib.obs import log

startup.hold()  # no cyclic GC while the container starts (chalicelib/startup.py)
app = Chalice(app_name="juice-orders")
http.install(app)  # Chalice's own errors get our shape; nosniff on every response


@app.middleware("all")
def _started(event: Any, get_response: Any) -> Any:
    try:
        return get_response(event)
    finally:
        startup.release()  # after the first invocation: freeze the start, collect again


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return http.json_response(status, body, headers)


def _error(e: ApiError) -> Response:
    return _json(e.status, e.body(), e.headers)


def _internal_error(where: str, exc: Exception) -> Response:
    log("unhandled_error", "error", where=where, error=type(exc).__name__)
    return _error(internal_error())


def _request() -> Request:
    req = app.current_request
    if req is None:  # only outside a request (never for a route handler)
        raise RuntimeError("no current request")
    return req


def _headers() -> dict[str, str]:
    return {k.lower(): v for k, v in (_request().headers or {}).items()}


def _raw_body() -> bytes:
    raw = _request().raw_body or b""
    return raw if isinstance(raw, bytes) else str(raw).encode()


def _remaining_ms() -> float | None:
    """What is left of this invocation (Lambda's context; chalice local has one too)."""
    remaining = getattr(app.lambda_context, "get_remaining_time_in_millis", None)
    try:
        return float(remaining()) if callable(remaining) else None
    except (TypeError, ValueError):
        return None


def _edge(settings: Any = None) -> bool:
    """403 in cloud stages unless the request came through CloudFront; True if it did."""
    from chalicelib.guard import require_edge
    from chalicelib.settings import load

    return require_edge(settings or load(), _headers())


@app.route("/catalog", methods=["GET"], cors=False)
def get_catalog() -> Response:
    from chalicelib.services import catalog_body

    try:
        _edge()
    except ApiError as e:
        return _error(e)
    return _json(200, catalog_body(), {"Cache-Control": "public, max-age=60"})


@app.route("/orders", methods=["POST"], content_types=["*/*"], cors=False)
def post_order() -> Response:
    from chalicelib import checkout
    from chalicelib.services import services

    req = _request()
    headers = _headers()
    try:
        svc = services()  # the settings are read once per request
        trusted = _edge(svc.settings)
    except ApiError as e:
        return _error(e)
    except Exception as e:  # noqa: BLE001 - e.g. SSM unreachable: no stack trace
        return _internal_error("edge", e)
    identity = (req.context or {}).get("identity") or {}
    incoming = checkout.IncomingOrder(
        raw_body=_raw_body(),
        content_type=headers.get("content-type", ""),
        idempotency_key=headers.get("idempotency-key"),
        source_ip=identity.get("sourceIp"),
        headers=headers,
        trusted_edge=trusted,
        remaining_ms=_remaining_ms(),
    )
    try:
        result = checkout.place_order(incoming, svc)
    except ApiError as e:
        return _error(e)
    except Exception as e:  # noqa: BLE001 - never a stack trace to the client
        return _internal_error("post_order", e)
    return _json(result.status, result.body, result.headers)


# Chalice needs the topic at import/package time; `chalice package --stage X` sets the
# stage's environment first, so this is the per-stage topic name from .chalice/config.json.
FEEDBACK_TOPIC = os.environ.get("SES_FEEDBACK_TOPIC", "ses-feedback")


@app.on_sns_message(topic=FEEDBACK_TOPIC, name="handle_ses_feedback")
def handle_ses_feedback(event: Any) -> dict[str, int]:
    """SES bounce/complaint/delivery notifications -> suppression table / order status.
    Raises on an infrastructure error (Lambda retries twice, then the DLQ)."""
    from chalicelib.services import handle_feedback

    return handle_feedback(event.to_dict())


@app.schedule(Rate(5, unit=Rate.MINUTES), name="sweep_outbox")
def sweep_outbox(event: Any) -> dict[str, int]:
    """Retry every email still pending/failed after the grace period, within the
    function's own time (60 s kept for the sends in flight)."""
    from chalicelib.services import run_sweeper, sweeper_budget

    remaining = getattr(getattr(event, "context", None), "get_remaining_time_in_millis", None)
    return run_sweeper(sweeper_budget(float(remaining()) if callable(remaining) else None))


# === issue 14: order links (fulfilment from the merchant's inbox) ============================
# GET never changes anything (mail scanners fetch links); only the POST from the page acts.
# HTML pages, never a stack trace: chalicelib/fulfilment.py does the work.


def _html(page: Any) -> Response:
    return Response(body=page.html, status_code=page.status, headers=dict(page.headers))


@app.route("/o/{token}", methods=["GET"], cors=False)
def get_order_action(token: str) -> Response:
    from chalicelib import fulfilment
    from chalicelib.services import services

    return _html(fulfilment.safely(lambda: services().fulfilment.show_action(token)))


@app.route("/o/{token}", methods=["POST"], content_types=["*/*"], cors=False)
def post_order_action(token: str) -> Response:
    from chalicelib import fulfilment
    from chalicelib.services import services

    body = _raw_body()
    ctype = _headers().get("content-type", "")
    return _html(fulfilment.safely(lambda: services().fulfilment.do_action(token, body, ctype)))


@app.route("/s/{token}", methods=["GET"], cors=False)
def get_order_status(token: str) -> Response:
    from chalicelib import fulfilment
    from chalicelib.services import services

    return _html(fulfilment.safely(lambda: services().fulfilment.show_status(token)))


# === end issue 14 ============================================================================


# === issue 15: the back office (/api/admin/...) ==============================================
# The HTTP side is chalicelib/adminhttp.py, the use cases chalicelib/admin.py.


def _admin_request() -> Any:
    from chalicelib.adminhttp import Incoming

    req = _request()
    return Incoming(
        headers=_headers(),
        body=_raw_body(),
        params=dict(req.query_params or {}),
        source_ip=((req.context or {}).get("identity") or {}).get("sourceIp"),
    )


@app.route("/admin/login", methods=["POST"], content_types=["*/*"], cors=False)
def admin_login() -> Response:
    from chalicelib import adminhttp

    return adminhttp.login(_admin_request())


@app.route("/admin/login/{token}", methods=["GET"], cors=False)
def admin_link_page(token: str) -> Response:
    from chalicelib import adminhttp

    return adminhttp.link_page(token)


@app.route("/admin/login/{token}", methods=["POST"], content_types=["*/*"], cors=False)
def admin_link_use(token: str) -> Response:
    from chalicelib import adminhttp

    return adminhttp.link_use(_admin_request(), token)


@app.route("/admin/session", methods=["GET"], cors=False)
def admin_session() -> Response:
    from chalicelib import adminhttp

    return adminhttp.session(_admin_request())


@app.route("/admin/logout", methods=["POST"], content_types=["*/*"], cors=False)
def admin_logout() -> Response:
    from chalicelib import adminhttp

    return adminhttp.logout(_admin_request())


@app.route("/admin/orders", methods=["GET"], cors=False)
def admin_orders() -> Response:
    from chalicelib import adminhttp

    return adminhttp.orders(_admin_request())


@app.route("/admin/orders.csv", methods=["GET"], cors=False)
def admin_orders_csv() -> Response:
    from chalicelib import adminhttp

    return adminhttp.orders_csv(_admin_request())


@app.route("/admin/orders/{order_id}", methods=["GET"], cors=False)
def admin_order(order_id: str) -> Response:
    from chalicelib import adminhttp

    return adminhttp.order(_admin_request(), order_id)


@app.route("/admin/orders/{order_id}/actions", methods=["POST"], content_types=["*/*"], cors=False)
def admin_order_action(order_id: str) -> Response:
    from chalicelib import adminhttp

    return adminhttp.order_action(_admin_request(), order_id)


@app.route("/admin/email-health", methods=["GET"], cors=False)
def admin_email_health() -> Response:
    from chalicelib import adminhttp

    return adminhttp.email_health(_admin_request())


@app.route("/admin/suppression/remove", methods=["POST"], content_types=["*/*"], cors=False)
def admin_unsuppress() -> Response:
    from chalicelib import adminhttp

    return adminhttp.unsuppress(_admin_request())


@app.route("/admin/erase", methods=["POST"], content_types=["*/*"], cors=False)
def admin_erase() -> Response:
    from chalicelib import adminhttp

    return adminhttp.erase(_admin_request())


@app.schedule(Rate(1, unit=Rate.DAYS), name="sweep_retention")
def sweep_retention(event: Any) -> dict[str, int]:
    """Personal data out of orders older than ORDER_RETENTION_DAYS (totals stay)."""
    from chalicelib import adminhttp

    return adminhttp.sweep_retention()


# === end issue 15 ============================================================================
