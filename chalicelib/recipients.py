"""Recipient checks for the customer's email address.

Syntax/normalisation uses email-validator (imported lazily).
"""

from __future__ import annotations


class Undeliverable(Exception):
    """The address can't receive mail. reason: syntax, disposable, null_mx, no_such_domain,
    no_mail_server, suppressed."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def normalize_email(raw: str, test_environment: bool = False) -> str:
    """Validate syntax (no DNS) and return the normalised address, domain lower-cased."""
    from email_validator import EmailNotValidError, validate_email

    try:
        info = validate_email(
            raw,
            check_deliverability=False,
            test_environment=test_environment,
            allow_smtputf8=False,
        )
    except EmailNotValidError as e:
        raise Undeliverable("syntax", f"This email address is not valid: {e}") from None
    local, _, domain = info.normalized.rpartition("@")
    return f"{local}@{domain.lower()}"
