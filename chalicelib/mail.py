"""Rendering (Jinja2, autoescaped HTML + plain text) and sending (SESv2) of order emails."""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any

from chalicelib.orders import has_control_chars

TEMPLATES = Path(__file__).parent / "templates"
# The mail templates compiled to Python modules: only in the Lambda package (made there by
# infra/lambdazip.py from these sources, never in the source tree), so a cold start imports
# them (bytecode) instead of compiling them (~80 ms for an order's four on the bench machine).
COMPILED = TEMPLATES / "_compiled"
MAIL_TEMPLATES_EXCLUDE = ("pages/", "_compiled/")  # pages: their own environment (pages.py)

# SES errors worth retrying later; everything else (MessageRejected, bad address...) is final.
RETRYABLE_CODES = frozenset(
    {
        "TooManyRequestsException",
        "LimitExceededException",
        "SendingPausedException",
        "Throttling",
        "ThrottlingException",
        "ServiceUnavailable",
        "InternalFailure",
        "InternalServerError",
        "RequestTimeout",
    }
)


@dataclass(frozen=True)
class Email:
    role: str  # "merchant" | "customer"
    to: str
    reply_to: str
    subject: str
    text: str
    html: str
    also_to: tuple[str, ...] = ()  # more recipients of the same message (merchant addresses)
    # SES message tags: SES returns them in every event it publishes about the message
    # (feedback finds the order and email from them: no message-id index row to write)
    tags: tuple[tuple[str, str], ...] = ()

    def addressed_to(self, addresses: list[str]) -> Email:
        """The same message to `addresses` (each checked for header injection)."""
        first, *rest = [safe_header(a) for a in addresses]
        return replace(self, to=first, also_to=tuple(rest))


class SendError(Exception):
    def __init__(self, reason: str, retryable: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable


def money(cents: int) -> str:
    return f"${cents // 100:,}.{cents % 100:02d}"


def environment(loader: Any = None) -> Any:
    """The mail templates' Jinja2 environment. The loader: the precompiled modules when the
    package has them (COMPILED), else the sources. Compiling (infra/lambdazip.py) uses this
    same environment with a source loader, so escaping and whitespace are identical."""
    from jinja2 import (
        Environment,
        FileSystemLoader,
        ModuleLoader,
        StrictUndefined,
        select_autoescape,
    )

    if loader is None:
        loader = ModuleLoader(str(COMPILED)) if COMPILED.is_dir() else FileSystemLoader(TEMPLATES)
    env = Environment(
        loader=loader,
        # HTML templates are escaped; the .txt bodies are plain text, not HTML
        autoescape=select_autoescape(enabled_extensions=("html",), default=False),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        auto_reload=False,  # templates ship with the code: no stat() per render
    )
    env.filters["money"] = money
    return env


def compile_templates(source_dir: Path, target: Path) -> list[Path]:
    """Compile every mail template under `source_dir` into modules in `target` (what
    COMPILED holds in the package); returns the files written."""
    from jinja2 import FileSystemLoader

    target.mkdir(parents=True, exist_ok=True)
    environment(FileSystemLoader(str(source_dir))).compile_templates(
        str(target),
        zip=None,
        filter_func=lambda name: not name.startswith(MAIL_TEMPLATES_EXCLUDE),
        ignore_errors=False,
    )
    return sorted(target.glob("*.py"))


@cache
def _environment() -> Any:
    return environment()


@cache
def template(name: str) -> Any:
    """The compiled template `name` (compiled once per process)."""
    return _environment().get_template(name)


def human_phone(e164: str) -> str:
    """`+12125550143` -> `(212) 555-0143` (other forms are shown as they are)."""
    if len(e164) == 12 and e164.startswith("+1") and e164[1:].isdigit():
        d = e164[2:]
        return f"({d[:3]}) {d[3:6]}-{d[6:]}"
    return e164


def safe_header(value: str) -> str:
    """Refuse anything that could inject a header (CR, LF, other controls)."""
    if has_control_chars(value):
        raise ValueError("header value contains control characters")
    return value


ACTION_LABELS = {
    "confirm": "Confirm the order",
    "dispatch": "Mark it out for delivery",
    "deliver": "Mark it delivered",
    "cancel": "Cancel the order",
}


def render(
    order: dict[str, Any],
    role: str,
    *,
    shop_name: str,
    merchant_email: str,
    actions: dict[str, str] | None = None,
    status_url: str = "",
) -> Email:
    """Build the merchant alert (with its one-click `actions`: action -> signed URL) or the
    customer receipt (with the order's `status_url`) for a stored order."""
    from chalicelib.delivery import day_label, moment_label
    from chalicelib.shop import load_shop

    shop = load_shop()
    oid = safe_header(str(order["order_id"]))
    ctx = {
        "order": order,
        "shop_name": shop_name,
        "actions": [(ACTION_LABELS.get(a, a), url) for a, url in (actions or {}).items()],
        "status_url": status_url,
        "shop": shop,
        "delivery_day": day_label(order.get("delivery_day")),
        "ordered_at": moment_label(order.get("created_at"), shop.timezone),
        "phone": human_phone(str(order["customer"].get("phone", ""))),
    }
    if role == "merchant":
        subject = f"New order {oid}"
        to, reply_to = merchant_email, order["customer"]["email"]
    else:
        subject = f"Your {shop_name} order {oid}"
        to, reply_to = order["customer"]["email"], merchant_email
    ctx["subject"] = subject
    return Email(
        role=role,
        to=safe_header(to),
        reply_to=safe_header(reply_to),
        subject=safe_header(subject),
        text=template(f"{role}.txt").render(ctx),
        html=template(f"{role}.html").render(ctx),
    )


class Mailer:
    """SESv2 SendEmail with Simple content (text + HTML)."""

    def __init__(self, ses_client: Any, sender: str, configuration_set: str) -> None:
        self.ses = ses_client
        self.sender = sender
        self.configuration_set = configuration_set

    def send(self, email: Email) -> str:
        """Send one email; returns the SES message id or raises SendError."""
        from botocore.exceptions import BotoCoreError, ClientError

        kwargs: dict[str, Any] = {
            "FromEmailAddress": self.sender,
            "Destination": {"ToAddresses": [email.to, *email.also_to]},
            "ReplyToAddresses": [email.reply_to],
            "Content": {
                "Simple": {
                    "Subject": {"Data": email.subject, "Charset": "UTF-8"},
                    "Body": {
                        "Text": {"Data": email.text, "Charset": "UTF-8"},
                        "Html": {"Data": email.html, "Charset": "UTF-8"},
                    },
                }
            },
        }
        if self.configuration_set:
            kwargs["ConfigurationSetName"] = self.configuration_set
        if email.tags:
            kwargs["EmailTags"] = [{"Name": k, "Value": v} for k, v in email.tags]
        try:
            return str(self.ses.send_email(**kwargs)["MessageId"])
        except ClientError as e:
            err = e.response.get("Error", {})
            code = str(err.get("Code", ""))
            status = int(e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
            retryable = code in RETRYABLE_CODES or status >= 500
            raise SendError(f"{code}: {err.get('Message', '')}"[:300], retryable) from e
        except BotoCoreError as e:  # timeouts, connection errors
            raise SendError(type(e).__name__, True) from e
