"""POST /orders, the use case, as named steps read top to bottom in `place_order`.

    read the request      -> 415 / 413 / 400, Idempotency-Key format 422
    validate and price    -> 422 validation_failed (the client's prices are never read)
    honeypot              -> a believable 201, nothing stored or sent
    business hours        -> 422 closed
    DNS || Turnstile      -> the recipient's DNS check and Turnstile, side by side; nothing is
                             read from DynamoDB first (a key this container saw lately is
                             likely a retry: its idempotency record is read first, and a
                             replay then costs that one read and no siteverify call);
                             both in the request's thread when the domain's DNS verdict is
                             cached (nothing to run beside Turnstile: no thread hand-off)
    judge                 -> 429 / 403 / 422 / 503, in that order, on what this container
                             knows (chalicelib/lastseen.py); a refusal of a request with a key
                             first looks for its stored answer (one read, refusals only)
    create                -> one transaction: order + idempotency record + the rate counters
                             + the delivery slot, checking that no recipient is suppressed
                             and each counter is as expected; where an expectation was wrong
                             DynamoDB hands back the item as it is and the order is decided
                             again on that (429 / 403 / 503 / 422 full, or the replay)
    send                  -> both emails concurrently, recorded in one write

AWS calls on the normal path: TransactWriteItems, 2 x SendEmail, one final write (one
UpdateItem: statuses and message ids; each email's SES tags name its order). A replay: one
call (the GetItem of its record, or the cancelled transaction on a container that never saw
its key).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
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
from chalicelib.ratelimit import Decision, Limit, check_item, decide
from chalicelib.services import Services, services
from chalicelib.shop import load_shop
from chalicelib.store import ROLES, CreateOutcome, Idempotency
from chalicelib.suppression import active, keys_for, not_suppressed

MAX_BODY_BYTES = 16 * 1024
UNVERIFIED = "dns_unverified"
CREATE_ATTEMPTS = 5  # expectations corrected by a cancellation (windows, a full day, a guessed
# next day) + a race
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
    """What this order expects of the items its create transaction checks (nothing is read
    first): each rate window as this container last saw it (chalicelib/lastseen.py), the
    delivery days it saw full, no recipient suppressed. The transaction corrects them."""

    suppressed: dict[str, bool]  # lower-cased address -> suppressed? (the transaction says)
    limits: list[Decision]  # the counters every order takes
    unverified: list[Decision]  # the counters an order with an unverified domain also takes
    bot_failures: Decision | None
    taken: dict[str, int]  # delivery day -> orders holding a slot (days seen full)
    wanted_day: str | None = None  # the day the shopper asked for (None: the earliest free)
    key: str | None = None  # the Idempotency-Key and the body's hash: a refusal first
    digest: str = ""  # looks for the key's stored answer (`replay_first`)
    replay_checked: bool = False  # the idempotency record was read already


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
        known, bot, rcpt = looked
        try:
            day = choose_day(svc, known, req.email)
            flags = judge(svc, req, known, bot, rcpt, now)
        except Replayed as replay:  # a refused retry of an order taken earlier: its answer
            return replay.result
        finally:
            settle(bot, rcpt)
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
        if isinstance(order, Result):  # a replay, or a concurrent request with this key won
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
) -> Result | tuple[Known, Future[None], Future[Any]]:
    """Start the recipient's DNS check and Turnstile, and say what the order expects (no
    I/O). A key this container saw lately (chalicelib/retries.py) is most likely a retry, so
    its idempotency record is read before Turnstile starts: a replay then neither calls
    siteverify nor waits for it. (A replay on a container that never saw its key is found by
    the create transaction, or by the refusal's look-up; the siteverify token is the
    attempt's own: its idempotency_key gives a retry of it the same answer.)"""
    seen = bool(key) and svc.recent_keys.saw(str(key))
    here = svc.recipients.dns.cached(req.email.rpartition("@")[2])  # no DNS query to wait for
    bot = None if seen or here else verify_bot(svc, req, ip, key)
    rcpt = check_recipient(svc, req.email, here)
    if seen:  # a key seen lately: its record first
        try:
            replay = stored_answer(svc, key, digest, now)
        except BaseException:
            settle(rcpt)
            raise
        if replay is not None:
            settle(rcpt)
            return replay
    if bot is None:
        bot = verify_bot(svc, req, ip, key, here)
    known = expect(svc, req, ip, now, wanted_day)
    known.key, known.digest, known.replay_checked = key, digest, seen
    return known, bot, rcpt


def stored_answer(svc: Services, key: str | None, digest: str, now: int) -> Result | None:
    """The stored answer for this key (201 replay, or 409 for another body); None if none."""
    if not key:
        return None
    record = svc.store.get(svc.store.idempotency_pk(key))
    outcome = svc.store.replay_of(record, digest, now)
    return None if outcome is None else replay_result(outcome)


def check_recipient(svc: Services, email: str, here: bool) -> Future[Any]:
    """The recipient check: in the pool, beside Turnstile; `here` and now when its domain's
    DNS verdict is cached (no I/O then: a warm container's usual case)."""
    return run(svc, here, svc.recipients.check, email)


def verify_bot(
    svc: Services, req: OrderRequest, ip: str | None, key: str | None, here: bool = False
) -> Future[None]:
    """Turnstile's siteverify: the future raises BotCheckFailed/-Unavailable. In the pool
    while a DNS check runs beside it; `here` when nothing else would (the recipient's verdict
    is cached): the request waits for siteverify either way, and a hand-off to a pool thread
    and back costs CPU."""
    return run(svc, here, svc.turnstile.verify, req.turnstile_token, ip, key)


def run(svc: Services, here: bool, fn: Callable[..., Any], *args: Any) -> Future[Any]:
    """`fn(*args)` in the pool, or `here` and now; either way a Future with its result or
    exception (read by judge)."""
    if not here:
        return svc.pool.submit(fn, *args)
    done: Future[Any] = Future()
    try:
        done.set_result(fn(*args))
    except Exception as e:  # noqa: BLE001 - the check's exception, read by judge()
        done.set_exception(e)
    return done


def settle(*checks: Future[Any] | None) -> None:
    """Wait for checks whose answers won't be used (bounded by their own timeouts), so they
    don't run on after the answer: in Lambda, a thread still running when the handler
    returns is frozen mid-call and resumes, and logs, in a later request. (The one thing
    let run on is a send still in flight at the request's deadline: it holds its lease, and
    the sweeper finishes it if the container never thaws.)"""
    for check in checks:
        if check is not None:
            check.exception()


def expect(
    svc: Services, req: OrderRequest, ip: str | None, now: int, wanted_day: str | None = None
) -> Known:
    """The order's expectations, from this container's memory alone (no I/O). A window seen
    full is full (its counts only grow until the window passes), so a refusal on it needs
    no read; a window seen with room, or never seen, is checked by the transaction."""
    s = svc.settings
    seen = svc.last_seen
    limits = [Limit("email", identity(req.email), *s.rate_limit_email)]
    if ip:
        limits.append(Limit("ip", ip, *s.rate_limit_ip))
    unverified = [
        Limit("unverified_domain", req.email.rpartition("@")[2].lower(), *s.rate_limit_unverified)
    ]
    if ip:
        unverified.append(Limit("unverified_ip", ip, *s.rate_limit_unverified))
    bot_limit = Limit("botfail_ip", ip, *s.rate_limit_bot_ip) if ip else None

    def guess(lim: Limit) -> Decision:
        return decide(lim, seen.get(lim.pk, now), now, s.rate_limit_table)

    taken: dict[str, int] = {}
    if s.slots_cache_seconds > 0:
        for d in choosable_days(clock.now(), load_shop().delivery_rules()):
            item = seen.get(slots.slot_pk(d), now, s.slots_cache_seconds)
            if item is not None:
                taken[d.isoformat()] = int(item.get("n", 0))
    return Known(
        suppressed={a.lower(): False for a in (req.email, *s.merchant_emails)},
        limits=[guess(lim) for lim in limits],
        unverified=[guess(lim) for lim in unverified],
        bot_failures=guess(bot_limit) if bot_limit else None,
        taken=taken,
        wanted_day=wanted_day,
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
        raise reject(
            errors.delivery_day_unavailable(e.reason, e.message, days_with_room(svc, now, {}))
        ) from None
    return str(value)


def days_with_room(svc: Services, now: datetime, known_full: dict[str, int]) -> list[str]:
    """The choosable days that still have room, read from DynamoDB (one BatchGetItem, on a
    refusal only; what this container knows if the read fails)."""
    rules = load_shop().delivery_rules()
    days = choosable_days(now, rules)
    try:
        taken = slots.read_taken(svc.dynamodb, svc.settings.orders_table, days)
    except StoreUnavailable:
        taken = dict(known_full)
    return [d.isoformat() for d in next_available(now, rules, taken)]


def choose_day(svc: Services, known: Known, email: str) -> str:
    """The order's delivery day: the requested one, else the earliest day not seen full (the
    transaction takes its slot, or says it is full). 422 with the days that have room when
    every day was seen full (read again first: a cancelled order gives its slot back)."""
    if known.wanted_day is not None:
        return known.wanted_day
    rules = load_shop().delivery_rules()
    free = [d.isoformat() for d in next_available(clock.now(), rules, known.taken)]
    if not free:
        free = days_with_room(svc, clock.now(), known.taken)
    if free:
        return free[0]
    replay_first(svc, known, int(clock.now().timestamp()))
    raise day_full(free, email)


def day_full(free: list[str], email: str) -> ApiError:
    """422 `delivery_day_unavailable` (full), offering the days in `free` (logged)."""
    return reject(
        errors.delivery_day_unavailable("full", DeliveryDayUnavailable("full").message, free),
        email=mask_email(email),
    )


def judge(
    svc: Services,
    req: OrderRequest,
    known: Known,
    bot: Future[None],
    rcpt: Future[Any],
    now: int,
) -> list[str]:
    """Every verdict this container can give before writing, in the order the client should
    hear them; returns the order's flags. (The transaction may still refuse on what another
    container counted, or a suppression.) Before any refusal, `replay_first`: a retry of an
    order taken earlier gets its stored answer, and its failed bot check is not counted."""
    email = mask_email(req.email)
    settle(rcpt)  # both waited for first: nothing runs on after the answer
    bot_error = bot.exception()
    if known.bot_failures is not None and not known.bot_failures.allowed:
        replay_first(svc, known, now)
        raise reject(
            errors.rate_limited(known.bot_failures.retry_after, "bot_failures"), email=email
        )
    if bot_error is not None:
        replay_first(svc, known, now)
        count_bot_failure(svc, known, now)
        if known.bot_failures is not None and not known.bot_failures.allowed:
            raise reject(
                errors.rate_limited(known.bot_failures.retry_after, "bot_failures"), email=email
            )
    guard.bot_verdict(bot_error, req.email)
    for decision in known.limits:
        if not decision.allowed:
            replay_first(svc, known, now)
            raise reject(
                errors.rate_limited(decision.retry_after, decision.limit.scope), email=email
            )
    rcpt_error = rcpt.exception()
    if rcpt_error is not None:
        replay_first(svc, known, now)
        if undeliverable(rcpt_error) and suppressed_now(svc, req.email, now):
            raise reject(errors.suppressed_address(), email=email)  # the clearer answer
    flags = guard.recipient_verdict(
        rcpt.result() if rcpt_error is None else None, rcpt_error, req.email
    )
    if UNVERIFIED in flags:
        for decision in known.unverified:
            if not decision.allowed:
                replay_first(svc, known, now)
                unverified_cap(decision, email)
    return flags


class Replayed(Exception):
    """A refused request turned out to be a retry of an order taken earlier."""

    def __init__(self, result: Result) -> None:
        super().__init__("replayed")
        self.result = result


def replay_first(svc: Services, known: Known, now: int) -> None:
    """Before refusing a request with a key: raise Replayed with its stored answer, if it
    has one (one read, on refusals only, and once)."""
    if known.replay_checked or not known.key:
        return
    known.replay_checked = True
    stored = stored_answer(svc, known.key, known.digest, now)
    if stored is not None:
        raise Replayed(stored)


def undeliverable(error: BaseException) -> bool:
    from chalicelib.recipients import Undeliverable

    return isinstance(error, Undeliverable)


def suppressed_now(svc: Services, email: str, now: int) -> bool:
    """One read of the address's suppression (a refusal's wording only: False if it fails)."""
    try:
        return bool(svc.suppression.is_suppressed(email, now))
    except StoreUnavailable:
        return False


def unverified_cap(decision: Decision, email: str) -> None:
    """503: a throwaway domain must not become a bounce cannon."""
    raise reject(
        errors.service_unavailable(min(decision.retry_after, 3600), "dns"),
        f"dns_unverified_cap_{decision.limit.scope}",
        email=email,
    )


def count_bot_failure(svc: Services, known: Known, now: int) -> None:
    """A failed bot check counts against the caller's IP (never against an email address:
    nobody can spend another person's allowance). `known.bot_failures` becomes the decision
    that held (a window another container filled refuses with 429)."""
    from chalicelib.ratelimit import count_checked

    if known.bot_failures is None:
        return
    try:
        decision, item = count_checked(svc.dynamodb, known.bot_failures, now)
    except StoreUnavailable as e:
        log("bot_failure_uncounted", "warning", detail=str(e)[:200])
        return
    svc.last_seen.put(decision.limit.pk, item, now)
    known.bot_failures = decision


@dataclass
class Attempt:
    """The create transaction's extra items, and what each one is."""

    items: list[dict[str, Any]]
    limits: int  # items[:limits] are the counters (known.limits, then the unverified ones)
    bot: int | None  # the IP's failed-bot-check window (a check, nothing counted)
    slot: int | None  # the delivery day's slot
    suppression: dict[int, str]  # index -> the suppression pk it checks


def attempt_items(
    svc: Services,
    limits: list[Decision],
    bot: Decision | None,
    day: str | None,
    addresses: list[str],
    now: int,
) -> Attempt:
    s = svc.settings
    items: list[dict[str, Any]] = [{"Update": d.update} for d in limits]
    bot_at = slot_at = None
    if bot is not None:
        bot_at = len(items)
        items.append(check_item(bot))
    if day:
        slot_at = len(items)
        items.append(slots.take(s.orders_table, day, load_shop().delivery_rules().capacity_per_day))
    sup: dict[int, str] = {}
    for pk in dict.fromkeys(pk for a in addresses for pk in keys_for(a)):  # one check per item
        sup[len(items)] = pk
        items.append(not_suppressed(s.suppression_table, pk, now))
    return Attempt(items, len(limits), bot_at, slot_at, sup)


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
    """One transaction: the order, its idempotency record, the rate counters and the slot,
    checking every recipient's suppression. Returns the new order, or the replay when the
    key's record is there already (a retry, or a concurrent request that wrote first)."""
    s = svc.settings
    seen = svc.last_seen
    email = mask_email(req.email)
    idem = Idempotency(key, digest) if key else None
    limits = list(known.limits) + (list(known.unverified) if UNVERIFIED in flags else [])
    addresses = [req.email, *(a for a in s.merchant_emails if not known.suppressed.get(a.lower()))]
    first_day = day
    for _ in range(CREATE_ATTEMPTS):
        build = order_builder(
            req, key, digest, now, flags, s.outbox_lease_seconds, s.dns_recheck_seconds, day
        )
        plan = attempt_items(svc, limits, known.bot_failures, day, addresses, now)
        outcome = svc.store.create(build, ids.new_order_id, idem, now, response_body, plan.items)
        if outcome.kind == "created" and outcome.order is not None:
            for d in limits:
                seen.put(d.limit.pk, d.after, now)
            return outcome.order
        if outcome.kind in ("replay", "conflict"):
            return replay_result(outcome)
        if outcome.kind != "refused" or not outcome.refused:
            raise StoreUnavailable(f"unexpected create outcome {outcome.kind}")
        failed = outcome.refused
        known.replay_checked = True  # the key's record passed its condition: no replay
        # what the expectations should have been: decide again on the items as they are
        for i in (i for i in failed if i < plan.limits):
            item = failed[i] or None
            seen.put(limits[i].limit.pk, item, now)
            limits[i] = decide(limits[i].limit, item, now, s.rate_limit_table)
        if plan.bot is not None and plan.bot in failed and known.bot_failures is not None:
            item = failed[plan.bot] or None
            seen.put(known.bot_failures.limit.pk, item, now)
            known.bot_failures = decide(known.bot_failures.limit, item, now, s.rate_limit_table)
        suppressed = {
            plan.suppression[i] for i in failed if i in plan.suppression and active(failed[i], now)
        }
        # the verdicts, in judge's order
        if known.bot_failures is not None and not known.bot_failures.allowed:
            raise reject(
                errors.rate_limited(known.bot_failures.retry_after, "bot_failures"), email=email
            )
        for decision in limits[: len(known.limits)]:
            if not decision.allowed:
                raise reject(
                    errors.rate_limited(decision.retry_after, decision.limit.scope), email=email
                )
        if suppressed & set(keys_for(req.email)):
            known.suppressed[req.email.lower()] = True
            raise reject(errors.suppressed_address(), email=email)
        for decision in limits[len(known.limits) :]:
            if not decision.allowed:
                unverified_cap(decision, email)
        for address in addresses[1:]:  # a suppressed merchant address: the order goes on
            if suppressed & set(keys_for(address)):
                known.suppressed[address.lower()] = True
        addresses = [addresses[0], *(a for a in addresses[1:] if not known.suppressed[a.lower()])]
        if plan.slot is not None and plan.slot in failed and day:
            seen.put(slots.slot_pk(day), failed[plan.slot] or None, now)
            known.taken[day] = int(failed[plan.slot].get("n", 0))
            day = day_after_full(svc, known, req.email, guessed=day != first_day)
    raise StoreUnavailable("expectations kept moving")


def day_after_full(svc: Services, known: Known, email: str, guessed: bool) -> str:
    """The day to try once the transaction found the order's day full. A day the shopper
    asked for: 422 offering the days with room (read). Else the earliest day not seen full,
    unread (the next transaction's slot check is the read), when the full day was the first
    choice; the counts are read when that guess was full too, or no day is left unseen."""
    if known.wanted_day is None and not guessed:
        return choose_day(svc, known, email)  # the earliest not seen full (read if none)
    free = days_with_room(svc, clock.now(), known.taken)  # read, on this path only
    if known.wanted_day is not None or not free:  # the chosen day, or every day, full
        raise day_full(free, email)
    return free[0]  # the earliest day with room, as read


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
