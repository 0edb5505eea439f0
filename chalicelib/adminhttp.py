"""The back office's HTTP side (/api/admin/...): from a request's plain values to a Response.

app.py only routes here. Sign-in by magic link (chalicelib/adminauth.py), then the session
cookie `admin_session`; every other admin route needs it (401), state-changing ones also
`X-Requested-With: admin` (403). The use cases are in chalicelib/admin.py;
docs/backoffice.md has the decisions. No stack trace ever reaches a response.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from chalice import Response

from chalicelib import http
from chalicelib.errors import ApiError, internal_error
from chalicelib.obs import log


@dataclass(frozen=True)
class Incoming:
    headers: dict[str, str]  # lower-cased names
    body: bytes = b""
    params: dict[str, str] = field(default_factory=dict)
    source_ip: str | None = None


UseCase = Callable[[Any, Any, int], "tuple[int, dict[str, Any]] | Response"]


def _error(e: ApiError) -> Response:
    return http.json_response(e.status, e.body(), e.headers)


def _internal_error(where: str, exc: Exception) -> Response:
    log("unhandled_error", "error", where=where, error=type(exc).__name__)
    return _error(internal_error())


def _now() -> int:
    from chalicelib import clock

    return int(clock.now().timestamp())


def _edge(req: Incoming) -> bool:
    from chalicelib.guard import require_edge
    from chalicelib.settings import load

    return require_edge(load(), req.headers)


def _json_body(req: Incoming) -> dict[str, Any]:
    from chalicelib.admin import parse_json

    return parse_json(req.body, req.headers.get("content-type", ""))


def signed_in(req: Incoming, use: UseCase, mutating: bool = False) -> Response:
    """Run one signed-in admin use case: `use(admin, session, now)` -> (status, body)."""
    from chalicelib.ddb import StoreUnavailable
    from chalicelib.services import services

    try:
        _edge(req)
        svc = services()
        now = _now()
        session = svc.admin_auth.session(req.headers, now, mutating)
        result = use(svc.admin, session, now)
    except ApiError as e:
        return _error(e)
    except StoreUnavailable as e:
        log("admin_failed", "error", reason="store_unavailable", detail=str(e)[:200])
        from chalicelib.errors import service_unavailable

        return _error(service_unavailable(5, "store"))
    except Exception as e:  # noqa: BLE001 - never a stack trace
        return _internal_error("admin", e)
    if isinstance(result, Response):
        return result
    status, body = result
    return http.json_response(status, body)


# --- sign-in ------------------------------------------------------------------------------
def login(req: Incoming) -> Response:
    """POST /admin/login: always 202 unless the input is bad or rate-limited."""
    from chalicelib.ddb import StoreUnavailable
    from chalicelib.guard import client_ip
    from chalicelib.mail import SendError
    from chalicelib.services import services

    try:
        ip = client_ip(req.headers, req.source_ip, _edge(req))
        services().admin_auth.request_link(
            req.body, req.headers.get("content-type", ""), ip, _now()
        )
    except ApiError as e:
        return _error(e)
    except (StoreUnavailable, SendError) as e:
        log("admin_login", "error", outcome="failed", error=type(e).__name__)
        from chalicelib.errors import service_unavailable

        return _error(service_unavailable(5, "store"))
    except Exception as e:  # noqa: BLE001
        return _internal_error("admin_login", e)
    message = "If this address may sign in, a sign-in link is on its way. It works for 15 minutes."
    return http.json_response(202, {"status": "accepted", "message": message})


def _signin_page(ok: bool) -> Response:
    from chalicelib.adminauth import signin_page
    from chalicelib.fulfilment import HTML_HEADERS
    from chalicelib.settings import load

    status, html = signin_page(ok, load().shop_name)
    return Response(body=html, status_code=status, headers=dict(HTML_HEADERS))


def link_page(token: str) -> Response:
    """GET /admin/login/{token} (mail scanners too): a button; the token is not used up."""
    from chalicelib.services import services

    try:
        ok = services().admin_auth.check_link(token, _now()) is not None
    except Exception as e:  # noqa: BLE001
        log("unhandled_error", "error", where="admin_link_page", error=type(e).__name__)
        ok = False
    return _signin_page(ok)


def link_use(req: Incoming, token: str) -> Response:
    """POST /admin/login/{token}: use the token once, set the session cookie."""
    from chalicelib.services import services

    try:
        _edge(req)
        cookie = services().admin_auth.use_link(token, _now())
    except ApiError as e:
        if e.status == 401:
            return _signin_page(False)
        return _error(e)
    except Exception as e:  # noqa: BLE001 - e.g. DynamoDB down: a page, no stack trace
        log("unhandled_error", "error", where="admin_link_use", error=type(e).__name__)
        return _signin_page(False)
    # a page, not a redirect: the local dev server's proxy follows redirects itself (and
    # would drop the cookie); the page goes on to /admin by itself (meta refresh)
    from chalicelib.adminauth import signed_in_page
    from chalicelib.fulfilment import HTML_HEADERS
    from chalicelib.settings import load

    status, html = signed_in_page(load().shop_name)
    return Response(body=html, status_code=status, headers={**HTML_HEADERS, "Set-Cookie": cookie})


# --- signed in ----------------------------------------------------------------------------
def session(req: Incoming) -> Response:
    from chalicelib.obs import mask_email

    return signed_in(req, lambda a, s, now: (200, {"who": mask_email(s.who)}))


def logout(req: Incoming) -> Response:
    from chalicelib.adminauth import audit, clear_cookie
    from chalicelib.settings import load

    def run(a: Any, s: Any, now: int) -> Response:
        audit(s, "sign_out")
        r = http.json_response(200, {"status": "signed_out"})
        r.headers["Set-Cookie"] = clear_cookie(not load().is_local)
        return r

    return signed_in(req, run, mutating=True)


def orders(req: Incoming) -> Response:
    return signed_in(req, lambda a, s, now: (200, a.list_orders(req.params, now)))


def orders_csv(req: Incoming) -> Response:
    def run(a: Any, s: Any, now: int) -> Response:
        text, headers = a.export_csv(s, req.params, now)
        return Response(body=text, status_code=200, headers=headers)

    return signed_in(req, run)


def order(req: Incoming, order_id: str) -> Response:
    return signed_in(req, lambda a, s, now: (200, a.detail(order_id)))


def order_action(req: Incoming, order_id: str) -> Response:
    return signed_in(
        req, lambda a, s, now: (200, a.act(s, order_id, _json_body(req), now)), mutating=True
    )


def email_health(req: Incoming) -> Response:
    return signed_in(req, lambda a, s, now: (200, a.email_health(now)))


def unsuppress(req: Incoming) -> Response:
    return signed_in(
        req, lambda a, s, now: (200, a.unsuppress(s, _json_body(req), now)), mutating=True
    )


def erase(req: Incoming) -> Response:
    return signed_in(
        req, lambda a, s, now: (200, a.erase_customer(s, _json_body(req), now)), mutating=True
    )


def sweep_retention() -> dict[str, int]:
    """The daily schedule: personal data out of orders older than ORDER_RETENTION_DAYS."""
    from chalicelib.services import services

    return dict(services().admin.sweep_retention(_now()))
