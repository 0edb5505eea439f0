"""Sign-in to the back office: magic links, the session cookie and the CSRF check.

    POST /api/admin/login {"email"}     always 202 (rate-limited per IP and per address); a
                                        merchant address (MERCHANT_EMAILS, canonical forms)
                                        gets a single-use link valid LOGIN_TTL seconds
    GET  /api/admin/login/{token}       a page with a "Sign in" button; never uses the token
                                        (mail scanners open links)
    POST /api/admin/login/{token}       uses the token (a conditional put of
                                        `used#<fingerprint>` in the orders table, TTL
                                        `expires_at`), sets `admin_session`; its page goes
                                        on to /admin

Tokens and sessions are chalicelib.tokens tokens (HMAC, purpose-bound) signed with
ADMIN_SECRET (SSM `ADMIN_SECRET_PARAM` in cloud stages). A session is stateless: it ends when it
expires (SESSION_TTL) or when the secret is rotated; "Sign out" clears the cookie.
Nothing here logs an address or a token: `mask_email`, `fingerprint`.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from typing import Any

from chalicelib import ddb, tokens
from chalicelib.errors import ApiError
from chalicelib.obs import log, mask_email, metric

LOGIN_PURPOSE = "admin-login"
SESSION_PURPOSE = "admin-session"
LOGIN_TTL = 15 * 60
SESSION_TTL = 12 * 3600
COOKIE = "admin_session"
COOKIE_PATH = "/api/admin"
CSRF_HEADER = "x-requested-with"
CSRF_VALUE = "admin"
MAX_LOGIN_BODY = 2048
# per IP and per (canonical) address: (count, window seconds)
LOGIN_LIMIT_IP = (10, 900)
LOGIN_LIMIT_EMAIL = (5, 900)


def unauthorized(message: str = "Sign in to the back office first.") -> ApiError:
    return ApiError(401, "unauthorized", message)


def csrf_failed() -> ApiError:
    return ApiError(
        403, "forbidden", "This request must come from the back office page (X-Requested-With)."
    )


@dataclass(frozen=True)
class Session:
    who: str  # the canonical merchant address

    @property
    def masked(self) -> str:
        return mask_email(self.who)


def audit(session: Session, what: str, **fields: Any) -> None:
    """The one audit line per admin action (`fields` must already be masked)."""
    log("admin_audit", who=session.masked, what=what, **fields)
    metric("AdminAction", action=what)


def cookie_value(headers: Mapping[str, str], name: str = COOKIE) -> str | None:
    raw = headers.get("cookie", "")
    if not raw:
        return None
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(raw)
    except CookieError:
        return None
    morsel = jar.get(name)
    return morsel.value if morsel is not None else None


def session_cookie(token: str, secure: bool, max_age: int = SESSION_TTL) -> str:
    parts = [f"{COOKIE}={token}", f"Path={COOKIE_PATH}", f"Max-Age={max_age}", "HttpOnly"]
    if secure:
        parts.append("Secure")
    parts.append("SameSite=Strict")
    return "; ".join(parts)


def clear_cookie(secure: bool) -> str:
    return session_cookie("", secure, 0)


class AdminAuth:
    """Everything sign-in needs is passed in (clients and plain values)."""

    def __init__(
        self,
        *,
        secret: bytes,
        merchants: tuple[str, ...],
        dynamodb: Any,
        orders_table: str,
        rate_limit_table: str,
        send_link: Any,
        base_url: str,
        secure_cookie: bool,
    ) -> None:
        from chalicelib.identity import canonical_or_lower

        self.secret = secret
        # canonical mailbox -> the address as configured (where sign-in links go)
        self.merchants = {canonical_or_lower(m): m.strip() for m in merchants if m}
        self.ddb = dynamodb
        self.orders_table = orders_table
        self.rate_limit_table = rate_limit_table
        self.send_link = send_link  # (address, url, expires_minutes) -> None
        self.base_url = base_url.rstrip("/")
        self.secure_cookie = secure_cookie

    # --- POST /admin/login -------------------------------------------------------------------
    def request_link(self, body: bytes, content_type: str, ip: str | None, now: int) -> None:
        """Validate, rate-limit, then (only for merchants) mail a sign-in link. Raises
        ApiError for malformed input and rate limits; otherwise the answer is always 202."""
        from chalicelib import errors
        from chalicelib.identity import canonical_or_lower
        from chalicelib.ratelimit import Limit, count_now, decide

        if content_type.split(";", 1)[0].strip().lower() != "application/json":
            raise errors.unsupported_media_type()
        if len(body) > MAX_LOGIN_BODY:
            raise errors.payload_too_large(MAX_LOGIN_BODY)
        try:
            data = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            raise errors.invalid_json() from None
        email = data.get("email") if isinstance(data, dict) else None
        if not isinstance(email, str) or "@" not in email or not 3 <= len(email) <= 254:
            raise errors.validation_failed({"email": "Enter your email address."})
        who = canonical_or_lower(email)
        limits = [Limit("admin_login_email", who, *LOGIN_LIMIT_EMAIL)]
        if ip:
            limits.append(Limit("admin_login_ip", ip, *LOGIN_LIMIT_IP))
        found = ddb.batch_get(self.ddb, {self.rate_limit_table: [lim.pk for lim in limits]})
        for lim in limits:
            d = decide(lim, found.get((self.rate_limit_table, lim.pk)), now, self.rate_limit_table)
            if not d.allowed:
                log("admin_login", "warning", outcome="rate_limited", scope=lim.scope,
                    email=mask_email(email))  # fmt: skip
                err = errors.rate_limited(d.retry_after, lim.scope)
                err.message = "Too many sign-in requests. Please wait and try again."
                raise err
            count_now(self.ddb, d)
        if who not in self.merchants:
            log("admin_login", outcome="not_a_merchant", email=mask_email(email))
            return
        if not self.secret:
            log("admin_login", "error", outcome="secret_missing")
            return
        token = tokens.sign(
            self.secret, LOGIN_PURPOSE, {"sub": who, "n": secrets.token_hex(8)}, now + LOGIN_TTL
        )
        url = f"{self.base_url}/api/admin/login/{token}"
        self.send_link(self.merchants[who], url, LOGIN_TTL // 60)  # never the typed spelling
        log("admin_login", outcome="link_sent", email=mask_email(email),
            token=tokens.fingerprint(token))  # fmt: skip

    # --- the link ------------------------------------------------------------------------
    def check_link(self, token: str, now: int) -> str | None:
        """The merchant a link token names, or None (forged, expired, not a merchant)."""
        try:
            claims = tokens.verify(self.secret, LOGIN_PURPOSE, token, now)
        except tokens.TokenInvalid as e:
            log("admin_link", "warning", outcome="refused", reason=e.reason,
                token=tokens.fingerprint(token))  # fmt: skip
            return None
        who = str(claims.get("sub", ""))
        return who if who in self.merchants else None

    def use_link(self, token: str, now: int) -> str:
        """Use the link once: the session cookie's Set-Cookie value. Raises 401 for a forged,
        expired or already used link."""
        who = self.check_link(token, now)
        if who is None:
            raise unauthorized("This sign-in link is not valid. Ask for a new one.")
        claims = tokens.verify(self.secret, LOGIN_PURPOSE, token, now)
        marker = {
            "pk": f"used#{tokens.fingerprint(token)}",
            "kind": "used",
            "purpose": LOGIN_PURPOSE,
            "created_at": now,
            "expires_at": int(claims["exp"]),
        }
        try:
            ddb.call(
                self.ddb,
                "put_item",
                TableName=self.orders_table,
                Item=ddb.dump(marker),
                ConditionExpression="attribute_not_exists(pk)",
            )
        except Exception as e:
            if ddb.is_condition_failure(e):
                log("admin_link", "warning", outcome="reused", token=tokens.fingerprint(token))
                raise unauthorized(
                    "This sign-in link was already used. Ask for a new one."
                ) from None
            raise
        session = tokens.sign(self.secret, SESSION_PURPOSE, {"sub": who}, now + SESSION_TTL)
        audit(Session(who), "sign_in", token=tokens.fingerprint(token))
        return session_cookie(session, self.secure_cookie)

    # --- every other admin route ---------------------------------------------------------------
    def session(self, headers: Mapping[str, str], now: int, mutating: bool) -> Session:
        """The signed-in merchant, or ApiError 401 (no/invalid session) / 403 (CSRF)."""
        raw = cookie_value(headers)
        if not raw or not self.secret:
            raise unauthorized()
        try:
            claims = tokens.verify(self.secret, SESSION_PURPOSE, raw, now)
        except tokens.TokenInvalid as e:
            log("admin_session", "warning", outcome="refused", reason=e.reason)
            raise unauthorized("Your session has ended. Sign in again.") from None
        who = str(claims.get("sub", ""))
        if who not in self.merchants:  # removed from MERCHANT_EMAILS since
            raise unauthorized()
        if mutating and headers.get(CSRF_HEADER, "").strip().lower() != CSRF_VALUE:
            log("admin_session", "warning", outcome="csrf_refused", who=mask_email(who))
            raise csrf_failed()
        return Session(who)


def signin_page(token_ok: bool, shop_name: str) -> tuple[int, str]:
    """The page a sign-in link opens: a button that POSTs (or why it can't)."""
    from chalicelib.pages import _environment

    tpl = _environment().get_template("admin_signin.html")
    status = 200 if token_ok else 401
    title = "Sign in to the back office"
    return status, tpl.render(shop_name=shop_name, ok=token_ok, done=False, title=title)


def signed_in_page(shop_name: str) -> tuple[int, str]:
    """After the button: the cookie is set; the page moves on to the back office."""
    from chalicelib.pages import _environment

    tpl = _environment().get_template("admin_signin.html")
    return 200, tpl.render(shop_name=shop_name, ok=True, done=True, title="You are signed in")


def link_email(shop_name: str, to: str, url: str, minutes: int) -> Any:
    from chalicelib.mail import Email

    text = (
        f"Sign in to the {shop_name} back office:\n\n{url}\n\n"
        f"The link works once, for {minutes} minutes. If you did not ask for it, ignore this email."
    )
    from html import escape

    html = (
        f"<p>Sign in to the {escape(shop_name)} back office:</p>"
        f'<p><a href="{escape(url)}">Sign in</a></p>'
        f"<p>The link works once, for {minutes} minutes. "
        "If you did not ask for it, ignore this email.</p>"
    )
    return Email("admin", to, to, f"Sign in to {shop_name}", text, html)
