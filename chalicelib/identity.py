"""One identity per mailbox: the canonical key of an email address (pure).

`canonical_email` is the key for everything that must treat two spellings of one mailbox as
one: per-address rate limits, suppression reads and writes, the back office. Mail is still
sent to the exact address the shopper typed; the key is never used as a recipient.

Rules (docs/guard.md, "One identity per mailbox"):
1. Domain: IDNA 2008 with UTS #46 mapping (non-transitional), to lower-case ASCII
   (punycode). `bücher.com`, `BÜCHER.com`, `xn--bcher-kva.com` and `XN--BCHER-KVA.COM.` all
   give `xn--bcher-kva.com`: a punycode label is decoded and encoded again, so only valid
   punycode passes. A domain that fails IDNA raises `NotAnAddress`.
2. Local part: Unicode NFC, lower-cased; everything from the first `+` on is dropped
   (`jane+juice` -> `jane`; `jane+` -> `jane`; a local part that *starts* with `+` keeps it,
   there being nothing else to key on).
3. Providers that ignore more (only where the provider documents it, and only by domain):
   `gmail.com` and `googlemail.com` ignore dots in the local part and are one mailbox
   namespace, so `J.a.n.e+x@googlemail.com` -> `jane@gmail.com`.
Quoted local parts (`"jane doe"@x`) are refused (`NotAnAddress`): validation refuses them
before an order ever gets here.

Both functions are pure and memoised (bounded LRU): an order canonicalises the same
addresses several times, and IDNA is costly. Failures are not cached (they raise).
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

GMAIL_DOMAINS = frozenset({"gmail.com", "googlemail.com"})
GMAIL = "gmail.com"
# Domains where a +label names a mailbox of its own: SES's mailbox simulator, whose
# `bounce+<label>@` addresses are distinct test recipients (`make smoke` uses a fresh label
# per run, so a second run is not refused by the first run's bounce).
LABELLED_MAILBOX_DOMAINS = frozenset({"simulator.amazonses.com"})


class NotAnAddress(ValueError):
    """The text can't be reduced to a canonical address (no `@`, empty part, bad IDNA...)."""


CACHE_SIZE = 2048


@lru_cache(maxsize=CACHE_SIZE)
def canonical_domain(domain: str) -> str:
    """The lower-case ASCII (punycode) form of a domain; raises NotAnAddress."""
    import idna

    d = domain.strip().rstrip(".")
    if not d:
        raise NotAnAddress("empty domain")
    try:
        # decode then encode: punycode labels are checked and mapped like Unicode ones
        unicode_form = idna.decode(d.lower(), uts46=True) if d.isascii() else d
        ascii_form = idna.encode(unicode_form, uts46=True, transitional=False)
    except (idna.IDNAError, UnicodeError, ValueError) as e:
        raise NotAnAddress(f"domain fails IDNA: {e}") from None
    return ascii_form.decode("ascii").lower()


def canonical_email(address: str) -> str:
    """The one key of the mailbox `address` names; raises NotAnAddress."""
    if not isinstance(address, str):
        raise NotAnAddress("not text")
    return _canonical_email(address)


@lru_cache(maxsize=CACHE_SIZE)
def _canonical_email(address: str) -> str:
    text = address.strip()
    local, at, domain = text.rpartition("@")
    if not at or not local or not domain:
        raise NotAnAddress("expected local@domain")
    if local.startswith('"') or '"' in local or "@" in local:
        raise NotAnAddress("quoted local parts are not supported")
    ascii_domain = canonical_domain(domain)
    local = unicodedata.normalize("NFC", local).lower()
    base = local.split("+", 1)[0]
    if base and ascii_domain not in LABELLED_MAILBOX_DOMAINS:
        local = base
    if ascii_domain in GMAIL_DOMAINS:
        local = local.replace(".", "") or local
        ascii_domain = GMAIL
    return f"{local}@{ascii_domain}"


def canonical_or_lower(address: str) -> str:
    """canonical_email, or the trimmed, lower-cased address when it has no canonical form
    (the old suppression key: for addresses from outside, such as SES feedback)."""
    try:
        return canonical_email(address)
    except NotAnAddress:
        return str(address).strip().lower()


def lookup_keys(address: str) -> tuple[str, ...]:
    """Where a suppression of `address` may be stored: the canonical key, then the key rows
    written before canonical keys used (the whole address trimmed and lower-cased), when it
    differs. Reads check both (one BatchGetItem); writes use only the first."""
    legacy = str(address).strip().lower()
    key = canonical_or_lower(address)
    return (key,) if key == legacy else (key, legacy)
