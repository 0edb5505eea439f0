"""All configuration, read lazily from environment variables.

Nothing here runs at import time: `load()` reads `os.environ` when called, so
`chalice.test.Client` (which sets stage variables per test) and `chalice local`
both see the right values. The README has a table of every variable.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field


def _env(name: str, default: str) -> str:
    value = os.environ.get(name)
    return default if value is None or value == "" else value


def _int(name: str, default: int) -> int:
    try:
        return int(_env(name, str(default)))
    except ValueError:
        return default


def _float(name: str, default: float) -> float:
    try:
        return float(_env(name, str(default)))
    except ValueError:
        return default


def _bool(name: str, default: bool) -> bool:
    return _env(name, "1" if default else "0").strip().lower() in ("1", "true", "yes", "on")


def _list(name: str, default: str = "") -> tuple[str, ...]:
    return tuple(p.strip() for p in _env(name, default).split(",") if p.strip())


def _limit(name: str, default: str) -> tuple[int, int]:
    """Parse "COUNT/SECONDS" (e.g. "5/600")."""
    raw = _env(name, default)
    try:
        count, seconds = raw.split("/", 1)
        return int(count), int(seconds)
    except ValueError:
        count, seconds = default.split("/", 1)
        return int(count), int(seconds)


# Cloudflare's documented always-pass test secret and the moto topic: local stage defaults only.
LOCAL_TURNSTILE_SECRET = "1x0000000000000000000000000000000AA"  # nosec B105  # public test key
LOCAL_LINK_SECRET = "local-only-link-secret-never-used-in-cloud"  # nosec B105  # local stage
LOCAL_ADMIN_SECRET = "local-only-admin-secret-never-used-in-cloud"  # nosec B105  # local stage
LOCAL_FEEDBACK_TOPIC = "arn:aws:sns:us-east-1:123456789012:ses-feedback"


class SettingsError(RuntimeError):
    """The environment can't be run safely (e.g. a Lambda function without its STAGE)."""


def _stage() -> str:
    """STAGE, defaulting to "local" only outside Lambda.

    A deployed function that lost its environment must not fall back to the local stage: that
    would mean Cloudflare's always-pass Turnstile test secret and the moto topic ARN. Inside
    Lambda (AWS_LAMBDA_FUNCTION_NAME is set by the runtime, never by `chalice local` or the
    tests) an unset STAGE, or STAGE=local, refuses to start."""
    stage = _env("STAGE", "")
    function = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
    if function and stage in ("", "local"):
        problem = "is not set" if not stage else "is 'local' (test secrets)"
        raise SettingsError(
            f"STAGE {problem} in Lambda function {function[:64]!r}: refusing to start. "
            "Set STAGE to the deployed stage (dev, prod) in the function's environment."
        )
    return stage or "local"


@dataclass(frozen=True)
class Settings:
    stage: str = "local"
    region: str = "us-east-1"
    aws_endpoint_url: str = ""
    # tables
    orders_table: str = "orders"
    suppression_table: str = "suppression"
    rate_limit_table: str = "rate-limits"
    # mail
    sender_email: str = "orders@juice.example.com"
    merchant_emails: tuple[str, ...] = ("merchant@juice.example.com",)
    ses_configuration_set: str = "orders"
    shop_name: str = "Pressed & Co."
    # order rules
    min_items: int = 3
    max_line_qty: int = 50
    business_hours: str = "Mon-Sat 08:00-20:00"
    shop_timezone: str = "America/New_York"
    # bot guard
    turnstile_secret: str = ""
    turnstile_secret_param: str = ""
    turnstile_verify_url: str = "https://challenges.cloudflare.com/turnstile/v0/siteverify"
    turnstile_hostnames: tuple[str, ...] = field(default_factory=tuple)
    turnstile_action: str = "order"
    turnstile_timeout: float = 3.0
    # recipient checks
    dns_nameservers: tuple[str, ...] = field(default_factory=tuple)
    dns_timeout: float = 2.0
    dns_fail_open: bool = True
    email_test_environment: bool = False
    # rate limits (count, window seconds)
    rate_limit_email: tuple[int, int] = (5, 600)
    rate_limit_ip: tuple[int, int] = (20, 600)
    rate_limit_bot_ip: tuple[int, int] = (10, 600)  # failed bot checks per IP
    # orders whose mail domain could not be verified (receipt held): per IP and per domain
    rate_limit_unverified: tuple[int, int] = (3, 3600)
    dns_hold_hours: int = 24  # how long a held receipt waits for its domain to verify
    dns_recheck_seconds: int = 300  # first recheck; doubles each time
    # feedback + outbox
    ses_feedback_topic_arn: str = ""
    transient_bounce_limit: int = 3
    transient_bounce_window_days: int = 7
    temporary_suppression_days: int = 14
    outbox_grace_seconds: int = 120
    outbox_max_attempts: int = 6
    outbox_backoff_base_seconds: int = 60
    outbox_lease_seconds: int = 120
    # cloud edge
    origin_verify_secret: str = ""
    origin_verify_param: str = ""
    # AWS client timeouts (seconds): DynamoDB answers in milliseconds, SES may be slow and a
    # read timeout retried by botocore could send twice (see README, delivery guarantees)
    ddb_read_timeout: float = 2.0
    # what one POST /orders may take: the storefront gives up at 20 s, the Lambda's own
    # timeout may be shorter; a send still running at the deadline is left to the sweeper
    request_budget_seconds: float = 10.0
    ses_read_timeout: float = 15.0
    # GET /catalog: how long the delivery days' slot counts are reused in-process (the
    # order's own transaction enforces capacity; CloudFront caches the catalog <= 60 s anyway)
    slots_cache_seconds: float = 30.0
    # links in emails (issue 14): signing secret (env locally, SSM in cloud stages)
    link_secret: str = ""
    link_secret_param: str = ""
    link_ttl_days: int = 14
    public_base_url: str = "http://127.0.0.1:8000"
    # the back office (issue 15): session/link signing secret, personal-data retention
    admin_secret: str = ""
    admin_secret_param: str = ""
    order_retention_days: int = 365

    @property
    def is_local(self) -> bool:
        return self.stage == "local"

    @property
    def merchant_email(self) -> str:
        """The first merchant address: Reply-To of receipts, the shop's contact."""
        return self.merchant_emails[0] if self.merchant_emails else ""


def load() -> Settings:
    """Read every setting from the environment now (cheap: a few dict lookups).

    Raises SettingsError in Lambda when STAGE is missing (see `_stage`)."""
    stage = _stage()
    return Settings(
        stage=stage,
        region=_env("AWS_REGION", _env("AWS_DEFAULT_REGION", "us-east-1")),
        aws_endpoint_url=_env("AWS_ENDPOINT_URL", ""),
        orders_table=_env("ORDERS_TABLE", "orders"),
        suppression_table=_env("SUPPRESSION_TABLE", "suppression"),
        rate_limit_table=_env("RATE_LIMIT_TABLE", "rate-limits"),
        sender_email=_env("SENDER_EMAIL", "orders@juice.example.com"),
        merchant_emails=_list(
            "MERCHANT_EMAILS", _env("MERCHANT_EMAIL", "merchant@juice.example.com")
        ),
        ses_configuration_set=_env("SES_CONFIGURATION_SET", "orders"),
        shop_name=_env("SHOP_NAME", "Pressed & Co."),
        min_items=_int("MIN_ITEMS", 3),
        max_line_qty=_int("MAX_LINE_QTY", 50),
        business_hours=_env(
            "BUSINESS_HOURS", "always" if stage == "local" else "Mon-Sat 08:00-20:00"
        ),
        shop_timezone=_env("SHOP_TIMEZONE", "America/New_York"),
        turnstile_secret=_env(
            "TURNSTILE_SECRET", LOCAL_TURNSTILE_SECRET if stage == "local" else ""
        ),
        turnstile_secret_param=_env("TURNSTILE_SECRET_PARAM", ""),
        turnstile_verify_url=_env(
            "TURNSTILE_VERIFY_URL", "https://challenges.cloudflare.com/turnstile/v0/siteverify"
        ),
        turnstile_hostnames=_list("TURNSTILE_HOSTNAMES"),
        turnstile_action=_env("TURNSTILE_ACTION", "order"),
        turnstile_timeout=_float("TURNSTILE_TIMEOUT", 3.0),
        dns_nameservers=_list("DNS_NAMESERVERS"),
        dns_timeout=_float("DNS_TIMEOUT", 2.0),
        dns_fail_open=_bool("DNS_FAIL_OPEN", True),
        email_test_environment=_bool("EMAIL_TEST_ENVIRONMENT", stage == "local"),
        rate_limit_email=_limit("RATE_LIMIT_EMAIL", "5/600"),
        rate_limit_ip=_limit("RATE_LIMIT_IP", "20/600"),
        rate_limit_bot_ip=_limit("RATE_LIMIT_BOT_IP", "10/600"),
        rate_limit_unverified=_limit("RATE_LIMIT_UNVERIFIED", "3/3600"),
        dns_hold_hours=_int("DNS_HOLD_HOURS", 24),
        dns_recheck_seconds=_int("DNS_RECHECK_SECONDS", 300),
        ses_feedback_topic_arn=_env(
            "SES_FEEDBACK_TOPIC_ARN", LOCAL_FEEDBACK_TOPIC if stage == "local" else ""
        ),
        transient_bounce_limit=_int("TRANSIENT_BOUNCE_LIMIT", 3),
        transient_bounce_window_days=_int("TRANSIENT_BOUNCE_WINDOW_DAYS", 7),
        temporary_suppression_days=_int("TEMPORARY_SUPPRESSION_DAYS", 14),
        outbox_grace_seconds=_int("OUTBOX_GRACE_SECONDS", 120),
        outbox_max_attempts=_int("OUTBOX_MAX_ATTEMPTS", 6),
        outbox_backoff_base_seconds=_int("OUTBOX_BACKOFF_BASE_SECONDS", 60),
        outbox_lease_seconds=_int("OUTBOX_LEASE_SECONDS", 120),
        origin_verify_secret=_env("ORIGIN_VERIFY_SECRET", ""),
        origin_verify_param=_env("ORIGIN_VERIFY_PARAM", ""),
        # moto serialises every request behind one lock: under load it answers in seconds
        ddb_read_timeout=_float("DDB_READ_TIMEOUT", 10.0 if stage == "local" else 2.0),
        request_budget_seconds=_float("REQUEST_BUDGET_SECONDS", 10.0),
        ses_read_timeout=_float("SES_READ_TIMEOUT", 15.0),
        slots_cache_seconds=_float("SLOTS_CACHE_SECONDS", 30.0),
        link_secret=_env("LINK_SECRET", LOCAL_LINK_SECRET if stage == "local" else ""),
        link_secret_param=_env("LINK_SECRET_PARAM", ""),
        link_ttl_days=_int("LINK_TTL_DAYS", 14),
        public_base_url=_env("PUBLIC_BASE_URL", "http://127.0.0.1:8000").rstrip("/"),
        admin_secret=_env("ADMIN_SECRET", LOCAL_ADMIN_SECRET if stage == "local" else ""),
        admin_secret_param=_env("ADMIN_SECRET_PARAM", ""),
        order_retention_days=max(1, _int("ORDER_RETENTION_DAYS", 365)),
    )
