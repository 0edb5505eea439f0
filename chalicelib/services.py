"""The composition root: settings -> adapters, and the entry points of the non-HTTP handlers.

`Services` builds each adapter (boto3 clients, stores, mailer, Turnstile, DNS, the shared
thread pool) on first use, for one set of settings; `services()` returns the one for the
current environment. Nothing else in chalicelib builds adapters, and no module imports
`checkout` (the use case): the dependencies point one way, app.py -> checkout -> the rest.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from functools import cache, cached_property
from typing import TYPE_CHECKING, Any

from chalicelib import aws, clock
from chalicelib.obs import log
from chalicelib.settings import Settings, load

if TYPE_CHECKING:
    from chalicelib.admin import Admin
    from chalicelib.adminauth import AdminAuth
    from chalicelib.fulfilment import Fulfilment
    from chalicelib.lastseen import LastSeen
    from chalicelib.mail import Mailer
    from chalicelib.recipients import RecipientChecker
    from chalicelib.retries import RecentKeys
    from chalicelib.store import OrderStore
    from chalicelib.suppression import SuppressionStore
    from chalicelib.turnstile import TurnstileClient


@cache
def pool() -> ThreadPoolExecutor:
    """A small shared pool for the concurrent checks and sends of a request."""
    return ThreadPoolExecutor(max_workers=8, thread_name_prefix="io")


def secret(settings: Settings, value: str, param: str) -> str:
    """A secret from the environment, else from its SSM SecureString parameter."""
    if value or not param:
        return value
    from chalicelib.edge import get_parameter

    return get_parameter(settings.region, settings.aws_endpoint_url, param)


class Services:
    """Adapters for one set of settings, each created on first use."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @property
    def pool(self) -> ThreadPoolExecutor:
        return pool()

    @cached_property
    def dynamodb(self) -> Any:
        return aws.client("dynamodb", self.settings)

    @cached_property
    def store(self) -> OrderStore:
        from chalicelib.store import OrderStore

        return OrderStore(self.dynamodb, self.settings.orders_table)

    @cached_property
    def suppression(self) -> SuppressionStore:
        from chalicelib.suppression import SuppressionStore

        return SuppressionStore(self.dynamodb, self.settings.suppression_table)

    @cached_property
    def recent_keys(self) -> RecentKeys:
        """The Idempotency-Keys this container saw lately (chalicelib/retries.py)."""
        from chalicelib.retries import RecentKeys

        return RecentKeys()

    @cached_property
    def last_seen(self) -> LastSeen:
        """The items this container last saw that orders are checked against: rate windows
        and full delivery days (chalicelib/lastseen.py)."""
        from chalicelib.lastseen import LastSeen

        return LastSeen()

    @cached_property
    def turnstile(self) -> TurnstileClient:
        from chalicelib.turnstile import TurnstileClient

        s = self.settings
        return TurnstileClient(
            secret(s, s.turnstile_secret, s.turnstile_secret_param),
            s.turnstile_verify_url,
            s.turnstile_hostnames,
            s.turnstile_action,
            s.turnstile_timeout,
        )

    @cached_property
    def recipients(self) -> RecipientChecker:
        from chalicelib.recipients import DisposableDomains, DnsChecker, RecipientChecker

        s = self.settings
        return RecipientChecker(
            DnsChecker(s.dns_nameservers, s.dns_timeout),
            DisposableDomains(),
            test_environment=s.email_test_environment,
            dns_fail_open=s.dns_fail_open,
        )

    @cached_property
    def mailer(self) -> Mailer:
        from chalicelib.mail import Mailer

        s = self.settings
        return Mailer(aws.client("sesv2", s, "ses"), s.sender_email, s.ses_configuration_set)

    @property
    def link_secret(self) -> bytes:
        """The key of the links in emails (LINK_SECRET locally, SSM in cloud stages; cached
        per container by chalicelib.edge). b"" when it can't be read: emails still go out,
        without links, and the error is logged (never a lost alert for a missing key)."""
        s = self.settings
        try:
            return secret(s, s.link_secret, s.link_secret_param).encode()
        except Exception as e:  # noqa: BLE001 - SSM down or the parameter missing
            log("link_secret_unreadable", "error", error=type(e).__name__)
            return b""

    @cached_property
    def fulfilment(self) -> Fulfilment:
        """The link pages and transitions; a transition queues its status email in the same
        write (outbox) and tries to send it at once."""
        from chalicelib.fulfilment import Fulfilment
        from chalicelib.lifecycle import Lifecycle, target
        from chalicelib.status_mail import role_for

        s = self.settings

        def enqueue(action: str, now: int) -> dict[str, Any]:
            lease = now + s.outbox_lease_seconds
            return {
                f"emails.{role_for(target(action))}": {
                    "status": "sending",
                    "attempts": 0,
                    "lease_until": lease,
                },
                "outbox": "pending",
                "due_at": lease,
            }

        def after_change(order: dict[str, Any], action: str) -> None:
            from chalicelib.outbox import send_emails

            send_emails(self, order, (role_for(target(action)),))

        return Fulfilment(
            Lifecycle(self.dynamodb, s.orders_table),
            self.link_secret,
            shop_name=s.shop_name,
            timezone=s.shop_timezone,
            ttl_days=s.link_ttl_days,
            enqueue=enqueue,
            after_change=after_change,
        )

    # --- issue 15: the back office ------------------------------------------------------------
    @cached_property
    def admin_secret(self) -> bytes:
        """The key of sign-in links and sessions (ADMIN_SECRET locally, SSM in the cloud)."""
        s = self.settings
        return secret(s, s.admin_secret, s.admin_secret_param).encode()

    @cached_property
    def admin_auth(self) -> AdminAuth:
        from chalicelib.adminauth import AdminAuth, link_email

        s = self.settings

        def send_link(to: str, url: str, minutes: int) -> None:
            self.mailer.send(link_email(s.shop_name, to, url, minutes))

        return AdminAuth(
            secret=self.admin_secret,
            merchants=s.merchant_emails,
            dynamodb=self.dynamodb,
            orders_table=s.orders_table,
            rate_limit_table=s.rate_limit_table,
            send_link=send_link,
            base_url=s.public_base_url,
            secure_cookie=not s.is_local,
        )

    @cached_property
    def admin(self) -> Admin:
        from chalicelib.admin import Admin

        return Admin(self)


_current: list[Services] = []


def services() -> Services:
    """The Services for the current settings (rebuilt only when the settings change)."""
    settings = load()
    if not _current or _current[0].settings != settings:
        _current[:] = [Services(settings)]
    return _current[0]


def reset() -> None:
    """Forget the adapters (a fresh container: tests that change servers or stages)."""
    _current.clear()


# --- the non-HTTP handlers -------------------------------------------------------------------
class FeedbackNotStored(Exception):
    """Some notification could not be stored (DynamoDB/IAM fault): raising makes Lambda retry
    the event (twice), then hand it to the DLQ. Re-processing is idempotent."""


def handle_feedback(event: dict[str, Any]) -> dict[str, int]:
    """One SNS Lambda event of SES notifications. Malformed records are dropped with a log
    line; an infrastructure error raises after every record was tried."""
    from chalicelib.feedback import FeedbackConfig, handle_sns_event
    from chalicelib.identity import canonical_or_lower

    svc = services()
    s = svc.settings
    config = FeedbackConfig(
        topic_arn=s.ses_feedback_topic_arn,
        transient_limit=s.transient_bounce_limit,
        transient_window_seconds=s.transient_bounce_window_days * 86400,
        temporary_suppression_seconds=s.temporary_suppression_days * 86400,
        watched=frozenset(canonical_or_lower(m) for m in s.merchant_emails),
    )
    counts = handle_sns_event(
        event,
        svc.suppression,
        config,
        svc.store.mark_delivered,
        clock.now().timestamp(),
        on_problem=svc.store.mark_problem,
    )
    if counts.get("error"):
        log("feedback_retry", "error", errors=counts["error"], records=counts.get("records", 0))
        raise FeedbackNotStored(f"{counts['error']} notification(s) not stored")
    return counts


def run_sweeper(budget_seconds: float | None = None) -> dict[str, int]:
    from chalicelib.outbox import sweep

    return sweep(services(), budget_seconds=budget_seconds)


SWEEP_RESERVE_SECONDS = 60  # of the sweeper's invocation, kept for the sends in flight


def sweeper_budget(remaining_ms: float | None) -> float | None:
    """The sweep's time: what the invocation has left minus SWEEP_RESERVE_SECONDS (1 s at
    least); None (no limit) outside Lambda."""
    return None if remaining_ms is None else max(1.0, remaining_ms / 1000 - SWEEP_RESERVE_SECONDS)


def catalog_body() -> dict[str, Any]:
    """GET /catalog: products and prices, order limits, the shop profile, whether it is open
    (the hours POST /orders enforces, so the page agrees) and the delivery days with room."""
    from chalicelib.catalog import load_catalog
    from chalicelib.hours import is_open
    from chalicelib.shop import load_shop
    from chalicelib.slots import offer

    settings = load()
    body = load_catalog().as_response(settings.min_items)
    body["max_line_qty"] = settings.max_line_qty
    body["shop"] = load_shop().as_response()
    try:
        open_now, next_open = is_open(clock.now(), settings.business_hours, settings.shop_timezone)
    except (ValueError, KeyError):  # a typo in BUSINESS_HOURS must not close the shop
        open_now, next_open = True, None
    body["open_now"] = open_now
    body["opens_at"] = next_open.isoformat() if next_open else None
    body["delivery_days"] = offer(services(), clock.now())
    return body
