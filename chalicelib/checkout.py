"""The order pipeline: parse -> validate -> checks -> persist -> send.

`Services` holds the lazily created adapters (boto3 clients, mailer, ...) for one set of
settings; `place_order` is the whole POST /orders use case on plain values.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from chalicelib import aws, clock, hours, ids
from chalicelib.catalog import load_catalog
from chalicelib.errors import ApiError, service_unavailable
from chalicelib.obs import log, mask_email, mask_phone, metric
from chalicelib.orders import IDEMPOTENCY_KEY_RE, OrderRequest, parse_order, request_hash
from chalicelib.settings import Settings, load
from chalicelib.shop import load_shop
from chalicelib.store import ROLES, OrderStore, StoreUnavailable

MAX_BODY_BYTES = 16 * 1024

_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def executor() -> ThreadPoolExecutor:
    """A small shared pool for concurrent checks and sends (created on first use)."""
    global _executor
    if _executor is None:
        with _executor_lock:
            if _executor is None:
                _executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="io")
    return _executor


class Services:
    """Adapters for one set of settings, each created on first use."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._store: OrderStore | None = None
        self._mailer: Any = None
        self._suppression: Any = None
        self._rate_limiter: Any = None
        self._turnstile: Any = None
        self._recipients: Any = None

    @property
    def store(self) -> OrderStore:
        if self._store is None:
            self._store = OrderStore(
                aws.client("dynamodb", self.settings), self.settings.orders_table
            )
        return self._store

    @property
    def suppression(self) -> Any:
        if self._suppression is None:
            from chalicelib.suppression import SuppressionStore

            s = self.settings
            self._suppression = SuppressionStore(aws.client("dynamodb", s), s.suppression_table)
        return self._suppression

    @property
    def rate_limiter(self) -> Any:
        if self._rate_limiter is None:
            from chalicelib.ratelimit import RateLimiter

            s = self.settings
            self._rate_limiter = RateLimiter(aws.client("dynamodb", s), s.rate_limit_table)
        return self._rate_limiter

    @property
    def turnstile(self) -> Any:
        if self._turnstile is None:
            from chalicelib.turnstile import TurnstileClient

            s = self.settings
            secret = s.turnstile_secret
            if not secret and s.turnstile_secret_param:
                from chalicelib.edge import get_parameter

                secret = get_parameter(s.region, s.aws_endpoint_url, s.turnstile_secret_param)
            self._turnstile = TurnstileClient(
                secret,
                s.turnstile_verify_url,
                s.turnstile_hostnames,
                s.turnstile_action,
                s.turnstile_timeout,
            )
        return self._turnstile

    @property
    def recipients(self) -> Any:
        if self._recipients is None:
            from chalicelib.recipients import DisposableDomains, DnsChecker, RecipientChecker

            s = self.settings
            self._recipients = RecipientChecker(
                DnsChecker(s.dns_nameservers, s.dns_timeout),
                DisposableDomains(),
                test_environment=s.email_test_environment,
                dns_fail_open=s.dns_fail_open,
            )
        return self._recipients

    @property
    def mailer(self) -> Any:
        if self._mailer is None:
            from chalicelib.mail import Mailer

            s = self.settings
            self._mailer = Mailer(
                aws.client("sesv2", s, "ses"), s.sender_email, s.ses_configuration_set
            )
        return self._mailer


_services: Services | None = None


def services() -> Services:
    """The Services for the current settings (rebuilt only when the settings change)."""
    global _services
    current = load()
    if _services is None or _services.settings != current:
        _services = Services(current)
    return _services


@dataclass
class IncomingOrder:
    raw_body: bytes
    content_type: str
    idempotency_key: str | None
    source_ip: str | None
    headers: dict[str, str] = field(default_factory=dict)
    trusted_edge: bool = False  # the CloudFront origin-verify header matched


@dataclass
class Result:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


def parse_body(raw: bytes, content_type: str) -> Any:
    """Content type, size and JSON checks with their stable error codes."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media != "application/json":
        raise ApiError(415, "unsupported_media_type", "Send the order as application/json.")
    if len(raw) > MAX_BODY_BYTES:
        raise ApiError(413, "payload_too_large", f"The body is over {MAX_BODY_BYTES} bytes.")
    try:
        text = raw.decode("utf-8")
        return json.loads(text, parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ApiError(400, "invalid_json", "The request body is not valid JSON.") from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def submission_fields(body: dict[str, Any]) -> dict[str, Any]:
    """What makes two requests "the same order": everything but the one-time bot-check token
    (a retry may carry a fresh one) and the honeypot."""
    return {k: v for k, v in body.items() if k not in ("turnstile_token", "website")}


def check_idempotency_key(key: str | None) -> str | None:
    if key is None or key == "":
        return None
    if not IDEMPOTENCY_KEY_RE.match(key):
        raise ApiError(
            422,
            "validation_failed",
            "The Idempotency-Key header is malformed.",
            {"Idempotency-Key": "Use 8 to 64 characters: letters, digits, '-' or '_'."},
        )
    return key


def check_hours(settings: Settings, now: datetime) -> None:
    try:
        open_now, next_open = hours.is_open(now, settings.business_hours, settings.shop_timezone)
    except (ValueError, KeyError):
        log("hours_misconfigured", "error", spec=settings.business_hours)
        open_now, next_open = True, None  # a typo in a setting must not close the shop
    if not open_now:
        log("order_rejected", reason="closed")
        metric("OrderRejected", reason="closed")
        raise ApiError(
            422,
            "closed",
            hours.closed_message(next_open),
            extra={"opens_at": next_open.isoformat() if next_open else None},
        )


def _is_aws_error(e: Exception) -> bool:
    from botocore.exceptions import BotoCoreError, ClientError

    from chalicelib.suppression import SuppressionError

    return isinstance(e, (BotoCoreError, ClientError, SuppressionError))


def check_not_suppressed(svc: Services, email: str, now: int) -> None:
    """An address that bounced or complained never gets mail from us again."""
    if svc.suppression.is_suppressed(email, now):
        log("order_rejected", reason="suppressed", email=mask_email(email))
        metric("OrderRejected", reason="suppressed")
        raise ApiError(
            422,
            "email_undeliverable",
            "Email to this address has bounced or been refused before. Use another address.",
            {"email": "This address can't receive our emails."},
            extra={"reason": "suppressed"},
        )


def response_body(order: dict[str, Any]) -> dict[str, Any]:
    return {
        "order_id": order["order_id"],
        "status": "accepted",
        "items": order["items"],
        "subtotal_cents": order.get("subtotal_cents", order["total_cents"]),
        "delivery_fee_cents": order.get("delivery_fee_cents", 0),
        "total_cents": order["total_cents"],
        "currency": order["currency"],
    }


def build_order(
    req: OrderRequest, key: str | None, digest: str, now: int, flags: list[str], lease: int
) -> Callable[[str], dict[str, Any]]:
    def build(order_id: str) -> dict[str, Any]:
        order: dict[str, Any] = {
            "kind": "order",
            "order_id": order_id,
            "created_at": now,
            "customer": {"name": req.name, "email": req.email, "phone": req.phone},
            "shipping": {
                "line1": req.shipping.line1,
                "line2": req.shipping.line2,
                "city": req.shipping.city,
                "state": req.shipping.state,
                "zip": req.shipping.zip,
            },
            "items": req.lines_as_dicts(),
            "subtotal_cents": req.subtotal_cents,
            "delivery_fee_cents": req.delivery_fee_cents,
            "total_cents": req.total_cents,
            "currency": req.currency,
            "request_hash": digest,
            "flags": flags,
            # both emails are claimed by this request (lease) so a sweeper can't race it
            "emails": {
                role: {"status": "sending", "attempts": 0, "lease_until": now + lease}
                for role in ROLES
            },
            "outbox": "pending",
            "due_at": now + lease,
        }
        if key:
            order["idempotency_key"] = key
        return order

    return build


def place_order(incoming: IncomingOrder, svc: Services | None = None) -> Result:
    """POST /orders. Raises ApiError for every rejection."""
    svc = svc or services()
    s = svc.settings
    started = time.perf_counter()
    try:
        body = parse_body(incoming.raw_body, incoming.content_type)
        key = check_idempotency_key(incoming.idempotency_key)
        req = parse_order(
            body,
            load_catalog(),
            min_items=s.min_items,
            max_line_qty=s.max_line_qty,
            test_environment=s.email_test_environment,
            shop=load_shop(),
        )
    except ApiError as e:
        reason = e.extra.get("reason", e.code)
        log("order_rejected", reason=reason, code=e.code, fields=sorted(e.fields))
        metric("OrderRejected", reason=str(reason))
        raise
    digest = request_hash(submission_fields(body))
    if req.honeypot:
        from chalicelib.guard import honeypot_response

        return Result(201, honeypot_response(req))
    now_dt = clock.now()
    now = int(now_dt.timestamp())
    try:
        if key:
            existing = svc.store.lookup_idempotent(key, digest)
            if existing is not None:
                return replay_result(existing, key)
        check_hours(s, now_dt)
        from chalicelib import guard

        ip = guard.client_ip(incoming.headers, incoming.source_ip, incoming.trusted_edge)
        guard.check_rate_limits(svc, req, ip, now, f"{key}:{digest}" if key else None)
        # the suppression lookup runs alongside Turnstile || DNS (it is only a GetItem)
        suppressed = executor().submit(check_not_suppressed, svc, req.email, now)
        try:
            flags = guard.verify_human_and_recipient(svc, req, ip, key)
        finally:
            suppression_error = suppressed.exception()
        if suppression_error is not None:
            raise suppression_error
        outcome = svc.store.create(
            build_order(req, key, digest, now, flags, s.outbox_lease_seconds),
            ids.new_order_id,
            key,
            digest,
            now,
        )
    except ApiError:
        raise
    except StoreUnavailable as e:
        log("order_failed", "error", reason="store_unavailable", detail=str(e))
        metric("OrderFailed", reason="store_unavailable")
        raise service_unavailable(5, "store") from None
    except Exception as e:
        if not _is_aws_error(e):
            raise
        log("order_failed", "error", reason="aws_unavailable", detail=type(e).__name__)
        metric("OrderFailed", reason="aws_unavailable")
        raise service_unavailable(5, "store") from None
    if outcome.kind != "created":
        return replay_result(outcome, key)
    order = outcome.order
    if order is None:  # "created" always carries the order; be explicit rather than assert
        raise service_unavailable(2, "store")
    log(
        "order_accepted",
        order_id=order["order_id"],
        email=mask_email(req.email),
        phone=mask_phone(req.phone),
        total_cents=req.total_cents,
        items=sum(line.qty for line in req.lines),
        idempotent=bool(key),
    )
    metric("OrderAccepted")
    from chalicelib.outbox import send_emails

    # the customer's address was checked against the suppression list moments ago
    statuses = send_emails(svc, order, verified=(req.email,))
    log(
        "order_done",
        order_id=order["order_id"],
        emails=statuses,
        ms=round((time.perf_counter() - started) * 1000, 1),
    )
    return Result(201, response_body(order))


def replay_result(outcome: Any, key: str | None) -> Result:
    if outcome.kind == "conflict":
        log("order_rejected", reason="idempotency_key_reused")
        metric("OrderRejected", reason="idempotency_key_reused")
        raise ApiError(
            409,
            "idempotency_key_reused",
            "This Idempotency-Key was already used for a different order. Start a new checkout.",
        )
    order = outcome.order
    if order is None:
        raise service_unavailable(2, "store")
    log("order_replayed", order_id=order["order_id"])
    metric("OrderReplayed")
    return Result(201, response_body(order), {"Idempotent-Replayed": "true"})
