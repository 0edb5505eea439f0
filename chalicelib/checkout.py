"""POST /orders, the use case, as named steps read top to bottom in `place_order`.

    read the request      -> 415 / 413 / 400, Idempotency-Key format 422
    validate and price    -> 422 validation_failed (the client's prices are never read)
    honeypot              -> a believable 201, nothing stored or sent
    business hours        -> 422 closed
    look up || DNS        -> one BatchGetItem (idempotency record, suppression of every
       || Turnstile          recipient, rate-limit windows) alongside the recipient's DNS
                             and, when this container hasn't seen the key lately, Turnstile
    replay                -> the stored response (201) or 409 for a different body
    Turnstile             -> started only now for a key seen lately (likely a retry: a
                             replay then costs one read, no siteverify call)
    judge                 -> 429 / 403 / 422 / 503, in that order
    create                -> one transaction: order + idempotency record + the counters
                             (counted only now: after the bot check, and only if written)
    send                  -> both emails concurrently, recorded in one write

AWS calls on the normal path: BatchGetItem, TransactWriteItems, 2 x SendEmail, one final
write (one UpdateItem: statuses and message ids; each email's SES tags name its order).
A replay: one BatchGetItem.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from chalicelib import clock, errors, guard, hours, ids, slots
from chalicelib.catalog import load_catalog
from chalicelib.ddb import StoreUnavailable
from chalicelib.delivery import DeliveryDayUnavailable, check_day, choosable_days, next_available
from chalicelib.errors import ApiError, reject
from chalicelib.obs import log, mask_email, mask_phone, metric
from chalicelib.orders import IDEMPOTENCY_KEY_RE, OrderRequest, parse_order, request_hash
from chalicelib.ratelimit import Decision, Limit, decide
from chalicelib.services import Services, services
from chalicelib.shop import load_shop
from chalicelib.store import ROLES, CreateOutcome, Idempotency
from chalicelib.suppression import active, keys_for

MAX_BODY_BYTES = 16 * 1024
UNVERIFIED = "dns_unverified"
CREATE_ATTEMPTS = 3  # a concurrent request for the same address may move a counter first
DEADLINE_MARGIN_SECONDS = 2.0  # kept back from Lambda's remaining time for the answer
MIN_CREATE_SECONDS = 1.0  # time the create transaction and the answer need at least


@dataclass
class IncomingOrder:
    raw_body: bytes
    content_type: str
    idempotency_key: str | None
    source_ip: str | None
    headers: dict[str, str] = field(default_factory=dict)
    trusted_edge: bool = False  # the CloudFront origin-verify header matched
    remaining_ms: float | None = None  # what is left of the Lambda invocation


@dataclass
class Result:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Known:
    """What the one BatchGetItem found for this request."""

    idempotency: dict[str, Any] | None
    suppressed: dict[str, bool]  # lower-cased address -> suppressed now?
    limits: list[Decision]  # the counters every order takes
    unverified: list[Decision]  # the counters an order with an unverified domain also takes
    bot_failures: Decision | None
    taken: dict[str, int]  # delivery day -> orders holding a slot (the choosable days)


# --- the use case ----------------------------------------------------------------------------
def place_order(incoming: IncomingOrder, svc: Services | None = None) -> Result:
    """POST /orders. Raises ApiError for every refusal."""
    svc = svc or services()
    started = time.perf_counter()
    deadline = request_deadline(svc, incoming.remaining_ms, started)
    body, key = read_request(incoming)
    req = validate(body, svc)
    if req.honeypot:
        return Result(201, guard.honeypot_response(req))
    now_dt = clock.now()
    now = int(now_dt.timestamp())
    check_hours(svc, now_dt)
    wanted_day = check_delivery_day(body, now_dt, svc)
    ip = guard.client_ip(incoming.headers, incoming.source_ip, incoming.trusted_edge)
    digest = request_hash(submission_fields(body))
    try:
        looked = look_up_and_verify(svc, req, key, ip, now, digest, wanted_day)
        if isinstance(looked, Result):  # a replay: the stored response
            return looked
        known, day, bot, rcpt = looked
        flags = judge(svc, req, known, bot, rcpt)
        if deadline - time.perf_counter() < MIN_CREATE_SECONDS:  # never store what we can't answer
            log(
                "order_failed",
                "error",
                reason="deadline",
                ms=round((time.perf_counter() - started) * 1000),
            )
            metric("OrderFailed", reason="deadline")
            raise errors.service_unavailable(5, "deadline")
        order = create_order(svc, req, key, digest, now, flags, known, day)
        if isinstance(order, Result):  # a concurrent request with this key won the race
            return order
    except StoreUnavailable as e:
        log("order_failed", "error", reason="store_unavailable", detail=str(e)[:200])
        metric("OrderFailed", reason="store_unavailable")
        raise errors.service_unavailable(5, "store") from None
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
    statuses = send(svc, order, known, deadline)
    log(
        "order_done",
        order_id=order["order_id"],
        emails=statuses,
        ms=round((time.perf_counter() - started) * 1000, 1),
    )
    return Result(201, response_body(order))


# --- the steps -------------------------------------------------------------------------------
def read_request(incoming: IncomingOrder) -> tuple[Any, str | None]:
    """Media type, size, JSON and the Idempotency-Key header, with their error codes."""
    try:
        return parse_body(incoming.raw_body, incoming.content_type), check_idempotency_key(
            incoming.idempotency_key
        )
    except ApiError as e:
        raise reject(e, fields=sorted(e.fields)) from None


def validate(body: Any, svc: Services) -> OrderRequest:
    s = svc.settings
    try:
        return parse_order(
            body,
            load_catalog(),
            min_items=s.min_items,
            max_line_qty=s.max_line_qty,
            test_environment=s.email_test_environment,
            shop=load_shop(),
        )
    except ApiError as e:
        raise reject(e, fields=sorted(e.fields)) from None


def check_hours(svc: Services, now: datetime) -> None:
    s = svc.settings
    try:
        open_now, next_open = hours.is_open(now, s.business_hours, s.shop_timezone)
    except (ValueError, KeyError):
        log("hours_misconfigured", "error", spec=s.business_hours)
        return  # a typo in a setting must not close the shop
    if not open_now:
        opens = next_open.isoformat() if next_open else None
        raise reject(errors.closed(hours.closed_message(next_open), opens))


def look_up_and_verify(
    svc: Services,
    req: OrderRequest,
    key: str | None,
    ip: str | None,
    now: int,
    digest: str,
    wanted_day: str | None,
) -> Result | tuple[Known, str, Future[None], Future[Any]]:
    """Read everything this order needs from DynamoDB in one BatchGetItem while the
    recipient's DNS check runs, and Turnstile too unless this container saw the key lately
    (chalicelib/retries.py). A key seen again is most likely a retry, so Turnstile waits for
    the read: a replay then neither calls siteverify nor waits for it. A new key doesn't wait
    the read's round trip; if it turns out to be a replay or a full day, the siteverify
    answer is simply not used (the token is the attempt's own: siteverify's idempotency_key
    gives a retry of it the same answer, and the storefront takes a new token for a new
    body)."""
    rcpt = svc.pool.submit(svc.recipients.check, req.email)
    bot = None if key and svc.recent_keys.saw(key) else verify_bot(svc, req, ip, key)
    try:
        known = read_known(svc, req, key, ip, now)
        replay = replayed(svc, known, key, digest, now)
        day = choose_day(wanted_day, known, req.email) if replay is None else ""
    except BaseException:
        settle(bot, rcpt)
        raise
    if replay is not None:
        settle(bot, rcpt)
        return replay
    return known, day, bot or verify_bot(svc, req, ip, key), rcpt


def verify_bot(svc: Services, req: OrderRequest, ip: str | None, key: str | None) -> Future[None]:
    """Turnstile's siteverify, in the pool: the future raises BotCheckFailed/-Unavailable."""
    return svc.pool.submit(svc.turnstile.verify, req.turnstile_token, ip, key)


def settle(*checks: Future[Any] | None) -> None:
    """Wait for checks whose answers won't be used (bounded by their own timeouts), so they
    don't run on after the answer: in Lambda, a thread still running when the handler
    returns is frozen mid-call and resumes, and logs, in a later request. (The one thing
    let run on is a send still in flight at the request's deadline: it holds its lease, and
    the sweeper finishes it if the container never thaws.)"""
    for check in checks:
        if check is not None:
            check.exception()


def read_known(
    svc: Services, req: OrderRequest, key: str | None, ip: str | None, now: int
) -> Known:
    from chalicelib import ddb

    s = svc.settings
    limits = [Limit("email", identity(req.email), *s.rate_limit_email)]
    if ip:
        limits.append(Limit("ip", ip, *s.rate_limit_ip))
    unverified = [
        Limit("unverified_domain", req.email.rpartition("@")[2].lower(), *s.rate_limit_unverified)
    ]
    if ip:
        unverified.append(Limit("unverified_ip", ip, *s.rate_limit_unverified))
    bot_limit = Limit("botfail_ip", ip, *s.rate_limit_bot_ip) if ip else None
    addresses = {a.lower(): keys_for(a) for a in (req.email, *s.merchant_emails)}
    days = choosable_days(clock.now(), load_shop().delivery_rules())
    wanted = {
        s.orders_table: ([svc.store.idempotency_pk(key)] if key else []) + slots.keys(days),
        s.suppression_table: [pk for pks in addresses.values() for pk in pks],
        s.rate_limit_table: [lim.pk for lim in (*limits, *unverified)]
        + ([bot_limit.pk] if bot_limit else []),
    }
    found = ddb.batch_get(svc.dynamodb, wanted)
    suppressed = {
        address: any(active(found.get((s.suppression_table, pk)), now) is not None for pk in pks)
        for address, pks in addresses.items()
    }
    rate_items = {pk: item for (table, pk), item in found.items() if table == s.rate_limit_table}
    return Known(
        idempotency=found.get((s.orders_table, svc.store.idempotency_pk(key))) if key else None,
        suppressed=suppressed,
        limits=[decide(lim, rate_items.get(lim.pk), now, s.rate_limit_table) for lim in limits],
        unverified=[
            decide(lim, rate_items.get(lim.pk), now, s.rate_limit_table) for lim in unverified
        ],
        bot_failures=(
            decide(bot_limit, rate_items.get(bot_limit.pk), now, s.rate_limit_table)
            if bot_limit
            else None
        ),
        taken=slots.taken_from(found, s.orders_table),
    )


def check_delivery_day(body: Any, now: datetime, svc: Services) -> str | None:
    """The requested `delivery_day` if the shop's rules allow it (capacity aside); None when
    the body names none (the earliest day with room is chosen). 422 otherwise, offering the
    days that still have room (one read, on this refusal only)."""
    value = body.get("delivery_day") if isinstance(body, dict) else None
    if value is None or value == "":
        return None
    rules = load_shop().delivery_rules()
    try:
        check_day(value, now, rules)
    except DeliveryDayUnavailable as e:
        try:
            days = choosable_days(now, rules)
            taken = slots.read_taken(svc.dynamodb, svc.settings.orders_table, days)
        except StoreUnavailable:
            taken = {}
        offer = [d.isoformat() for d in next_available(now, rules, taken)]
        raise reject(errors.delivery_day_unavailable(e.reason, e.message, offer)) from None
    return str(value)


def choose_day(wanted: str | None, known: Known, email: str) -> str:
    """The order's delivery day: the requested one if it has room, else (none requested) the
    earliest day with room; 422 with the days that have room otherwise."""
    rules = load_shop().delivery_rules()
    free = [d.isoformat() for d in next_available(clock.now(), rules, known.taken)]
    if wanted is None and free:
        return free[0]
    if wanted is not None and wanted in free:
        return wanted
    raise reject(
        errors.delivery_day_unavailable("full", DeliveryDayUnavailable("full").message, free),
        email=mask_email(email),
    )


def replayed(svc: Services, known: Known, key: str | None, digest: str, now: int) -> Result | None:
    """Same key + same body: the stored response. Same key + another body: 409."""
    if not key:
        return None
    outcome = svc.store.replay_of(known.idempotency, digest, now)
    return None if outcome is None else replay_result(outcome)


def judge(
    svc: Services, req: OrderRequest, known: Known, bot: Future[None], rcpt: Future[Any]
) -> list[str]:
    """Every verdict, in the order the client should hear them; returns the order's flags."""
    email = mask_email(req.email)
    settle(rcpt)  # both waited for first: nothing runs on after the answer
    bot_error = bot.exception()
    if known.bot_failures is not None and not known.bot_failures.allowed:
        raise reject(
            errors.rate_limited(known.bot_failures.retry_after, "bot_failures"), email=email
        )
    if bot_error is not None:
        count_bot_failure(svc, known)
    guard.bot_verdict(bot_error, req.email)
    for decision in known.limits:
        if not decision.allowed:
            raise reject(
                errors.rate_limited(decision.retry_after, decision.limit.scope), email=email
            )
    if known.suppressed.get(req.email.lower()):
        raise reject(errors.suppressed_address(), email=email)
    flags = guard.recipient_verdict(
        rcpt.result() if rcpt.exception() is None else None, rcpt.exception(), req.email
    )
    if UNVERIFIED in flags:
        for decision in known.unverified:
            if not decision.allowed:  # a throwaway domain must not become a bounce cannon
                raise reject(
                    errors.service_unavailable(min(decision.retry_after, 3600), "dns"),
                    f"dns_unverified_cap_{decision.limit.scope}",
                    email=email,
                )
    return flags


def count_bot_failure(svc: Services, known: Known) -> None:
    """A failed bot check counts against the caller's IP (never against an email address:
    nobody can spend another person's allowance)."""
    from chalicelib.ratelimit import count_now

    if known.bot_failures is None:
        return
    try:
        count_now(svc.dynamodb, known.bot_failures)
    except StoreUnavailable as e:
        log("bot_failure_uncounted", "warning", detail=str(e)[:200])


def create_order(
    svc: Services,
    req: OrderRequest,
    key: str | None,
    digest: str,
    now: int,
    flags: list[str],
    known: Known,
    day: str | None = None,
) -> dict[str, Any] | Result:
    """One transaction: the order, its idempotency record and the rate counters. Returns
    the new order, or the replay when a concurrent request with the same key wrote first."""
    s = svc.settings
    idem = Idempotency(key, digest) if key else None
    build = order_builder(
        req, key, digest, now, flags, s.outbox_lease_seconds, s.dns_recheck_seconds, day
    )
    limits = list(known.limits) + (list(known.unverified) if UNVERIFIED in flags else [])
    rules = load_shop().delivery_rules()
    slot = [slots.take(s.orders_table, day, rules.capacity_per_day)] if day else []
    for _ in range(CREATE_ATTEMPTS):
        extra = [{"Update": d.update} for d in limits] + slot
        outcome = svc.store.create(build, ids.new_order_id, idem, now, response_body, extra)
        if outcome.kind == "created" and outcome.order is not None:
            return outcome.order
        if outcome.kind in ("replay", "conflict"):
            return replay_result(outcome)
        if outcome.kind != "refused" or outcome.refused is None:
            raise StoreUnavailable(f"unexpected create outcome {outcome.kind}")
        if outcome.refused == len(limits):  # the day's last slot went to another order
            taken = {**known.taken, str(day): rules.capacity_per_day}
            free = [d.isoformat() for d in next_available(clock.now(), rules, taken)]
            raise reject(
                errors.delivery_day_unavailable(
                    "full", DeliveryDayUnavailable("full").message, free
                ),
                email=mask_email(req.email),
            )
        # a concurrent order moved this counter first: decide again on what it is now
        moved = limits[outcome.refused]
        again = decide(moved.limit, outcome.current or None, now, s.rate_limit_table)
        if not again.allowed:
            raise reject(
                errors.rate_limited(again.retry_after, again.limit.scope),
                email=mask_email(req.email),
            )
        limits[outcome.refused] = again
    raise StoreUnavailable("rate counters kept moving")


def request_deadline(svc: Services, remaining_ms: float | None, started: float) -> float:
    """perf_counter() time by which the answer must be on its way: the request budget, or
    what Lambda has left minus a margin, whichever comes first."""
    budget = svc.settings.request_budget_seconds
    if remaining_ms is not None:
        budget = min(budget, remaining_ms / 1000 - DEADLINE_MARGIN_SECONDS)
    return started + max(0.0, budget)


def send(
    svc: Services, order: dict[str, Any], known: Known, deadline: float | None = None
) -> dict[str, str]:
    """Both emails; a receipt to an unverified domain waits in the outbox (`held`) until the
    sweeper sees the domain answer (or drops it after DNS_HOLD_HOURS)."""
    from chalicelib.outbox import send_emails

    roles = tuple(r for r in ROLES if order["emails"][r]["status"] == "sending")
    return send_emails(svc, order, roles, known.suppressed, deadline)


# --- helpers ---------------------------------------------------------------------------------
def local_day(epoch: int) -> str:
    """The shop's calendar date of an instant (YYYY-MM-DD)."""
    from zoneinfo import ZoneInfo

    return datetime.fromtimestamp(epoch, ZoneInfo(load_shop().timezone)).date().isoformat()


def identity(email: str) -> str:
    """The one key of a mailbox for limits (chalicelib/identity.py: IDNA, case, +tag)."""
    from chalicelib.identity import canonical_or_lower

    return canonical_or_lower(email)


def parse_body(raw: bytes, content_type: str) -> Any:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media != "application/json":
        raise errors.unsupported_media_type()
    if len(raw) > MAX_BODY_BYTES:
        raise errors.payload_too_large(MAX_BODY_BYTES)
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise errors.invalid_json() from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def check_idempotency_key(key: str | None) -> str | None:
    if key is None or key == "":
        return None
    if not IDEMPOTENCY_KEY_RE.match(key):
        raise errors.validation_failed(
            {"Idempotency-Key": "Use 8 to 64 characters: letters, digits, '-' or '_'."},
            "The Idempotency-Key header is malformed.",
        )
    return key


def submission_fields(body: dict[str, Any]) -> dict[str, Any]:
    """What makes two requests "the same order": everything but the one-time bot-check token
    (a retry may carry a fresh one) and the honeypot."""
    return {k: v for k, v in body.items() if k not in ("turnstile_token", "website")}


def order_builder(
    req: OrderRequest,
    key: str | None,
    digest: str,
    now: int,
    flags: list[str],
    lease: int,
    recheck: int = 300,
    day: str | None = None,
) -> Any:
    def build(order_id: str) -> dict[str, Any]:
        order: dict[str, Any] = {
            "kind": "order",
            "order_id": order_id,
            "created_at": now,
            "status": "accepted",
            "history": [{"status": "accepted", "at": now}],
            # the back office's indexes: the delivery (or order) day and the mailbox
            "day": day or local_day(now),
            "email_key": identity(req.email),
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
            # both emails are claimed by this request (lease) so a sweeper can't race it;
            # a receipt to an unverified domain is held for the sweeper's DNS recheck
            "emails": {
                role: (
                    {"status": "held", "attempts": 0, "check_at": now + recheck}
                    if role == "customer" and UNVERIFIED in flags
                    else {"status": "sending", "attempts": 0, "lease_until": now + lease}
                )
                for role in ROLES
            },
            "outbox": "pending",
            "due_at": now + min(lease, recheck) if UNVERIFIED in flags else now + lease,
        }
        if key:
            order["idempotency_key"] = key
        if day:
            order["delivery_day"] = day
        return order

    return build


def response_body(order: dict[str, Any]) -> dict[str, Any]:
    return {
        "order_id": order["order_id"],
        "status": "accepted",
        "items": order["items"],
        "delivery_day": order.get("delivery_day"),
        "subtotal_cents": order.get("subtotal_cents", order["total_cents"]),
        "delivery_fee_cents": order.get("delivery_fee_cents", 0),
        "total_cents": order["total_cents"],
        "currency": order["currency"],
    }


def replay_result(outcome: CreateOutcome) -> Result:
    if outcome.kind == "conflict":
        raise reject(errors.idempotency_key_reused())
    body = outcome.response or (response_body(outcome.order) if outcome.order else None)
    if body is None:
        raise errors.service_unavailable(2, "store")
    log("order_replayed", order_id=body.get("order_id"))
    metric("OrderReplayed")
    return Result(201, body, {"Idempotent-Replayed": "true"})
