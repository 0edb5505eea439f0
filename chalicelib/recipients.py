"""Recipient checks for the customer's email address.

Syntax/normalisation uses email-validator, disposable domains the disposable-email-domains
package plus merchant-editable lists in chalicelib/data, and the DNS checks dnspython. All
three are imported lazily (cold start). DNS verdicts are cached in memory per domain for the
life of the process, honouring the records' TTLs, so a repeated check costs no DNS query.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chalicelib.obs import log, mask_email

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

DATA_DIR = Path(__file__).resolve().parent / "data"
DEFAULT_ALLOWLIST = DATA_DIR / "disposable_allowlist.txt"
DEFAULT_BLOCKLIST = DATA_DIR / "disposable_blocklist.txt"

# Verdicts of DnsChecker.verdict
OK = "ok"
NULL_MX = "null_mx"
NO_SUCH_DOMAIN = "no_such_domain"
NO_MAIL_SERVER = "no_mail_server"
UNVERIFIED = "unverified"

MAX_POSITIVE_TTL = 3600.0  # re-check at least hourly even if the zone says days
MAX_NEGATIVE_TTL = 900.0
DEFAULT_NEGATIVE_TTL = 60.0  # negative answer without an SOA
UNVERIFIED_TTL = 5.0  # DNS trouble: remember briefly so an outage doesn't cost 2 s per order
MAX_LOCAL_PART = 64
MAX_ADDRESS = 254


class Undeliverable(Exception):
    """The address can't receive mail. reason: syntax, disposable, null_mx, no_such_domain,
    no_mail_server, suppressed."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class RecipientCheckUnavailable(Exception):
    """DNS could not be asked and fail-open is off (-> 503)."""


@dataclass(frozen=True)
class RecipientResult:
    email: str  # normalised
    dns_unverified: bool


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
    # RFC 5321 4.5.3.1: local part <= 64 octets, whole path <= 254 (the ASCII form counts)
    if len(local.encode("utf-8")) > MAX_LOCAL_PART:
        raise Undeliverable(
            "syntax", f"The part before the @ can be at most {MAX_LOCAL_PART} characters."
        )
    if len(info.ascii_email or info.normalized) > MAX_ADDRESS:
        raise Undeliverable("syntax", f"An email address can be at most {MAX_ADDRESS} characters.")
    return f"{local}@{domain.lower()}"


# --------------------------------------------------------------------------------------------
# DNS


def _clock() -> float:
    """Cache clock (tests patch this name)."""
    return time.monotonic()


# (nameservers, domain) -> (verdict, expires at _clock()). Shared by every DnsChecker in the
# process (the app may build checkers per request); keyed by nameservers so two checkers
# pointed at different servers never see each other's answers.
_CACHE: dict[tuple[tuple[str, ...], str], tuple[str, float]] = {}
_CACHE_LOCK = threading.Lock()
_CACHE_MAX = 50_000


def clear_cache() -> None:
    """Forget every cached DNS verdict (tests; a merchant-triggered refresh)."""
    with _CACHE_LOCK:
        _CACHE.clear()


@cache
def _pool(kind: str) -> ThreadPoolExecutor:
    """ "lookup": runs a whole lookup (so the caller can stop waiting at the budget, whatever
    dnspython's retry backoff does); "query": the concurrent NS/A/AAAA queries inside one.
    Two pools, so a lookup waiting for its queries can never starve them of workers."""
    from concurrent.futures import ThreadPoolExecutor

    return ThreadPoolExecutor(max_workers=16, thread_name_prefix=f"dns-{kind}")


def _parse_nameserver(entry: str) -> tuple[str, int]:
    """ "host", "host:port", "[v6]:port" or a bare IPv6 address -> (address, port)."""
    entry = entry.strip()
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else 53
    if entry.count(":") == 1:
        host, _, port = entry.partition(":")
        return host, int(port)
    return entry, 53


class _Unverified(Exception):
    """A query got no usable answer (timeout, SERVFAIL, REFUSED, network, budget spent)."""


@dataclass
class _Answer:
    kind: str  # "answer" | "nodata" | "nxdomain"
    rrset: Any
    ttl: float


class DnsChecker:
    """Decides whether a domain can receive mail, from MX / NS / A / AAAA lookups.

    verdict(): "ok" | "null_mx" | "no_such_domain" | "no_mail_server" | "unverified".
    Rules, in order (docs/guard.md):
      1. MX query. NXDOMAIN -> no_such_domain. Only null MX records (RFC 7505 `0 .`) -> null_mx.
         Any real MX -> ok (NS is not consulted: a domain with MX can get mail).
      2. No MX (NODATA): concurrently, an NS lookup and A + AAAA queries. NS: the domain
         itself, then each parent while the parent still has two or more labels (so
         `mail.shop.example` is covered by `shop.example`'s NS; a TLD is never asked).
         No NS anywhere -> no_mail_server. NS and an A/AAAA -> ok (implicit MX,
         RFC 5321 5.1). NS but no address -> no_mail_server.
      3. Timeout, SERVFAIL/REFUSED, unreachable resolver, or the budget spent before a
         decision -> unverified.
    The whole verdict takes at most `budget` seconds.
    """

    def __init__(self, nameservers: tuple[str, ...], budget: float = 2.0) -> None:
        self.nameservers = tuple(n.strip() for n in nameservers if n.strip())
        self.budget = float(budget)

    # public ------------------------------------------------------------------------------
    def verdict(self, domain: str) -> str:
        """The domain's verdict (ASCII/punycode domain; case and a trailing dot ignored)."""
        domain = domain.lower().rstrip(".")
        hit = self._hit(domain)
        if hit is not None:
            return hit
        key = (self.nameservers, domain)
        started = time.perf_counter()
        verdict, ttl, detail = self._lookup(domain)
        if ttl > 0:
            with _CACHE_LOCK:
                if len(_CACHE) >= _CACHE_MAX:
                    _CACHE.clear()
                _CACHE[key] = (verdict, _clock() + ttl)
        log(
            "dns_verdict",
            level="warning" if verdict == UNVERIFIED else "info",
            domain=domain,
            verdict=verdict,
            detail=detail,
            ttl=round(ttl, 1),
            ms=round((time.perf_counter() - started) * 1000, 1),
        )
        return verdict

    def cached(self, domain: str) -> bool:
        """True if the domain's verdict is cached now (`verdict` would make no query)."""
        return self._hit(domain.lower().rstrip(".")) is not None

    def _hit(self, domain: str) -> str | None:
        """The cached, unexpired verdict of `domain` (already lower-cased, no final dot)."""
        hit = _CACHE.get((self.nameservers, domain))
        return hit[0] if hit is not None and hit[1] > _clock() else None

    # internals ---------------------------------------------------------------------------
    def _get_resolver(self) -> Any:
        return self._resolver

    @cached_property
    def _resolver(self) -> Any:
        import dns.nameserver
        import dns.resolver

        if self.nameservers:
            r = dns.resolver.Resolver(configure=False)
            r.nameservers = [
                dns.nameserver.Do53Nameserver(*_parse_nameserver(n)) for n in self.nameservers
            ]
        else:
            r = dns.resolver.Resolver(configure=True)
        # one try per server fits in the budget; dnspython retries within lifetime
        r.timeout = max(0.2, self.budget / 2)
        r.lifetime = self.budget
        r.cache = None
        return r

    def _lookup(self, domain: str) -> tuple[str, float, str]:
        """-> (verdict, seconds to cache it, detail for the log), within the budget."""
        from concurrent.futures import TimeoutError as FutureTimeout

        deadline = time.monotonic() + self.budget
        future = _pool("lookup").submit(self._decide, domain, deadline)
        try:
            return future.result(timeout=self.budget)
        except FutureTimeout:
            future.cancel()  # if it never started; otherwise it ends by itself at the deadline
            return UNVERIFIED, UNVERIFIED_TTL, "budget spent"

    def _decide(self, domain: str, deadline: float) -> tuple[str, float, str]:
        try:
            import dns.name

            name = (
                dns.name.from_text(domain)
                if domain.isascii()
                else dns.name.from_unicode(domain, idna_codec=dns.name.IDNA_2008_Practical)
            )
            mx = self._query(name, "MX", deadline)
            if mx.kind == "nxdomain":
                return NO_SUCH_DOMAIN, mx.ttl, "nxdomain"
            if mx.kind == "answer":
                if all(r.exchange == dns.name.root for r in mx.rrset):
                    return NULL_MX, mx.ttl, "null mx"
                return OK, mx.ttl, "mx"
            pool = _pool("query")
            ns_future = pool.submit(self._find_ns, name, deadline)
            a_future = pool.submit(self._query, name, "A", deadline)
            aaaa = self._query_soft(name, "AAAA", deadline)
            has_ns, ns_ttl = ns_future.result(timeout=max(0.0, deadline - time.monotonic()))
            ttl = min(mx.ttl, ns_ttl)
            if not has_ns:
                return NO_MAIL_SERVER, ttl, "no mx, no ns"
            a = self._soft(a_future, deadline)
            for ans in (a, aaaa):
                if ans is not None and ans.kind == "answer":
                    return OK, min(ttl, ans.ttl), "implicit mx"
            if a is None or aaaa is None:
                raise _Unverified("address lookup failed")
            return NO_MAIL_SERVER, min(ttl, a.ttl, aaaa.ttl), "no mx, no address"
        except _Unverified as e:
            return UNVERIFIED, UNVERIFIED_TTL, str(e)
        except Exception as e:  # noqa: BLE001 - any resolver trouble is "unverified"
            return UNVERIFIED, UNVERIFIED_TTL, f"{type(e).__name__}: {e}"

    def _find_ns(self, name: Any, deadline: float) -> tuple[bool, float]:
        ttl = MAX_POSITIVE_TTL
        current = name
        while True:
            ans = self._query(current, "NS", deadline)
            ttl = min(ttl, ans.ttl)
            if ans.kind == "answer":
                return True, ttl
            parent = current.parent()
            if len(parent.labels) - 1 < 2:  # labels include the root label
                return False, ttl
            current = parent

    def _query_soft(self, name: Any, rdtype: str, deadline: float) -> _Answer | None:
        try:
            return self._query(name, rdtype, deadline)
        except _Unverified:
            return None

    @staticmethod
    def _soft(future: Any, deadline: float) -> _Answer | None:
        from concurrent.futures import TimeoutError as FutureTimeout

        try:
            return future.result(  # type: ignore[no-any-return,unused-ignore]
                timeout=max(0.0, deadline - time.monotonic())
            )
        except (_Unverified, FutureTimeout):
            return None

    def _query(self, name: Any, rdtype: str, deadline: float) -> _Answer:
        import dns.exception
        import dns.resolver

        remaining = deadline - time.monotonic()
        if remaining <= 0.01:
            raise _Unverified("budget spent")
        try:
            answer = self._get_resolver().resolve(
                name, rdtype, raise_on_no_answer=False, lifetime=remaining, search=False
            )
        except dns.resolver.NXDOMAIN as e:
            return _Answer("nxdomain", None, _negative_ttl(e.responses().values()))
        except dns.exception.Timeout:
            raise _Unverified(f"{rdtype} timeout") from None
        except dns.resolver.NoNameservers:
            raise _Unverified(f"{rdtype} servfail/refused") from None
        except dns.exception.DNSException as e:
            raise _Unverified(f"{rdtype} {type(e).__name__}") from None
        except OSError as e:
            raise _Unverified(f"{rdtype} {e}") from None
        if answer.rrset is None:
            return _Answer("nodata", None, _negative_ttl([answer.response]))
        return _Answer("answer", answer.rrset, min(float(answer.rrset.ttl), MAX_POSITIVE_TTL))


def _negative_ttl(responses: Any) -> float:
    """RFC 2308: min(SOA TTL, SOA minimum) from the authority section, else a default."""
    import dns.rdatatype

    best: float | None = None
    for response in responses:
        for rrset in getattr(response, "authority", []):
            if rrset.rdtype == dns.rdatatype.SOA and len(rrset):
                ttl = float(min(rrset.ttl, rrset[0].minimum))
                best = ttl if best is None else min(best, ttl)
    return min(best if best is not None else DEFAULT_NEGATIVE_TTL, MAX_NEGATIVE_TTL)


# --------------------------------------------------------------------------------------------
# Disposable domains


def _read_domain_list(path: Path) -> set[str]:
    """One domain per line; `#` starts a comment; blank lines, `@` and `*.` prefixes ignored."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        log("disposable_list_unreadable", level="error", path=str(path), error=str(e))
        return set()
    out: set[str] = set()
    for line in text.splitlines():
        entry = line.split("#", 1)[0].strip().lower().rstrip(".")
        entry = entry.removeprefix("@").removeprefix("*.")
        if entry and " " not in entry:
            out.add(entry)
    return out


class DisposableDomains:
    """The disposable-email-domains blocklist plus the merchant's lists.

    A domain is disposable when it or any parent domain is on the blocklist (package list +
    blocklist file), unless it or any parent domain is on the allowlist (package allowlist +
    allowlist file): the allowlist always wins. The lists are read on first use.
    """

    def __init__(
        self, allowlist_path: str | None = None, blocklist_path: str | None = None
    ) -> None:
        self.allowlist_path = Path(allowlist_path) if allowlist_path else DEFAULT_ALLOWLIST
        self.blocklist_path = Path(blocklist_path) if blocklist_path else DEFAULT_BLOCKLIST

    def _load(self) -> tuple[frozenset[str], frozenset[str]]:
        return self._sets

    @cached_property
    def _sets(self) -> tuple[frozenset[str], frozenset[str]]:
        import disposable_email_domains as ded

        allow = set(getattr(ded, "allowlist", set()))
        allow |= _read_domain_list(self.allowlist_path)
        block = set(ded.blocklist) | _read_domain_list(self.blocklist_path)
        return (frozenset(allow), frozenset(block))

    def is_disposable(self, domain: str) -> bool:
        allow, block = self._load()
        labels = domain.lower().rstrip(".").split(".")
        suffixes = [".".join(labels[i:]) for i in range(len(labels))]
        if any(s in allow for s in suffixes):
            return False
        return any(s in block for s in suffixes)


# --------------------------------------------------------------------------------------------
# The whole check


def _ascii_domain(domain: str) -> str:
    if domain.isascii():
        return domain
    import idna

    return str(idna.encode(domain, uts46=True).decode("ascii"))


class RecipientChecker:
    """Syntax -> disposable -> DNS. Raises Undeliverable; DNS trouble fails open by default."""

    def __init__(
        self,
        dns: DnsChecker,
        disposable: DisposableDomains,
        test_environment: bool = False,
        dns_fail_open: bool = True,
    ) -> None:
        self.dns = dns
        self.disposable = disposable
        self.test_environment = test_environment
        self.dns_fail_open = dns_fail_open

    def check(self, email: str) -> RecipientResult:
        try:
            normalized = normalize_email(email, self.test_environment)
        except Undeliverable:
            log("recipient_check", outcome="syntax", email=mask_email(email))
            raise
        domain = normalized.rpartition("@")[2]
        try:
            ascii_domain = _ascii_domain(domain)
        except Exception:  # noqa: BLE001 - validated already; be safe anyway
            log("recipient_check", outcome="syntax", email=mask_email(normalized))
            raise Undeliverable("syntax", "This email address is not valid.") from None
        if self.disposable.is_disposable(ascii_domain):
            log("recipient_check", outcome="disposable", email=mask_email(normalized))
            raise Undeliverable(
                "disposable",
                f"Addresses at {domain} are disposable inboxes. Please use an address you "
                "will keep, so we can send your order updates.",
            )
        verdict = self.dns.verdict(ascii_domain)
        if verdict == OK:
            log("recipient_check", outcome="ok", email=mask_email(normalized))
            return RecipientResult(normalized, False)
        if verdict == UNVERIFIED:
            log(
                "recipient_check",
                level="warning",
                outcome="dns_unverified",
                fail_open=self.dns_fail_open,
                email=mask_email(normalized),
            )
            if self.dns_fail_open:
                return RecipientResult(normalized, True)
            raise RecipientCheckUnavailable(f"could not verify the mail domain {domain}")
        log("recipient_check", outcome=verdict, email=mask_email(normalized))
        messages = {
            NULL_MX: f"{domain} does not accept email. Please use a different address.",
            NO_SUCH_DOMAIN: f"The domain {domain} does not exist. Please check the address "
            "for typos.",
            NO_MAIL_SERVER: f"{domain} is not set up to receive email. Please check the "
            "address or use a different one.",
        }
        raise Undeliverable(verdict, messages.get(verdict, "We can't deliver to this address."))
