"""The back office's use cases (issue 15): orders, actions, CSV, email health, erasure.

Every read of orders is a Query on a GSI of the orders table (`by_day`, `by_status`,
`by_email`; HASH that attribute, RANGE `created_at`), never a Scan. Lists are newest first and
paginated with an opaque cursor: the LastEvaluatedKey, signed (tokens.py, purpose
`admin-cursor`) and bound to the query it came from, so a cursor can't be forged or replayed
on another list. Every action writes one `admin_audit` line (adminauth.audit).
docs/backoffice.md has the decisions.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from chalicelib import csvexport, errors, tokens
from chalicelib.adminauth import Session, audit
from chalicelib.errors import ApiError
from chalicelib.obs import log, mask_email

if TYPE_CHECKING:
    from chalicelib.services import Services

CURSOR_PURPOSE = "admin-cursor"
CURSOR_TTL = 6 * 3600
DAY_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
DEFAULT_LIMIT = 25
MAX_LIMIT = 100
CSV_MAX_DAYS = 92  # one quarter per export
CSV_BUDGET = 4_500_000  # JSON-escaped bytes per CSV part (Lambda's response limit: 6 MB)
CSV_QUERY_PAGE = 500
HEALTH_WINDOWS = (7, 30)
BOUNCE_THRESHOLD = 0.05  # SES puts an account under review at a 5 % bounce rate
COMPLAINT_THRESHOLD = 0.001  # ... and at a 0.1 % complaint rate
SENT_STATUSES = frozenset({"sent", "delivered", "bounced", "complained"})
INTERNAL = frozenset(
    {"pk", "kind", "write_id", "request_hash", "outbox", "due_at", "email_key", "idempotency_key"}
)
MAX_JSON_BODY = 4096


def not_found(what: str = "order") -> ApiError:
    return ApiError(404, "not_found", f"There is no such {what}.")


def invalid_transition(message: str, status: str) -> ApiError:
    return ApiError(409, "invalid_transition", message, extra={"status": status})


def parse_json(body: bytes, content_type: str) -> dict[str, Any]:
    if content_type.split(";", 1)[0].strip().lower() != "application/json":
        raise errors.unsupported_media_type()
    if len(body) > MAX_JSON_BODY:
        raise errors.payload_too_large(MAX_JSON_BODY)
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise errors.invalid_json() from None
    if not isinstance(data, dict):
        raise errors.validation_failed({"": "Send a JSON object."})
    return data


def parse_day(value: Any, name: str) -> date:
    if not isinstance(value, str) or not DAY_RE.match(value):
        raise errors.validation_failed({name: "Use a date like 2026-03-01."})
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise errors.validation_failed({name: "This date does not exist."}) from None


def parse_limit(value: Any) -> int:
    if value in (None, ""):
        return DEFAULT_LIMIT
    if not isinstance(value, str) or not value.isdigit() or not 1 <= int(value) <= MAX_LIMIT:
        raise errors.validation_failed({"limit": f"Use a number from 1 to {MAX_LIMIT}."})
    return int(value)


def email_statuses(order: dict[str, Any]) -> dict[str, str]:
    emails = order.get("emails") or {}
    return {role: str(st.get("status", "")) for role, st in emails.items() if isinstance(st, dict)}


def summary(order: dict[str, Any]) -> dict[str, Any]:
    customer = order.get("customer") or {}
    return {
        "order_id": order.get("order_id"),
        "created_at": order.get("created_at"),
        "day": order.get("day", ""),
        "status": order.get("status", ""),
        "name": customer.get("name", ""),
        "email": customer.get("email", ""),
        "total_cents": order.get("total_cents", 0),
        "currency": order.get("currency", ""),
        "items": sum(int(x.get("qty", 0)) for x in order.get("items") or []),
        "emails": email_statuses(order),
        "flags": list(order.get("flags") or []),
    }


def suppression_id(email: str) -> str:
    return hashlib.sha256(str(email).encode()).hexdigest()[:24]


class Admin:
    def __init__(self, svc: Services) -> None:
        self.svc = svc
        self.tz = svc.settings.shop_timezone

    @property
    def secret(self) -> bytes:
        return self.svc.admin_secret

    def today(self, now: int) -> date:
        return datetime.fromtimestamp(now, ZoneInfo(self.tz)).date()

    # --- cursors --------------------------------------------------------------------------
    def _cursor(self, query: str, key: dict[str, Any] | None, now: int, **more: Any) -> str | None:
        if not key:
            return None
        return tokens.sign(self.secret, CURSOR_PURPOSE, {"q": query, "k": key, **more},
                           now + CURSOR_TTL)  # fmt: skip

    def _uncursor(self, raw: Any, query: str, now: int) -> dict[str, Any] | None:
        if raw in (None, ""):
            return None
        try:
            claims = tokens.verify(self.secret, CURSOR_PURPOSE, raw, now)
        except tokens.TokenInvalid:
            raise errors.validation_failed({"cursor": "This cursor is not valid."}) from None
        if claims.get("q") != query or not isinstance(claims.get("k"), dict):
            raise errors.validation_failed({"cursor": "This cursor belongs to another list."})
        return claims

    # --- GET /admin/orders ----------------------------------------------------------------
    def list_orders(self, params: dict[str, str], now: int) -> dict[str, Any]:
        """`?day=YYYY-MM-DD` (default today) or `?status=...`, or `?q=<order id | email>`;
        `limit`, `cursor`."""
        from chalicelib.identity import canonical_or_lower
        from chalicelib.ids import is_order_id
        from chalicelib.lifecycle import STATUSES

        known = {"day", "status", "q", "limit", "cursor"}
        unknown = sorted(set(params) - known)
        if unknown:
            raise errors.validation_failed({k: "Unknown parameter." for k in unknown})
        limit = parse_limit(params.get("limit"))
        q = (params.get("q") or "").strip()
        if q:
            if is_order_id(q.upper()):
                order = self.svc.store.get_order(q.upper())
                found = [summary(order)] if order and order.get("kind") == "order" else []
                return {"orders": found, "cursor": None, "query": {"order_id": q.upper()}}
            if "@" in q and len(q) <= 254:
                index, key, value = "by_email", "email_key", canonical_or_lower(q)
            else:
                raise errors.validation_failed({"q": "Enter an order number or an email address."})
        elif params.get("status"):
            if params["status"] not in STATUSES:
                raise errors.validation_failed({"status": f"One of {', '.join(STATUSES)}."})
            index, key, value = "by_status", "status", params["status"]
        else:
            day = params.get("day") or self.today(now).isoformat()
            index, key, value = "by_day", "day", parse_day(day, "day").isoformat()
        query = f"{index}:{value}"
        claims = self._uncursor(params.get("cursor"), query, now)
        items, last = self.svc.store.query_index(
            index, key, value, limit=limit, start=claims["k"] if claims else None
        )
        return {
            "orders": [summary(o) for o in items],
            "cursor": self._cursor(query, last, now),
            "query": {key: value} if index != "by_email" else {"email": q},
        }

    # --- GET /admin/orders/{id} -----------------------------------------------------------
    def detail(self, order_id: str) -> dict[str, Any]:
        from chalicelib.ids import is_order_id

        oid = order_id.strip().upper()
        if not is_order_id(oid):
            raise not_found()
        order = self.svc.store.get_order(oid)
        if order is None or order.get("kind") != "order":
            raise not_found()
        return self._view(order)

    def _view(self, order: dict[str, Any]) -> dict[str, Any]:
        from chalicelib.lifecycle import next_actions

        view = {k: v for k, v in order.items() if k not in INTERNAL}
        view["emails"] = {
            role: {k: v for k, v in st.items() if k not in ("lease_until", "retryable")}
            for role, st in (order.get("emails") or {}).items()
            if isinstance(st, dict)
        }
        view["next_actions"] = next_actions(str(order.get("status", "")))
        return view

    # --- POST /admin/orders/{id}/actions --------------------------------------------------
    def act(
        self, session: Session, order_id: str, body: dict[str, Any], now: int
    ) -> dict[str, Any]:
        """The same transition as the email links: services().fulfilment's Lifecycle, its
        outbox entry in the same write and its after_change (the status email), by="admin"."""
        from chalicelib.fulfilment import clean_reason
        from chalicelib.ids import is_order_id
        from chalicelib.lifecycle import (
            ACTIONS,
            MAX_REASON_LENGTH,
            InvalidTransition,
            OrderNotFound,
        )

        action = body.get("action")
        if action not in ACTIONS:
            raise errors.validation_failed({"action": f"One of {', '.join(ACTIONS)}."})
        raw_reason = body.get("reason", "")
        if not isinstance(raw_reason, str):
            raise errors.validation_failed({"reason": "Text, please."})
        reason = clean_reason(raw_reason) if action == "cancel" else ""
        if len(reason) > MAX_REASON_LENGTH:
            raise errors.validation_failed({"reason": f"At most {MAX_REASON_LENGTH} characters."})
        oid = order_id.strip().upper()
        if not is_order_id(oid):
            raise not_found()
        f = self.svc.fulfilment
        extra = dict(f.enqueue(action, now)) if f.enqueue else None
        try:
            result = f.lc.apply(oid, action, now, reason=reason or None, by="admin",
                                also_set=extra)  # fmt: skip
        except OrderNotFound:
            raise not_found() from None
        except InvalidTransition as e:
            audit(session, f"order_{action}", order_id=oid, outcome="invalid_transition")
            raise invalid_transition(str(e), e.current) from None
        audit(session, f"order_{action}", order_id=oid,
              outcome="changed" if result.changed else "already_done")  # fmt: skip
        if result.changed and f.after_change is not None:
            try:
                f.after_change(result.order, action)
            except Exception as e:  # noqa: BLE001 - stored; the outbox sweeper retries
                log("order_after_change_failed", "error", order_id=oid, action=action,
                    error=type(e).__name__)  # fmt: skip
        order = self.svc.store.get_order(oid) or result.order
        return {"changed": result.changed, "order": self._view(order)}

    # --- GET /admin/orders.csv ------------------------------------------------------------
    def export_csv(
        self, session: Session, params: dict[str, str], now: int
    ) -> tuple[str, dict[str, str]]:
        """One part of the CSV for `from`..`to` (days, inclusive, at most CSV_MAX_DAYS). A
        part stays under CSV_BUDGET; when more follows, the `X-Next-Cursor` header carries the
        cursor for the next part (which has no BOM and no header row: the parts concatenate
        into one file)."""
        fields: dict[str, str] = {}
        unknown = sorted(set(params) - {"from", "to", "cursor"})
        for k in unknown:
            fields[k] = "Unknown parameter."
        if fields:
            raise errors.validation_failed(fields)
        start = parse_day(params.get("from"), "from")
        end = parse_day(params.get("to"), "to")
        if end < start:
            raise errors.validation_failed({"to": "The end is before the start."})
        if (end - start).days + 1 > CSV_MAX_DAYS:
            raise errors.validation_failed({"to": f"Export at most {CSV_MAX_DAYS} days at once."})
        query = f"csv:{start}:{end}"
        claims = self._uncursor(params.get("cursor"), query, now)
        day = date.fromisoformat(str(claims["d"])) if claims else start
        key = (claims["k"] or None) if claims else None
        parts = [csvexport.header(first=claims is None)]
        size = csvexport.row_cost(parts[0])
        rows = orders = 0
        next_cursor: str | None = None
        while day <= end and next_cursor is None:
            resume: dict[str, Any] = dict(key or {})  # where this day's part starts
            while next_cursor is None:
                items, last = self.svc.store.query_index(
                    "by_day", "day", day.isoformat(), limit=CSV_QUERY_PAGE, start=key,
                    newest_first=False,
                )  # fmt: skip
                for order in items:
                    text = csvexport.encode(csvexport.rows_for(order, self.tz))
                    cost = csvexport.row_cost(text)
                    if size + cost > CSV_BUDGET and orders:
                        # the next part starts at this order: after the one before it
                        next_cursor = tokens.sign(
                            self.secret, CURSOR_PURPOSE,
                            {"q": query, "k": resume, "d": day.isoformat()}, now + CURSOR_TTL,
                        )  # fmt: skip
                        break
                    parts.append(text)
                    size += cost
                    orders += 1
                    rows += text.count("\r\n")
                    resume = {
                        "pk": {"S": f"order#{order['order_id']}"},
                        "day": {"S": day.isoformat()},
                        "created_at": {"N": str(order["created_at"])},
                    }
                if not last:
                    break
                key = last
            if next_cursor is None:
                day += timedelta(days=1)
                key = None
        audit(session, "export_csv", range=f"{start}..{end}", orders=orders, rows=rows,
              part="next" if claims else "first", more=next_cursor is not None)  # fmt: skip
        headers = {
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": f'attachment; filename="orders-{start}-{end}.csv"',
            "Cache-Control": "no-store",
            "X-Orders": str(orders),
        }
        if next_cursor:
            headers["X-Next-Cursor"] = next_cursor
        return "".join(parts), headers

    # --- GET /admin/email-health ----------------------------------------------------------
    def email_health(self, now: int) -> dict[str, Any]:
        """Counts over the emails of orders created in the last 7 / 30 days, from the by_day
        index (days from 30 days ago to the end of the delivery horizon: an order's `day` is
        its delivery day when it has one), and the suppression list."""
        from chalicelib.shop import load_shop

        horizon = max(0, int(load_shop().delivery.horizon_days))
        today = self.today(now)
        longest = max(HEALTH_WINDOWS)
        since = now - longest * 86400
        counts = {w: dict.fromkeys(("sent", "delivered", "bounced", "complained"), 0)
                  for w in HEALTH_WINDOWS}  # fmt: skip
        day = today - timedelta(days=longest)
        while day <= today + timedelta(days=horizon):
            key = None
            while True:
                items, key = self.svc.store.query_index(
                    "by_day", "day", day.isoformat(), limit=500, start=key,
                    projection="created_at, emails",
                )  # fmt: skip
                for order in items:
                    created = int(order.get("created_at", 0))
                    if created < since:
                        continue
                    for st in (order.get("emails") or {}).values():
                        status = st.get("status") if isinstance(st, dict) else None
                        if status not in SENT_STATUSES:
                            continue
                        for w in HEALTH_WINDOWS:
                            if created >= now - w * 86400:
                                c = counts[w]
                                c["sent"] += 1
                                if status != "sent":
                                    c[status] += 1
                if not key:
                    break
            day += timedelta(days=1)
        windows = []
        for w in HEALTH_WINDOWS:
            c = counts[w]
            sent = c["sent"]
            bounce = c["bounced"] / sent if sent else 0.0
            complaint = c["complained"] / sent if sent else 0.0
            windows.append({
                "days": w, **c,
                "bounce_rate": round(bounce, 4),
                "complaint_rate": round(complaint, 5),
                "bounce_ok": bounce < BOUNCE_THRESHOLD,
                "complaint_ok": complaint < COMPLAINT_THRESHOLD,
            })  # fmt: skip
        return {
            "windows": windows,
            "thresholds": {"bounce_rate": BOUNCE_THRESHOLD, "complaint_rate": COMPLAINT_THRESHOLD},
            "suppressed": self.suppression_list(now),
        }

    def suppression_list(self, now: int) -> list[dict[str, Any]]:
        rows = []
        for r in self.svc.suppression.list(limit=200, now=now):
            email = str(r.get("email", ""))
            rows.append({
                "id": suppression_id(email or str(r.get("email_hash", ""))),
                "email": mask_email(email) if email else "(erased customer)",
                "reason": r.get("reason", ""),
                "since": r.get("suppressed_at"),
                "permanent": bool(r.get("permanent")),
                "expires_at": r.get("expires_at"),
            })  # fmt: skip
        return rows

    # --- POST /admin/suppression/remove ---------------------------------------------------
    def unsuppress(self, session: Session, body: dict[str, Any], now: int) -> dict[str, Any]:
        wanted = body.get("id")
        if not isinstance(wanted, str) or not re.fullmatch(r"[0-9a-f]{24}", wanted):
            raise errors.validation_failed({"id": "Pick an address from the list."})
        for r in self.svc.suppression.list(limit=10_000, now=None):
            email = str(r.get("email", ""))
            digest = str(r.get("email_hash", ""))
            if suppression_id(email or digest) == wanted:
                if email:
                    self.svc.suppression.remove(email)
                else:
                    self.svc.suppression.remove_hashed(digest)
                shown = mask_email(email) if email else "(erased customer)"
                audit(session, "suppression_remove", email=shown, reason=r.get("reason", ""))
                return {"removed": True, "email": shown}
        raise not_found("suppressed address")

    # --- POST /admin/erase ----------------------------------------------------------------
    def erase_customer(self, session: Session, body: dict[str, Any], now: int) -> dict[str, Any]:
        """Remove the customer's personal data from every order (by_email), and from the
        suppression table, where only a hash of the address stays (if it was suppressed)."""
        from chalicelib.identity import canonical_or_lower

        email = body.get("email")
        if not isinstance(email, str) or "@" not in email or len(email) > 254:
            raise errors.validation_failed({"email": "Enter the customer's email address."})
        if body.get("confirm") is not True:
            raise errors.validation_failed({"confirm": "Confirm the erasure."})
        key = canonical_or_lower(email)
        erased = self._erase_where("by_email", "email_key", key, now, "customer_request")
        kept_hash = self.svc.suppression.anonymise(email, now)
        audit(session, "erase_customer", email=mask_email(email), orders=erased,
              suppression_hash_kept=kept_hash)  # fmt: skip
        return {"orders": erased, "suppression_hash_kept": kept_hash}

    def _erase_where(self, index: str, key: str, value: str, now: int, why: str) -> int:
        erased = 0
        start = None
        while True:  # erasing removes email_key, so each page leaves the index
            items, start = self.svc.store.query_index(
                index, key, value, limit=100, start=start, projection="order_id"
            )
            for o in items:
                if self.svc.store.erase_personal_data(str(o["order_id"]), now, why):
                    erased += 1
            if not start:
                return erased

    # --- the retention sweeper ------------------------------------------------------------
    def sweep_retention(self, now: int, days_back: int = 14) -> dict[str, int]:
        """Personal data out of orders created more than ORDER_RETENTION_DAYS ago: the
        `days_back` days of `day` before the cutoff (run daily, it keeps up; a longer pause is
        caught up by calling it with a larger `days_back`)."""
        keep = self.svc.settings.order_retention_days
        cutoff = now - keep * 86400
        last_day = self.today(cutoff)
        erased = 0
        for n in range(days_back + 1):
            day = (last_day - timedelta(days=n)).isoformat()
            start = None
            while True:
                items, start = self.svc.store.query_index(
                    "by_day", "day", day, limit=200, start=start, created_before=cutoff,
                    projection="order_id, pii_erased_at",
                )  # fmt: skip
                for o in items:
                    if "pii_erased_at" in o:
                        continue
                    if self.svc.store.erase_personal_data(str(o["order_id"]), now, "retention"):
                        erased += 1
                if not start:
                    break
        log("retention_sweep", erased=erased, retention_days=keep, through=last_day.isoformat())
        return {"erased": erased}
