"""Recipient checks against the real local DNS server (devstack/dns_server.py + zone.txt)."""

from __future__ import annotations

import io
import json
import time
from contextlib import redirect_stdout
from pathlib import Path
from unittest import mock

import pytest

from chalicelib import recipients
from chalicelib.recipients import (
    DisposableDomains,
    DnsChecker,
    RecipientChecker,
    RecipientCheckUnavailable,
    RecipientResult,
    Undeliverable,
)
from devstack.dns_server import DnsServer


def checker(
    server: DnsServer,
    budget: float = 1.0,
    fail_open: bool = True,
    disposable: DisposableDomains | None = None,
) -> RecipientChecker:
    return RecipientChecker(
        DnsChecker((server.nameserver,), budget=budget),
        disposable or DisposableDomains(),
        test_environment=True,
        dns_fail_open=fail_open,
    )


def reason_of(rc: RecipientChecker, email: str) -> str:
    with pytest.raises(Undeliverable) as e:
        rc.check(email)
    assert e.value.message  # a human message for the customer
    return e.value.reason


# ---- syntax and disposable: decided before any DNS query ---------------------------------


@pytest.mark.parametrize("email", ["not-an-email", "jane@", "jane@@deliverable.test", "a b@x.test"])
def test_bad_syntax(dns_server: DnsServer, email: str) -> None:
    assert reason_of(checker(dns_server), email) == "syntax"
    assert dns_server.queries == []


def test_test_domains_need_the_test_environment(dns_server: DnsServer) -> None:
    rc = RecipientChecker(DnsChecker((dns_server.nameserver,)), DisposableDomains())
    assert reason_of(rc, "jane@deliverable.test") == "syntax"


@pytest.mark.parametrize(
    "email", ["x@mailinator.com", "x@eu.mailinator.com", "x@a.b.MAILINATOR.com"]
)
def test_disposable_domain_and_its_subdomains(dns_server: DnsServer, email: str) -> None:
    assert reason_of(checker(dns_server), email) == "disposable"
    assert dns_server.queries == []


def test_default_merchant_blocklist_is_read(dns_server: DnsServer) -> None:
    assert reason_of(checker(dns_server), "jane@throwaway.test") == "disposable"


def test_allowlist_wins_over_the_package_list(tmp_path: Path) -> None:
    allow = tmp_path / "allow.txt"
    allow.write_text("# our regulars\nMailinator.com.   # trailing dot, odd case\n")
    d = DisposableDomains(allowlist_path=str(allow))
    assert d.is_disposable("mailinator.com") is False
    assert d.is_disposable("eu.mailinator.com") is False
    assert d.is_disposable("guerrillamail.com") is True


def test_allowlist_override_reaches_dns(dns_server: DnsServer, tmp_path: Path) -> None:
    allow = tmp_path / "allow.txt"
    allow.write_text("mailinator.com\n")
    rc = checker(dns_server, disposable=DisposableDomains(allowlist_path=str(allow)))
    result = rc.check("x@mailinator.com")
    # our authoritative test server refuses names outside its zones -> unverified, fail open
    assert result == RecipientResult("x@mailinator.com", True)
    assert dns_server.query_count("mailinator.com", "MX") == 1


def test_blocklist_adds_domains(dns_server: DnsServer, tmp_path: Path) -> None:
    block = tmp_path / "block.txt"
    block.write_text("deliverable.test\n*.a-only.test\n@aaaa-only.test\n\n# null-mx.test\n")
    rc = checker(dns_server, disposable=DisposableDomains(blocklist_path=str(block)))
    assert reason_of(rc, "jane@deliverable.test") == "disposable"
    assert reason_of(rc, "jane@mx1.deliverable.test") == "disposable"
    assert reason_of(rc, "jane@a-only.test") == "disposable"
    assert reason_of(rc, "jane@aaaa-only.test") == "disposable"
    assert reason_of(rc, "jane@null-mx.test") == "null_mx"  # commented out: not blocked
    # the package list still applies next to the file
    assert reason_of(rc, "x@mailinator.com") == "disposable"


def test_allowlist_beats_blocklist(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("good.spam.example\n")
    (tmp_path / "b.txt").write_text("spam.example\n")
    d = DisposableDomains(str(tmp_path / "a.txt"), str(tmp_path / "b.txt"))
    assert d.is_disposable("x.spam.example") is True
    assert d.is_disposable("good.spam.example") is False
    assert d.is_disposable("mx.good.spam.example") is False


def test_missing_list_file_is_logged_not_fatal(tmp_path: Path) -> None:
    out = io.StringIO()
    with redirect_stdout(out):
        d = DisposableDomains(blocklist_path=str(tmp_path / "nope.txt"))
        assert d.is_disposable("mailinator.com") is True
        assert d.is_disposable("deliverable.test") is False
    assert '"event":"disposable_list_unreadable"' in out.getvalue()


# ---- DNS verdicts --------------------------------------------------------------------------


def test_mx_domain_is_ok_and_normalised(dns_server: DnsServer) -> None:
    result = checker(dns_server).check("Jane.Doe@Deliverable.TEST")
    assert result == RecipientResult("Jane.Doe@deliverable.test", False)
    assert dns_server.query_count("deliverable.test", "MX") == 1
    assert dns_server.query_count("deliverable.test", "NS") == 0  # MX decides on its own


@pytest.mark.parametrize(
    ("email", "reason"),
    [
        ("jane@null-mx.test", "null_mx"),
        ("jane@example.com", "null_mx"),
        ("jane@does-not-exist.test", "no_such_domain"),
        ("jane@x.y.deliverable.test", "no_such_domain"),
        ("jane@no-ns.test", "no_mail_server"),
        ("jane@no-mail.test", "no_mail_server"),
    ],
)
def test_undeliverable_domains(dns_server: DnsServer, email: str, reason: str) -> None:
    assert reason_of(checker(dns_server), email) == reason


@pytest.mark.parametrize(
    "domain", ["a-only.test", "aaaa-only.test", "mx1.deliverable.test", "juice.example.com"]
)
def test_deliverable_without_mx_records(dns_server: DnsServer, domain: str) -> None:
    assert checker(dns_server).check(f"jane@{domain}") == RecipientResult(f"jane@{domain}", False)


def test_a_only_domain_is_checked_for_ns_and_address(dns_server: DnsServer) -> None:
    checker(dns_server).check("jane@a-only.test")
    assert dns_server.query_count("a-only.test", "MX") == 1
    assert dns_server.query_count("a-only.test", "NS") == 1
    assert dns_server.query_count("a-only.test", "A") == 1


def test_no_ns_walks_up_but_never_asks_the_tld(dns_server: DnsServer) -> None:
    checker(dns_server).check("jane@mx1.deliverable.test")
    assert dns_server.query_count("mx1.deliverable.test", "NS") == 1
    assert dns_server.query_count("deliverable.test", "NS") == 1  # found the zone's NS
    dns_server.clear_queries()
    assert reason_of(checker(dns_server), "jane@no-ns.test") == "no_mail_server"
    assert dns_server.query_count("no-ns.test", "NS") == 1
    assert dns_server.query_count("test", "NS") == 0


def test_idn_domain_is_queried_in_ascii(dns_server: DnsServer) -> None:
    assert reason_of(checker(dns_server), "jane@bücher.test") == "no_such_domain"
    assert dns_server.query_count("xn--bcher-kva.test", "MX") == 1


# ---- DNS trouble: fail open (or closed) within the budget ----------------------------------


def test_servfail_is_unverified_and_fails_open(dns_server: DnsServer) -> None:
    dns_server.mode = "servfail"
    assert checker(dns_server).check("jane@deliverable.test") == RecipientResult(
        "jane@deliverable.test", True
    )


def test_servfail_name_in_the_zone(dns_server: DnsServer) -> None:
    assert checker(dns_server).check("jane@servfail.test").dns_unverified is True


def test_unresponsive_resolver_is_unverified_within_budget(slow_dns_server: DnsServer) -> None:
    rc = checker(slow_dns_server, budget=0.4)
    started = time.monotonic()
    result = rc.check("jane@deliverable.test")
    elapsed = time.monotonic() - started
    assert result.dns_unverified is True
    assert 0.35 <= elapsed < 0.55, elapsed
    assert slow_dns_server.query_count("deliverable.test", "MX") >= 1  # it was asked


def test_timeout_name_is_unverified_within_budget(dns_server: DnsServer) -> None:
    started = time.monotonic()
    assert checker(dns_server, budget=0.3).check("jane@timeout.test").dns_unverified is True
    assert time.monotonic() - started < 0.45


def test_slow_but_within_budget_answers(dns_server: DnsServer) -> None:
    dns_server.delay_ms = 150
    result = checker(dns_server, budget=1.0).check("jane@a-only.test")
    assert result == RecipientResult("jane@a-only.test", False)


def test_fail_open_off_raises_unavailable(slow_dns_server: DnsServer) -> None:
    with pytest.raises(RecipientCheckUnavailable):
        checker(slow_dns_server, budget=0.3, fail_open=False).check("jane@deliverable.test")


def test_fail_open_off_still_rejects_what_dns_answered(dns_server: DnsServer) -> None:
    assert reason_of(checker(dns_server, fail_open=False), "jane@nope.test") == "no_such_domain"


# ---- cache ---------------------------------------------------------------------------------


def test_cache_hit_costs_no_dns_query_and_little_time(dns_server: DnsServer) -> None:
    rc = checker(dns_server)
    rc.check("jane@deliverable.test")
    before = len(dns_server.queries)
    assert before == 1
    # another checker (the app may build one per request) shares the process cache
    rc2 = checker(dns_server)
    n = 500
    with redirect_stdout(io.StringIO()):
        started = time.perf_counter()
        for _ in range(n):
            assert rc2.check("Jane@deliverable.test").dns_unverified is False
        per_check = (time.perf_counter() - started) / n
    assert len(dns_server.queries) == before
    assert per_check < 0.001, per_check  # typically ~0.03 ms; generous for slow CI


def test_negative_answers_are_cached_too(dns_server: DnsServer) -> None:
    rc = checker(dns_server)
    for _ in range(3):
        assert reason_of(rc, "jane@nope.test") == "no_such_domain"
        assert reason_of(rc, "jane@no-mail.test") == "no_mail_server"
    assert dns_server.query_count("nope.test") == 1
    assert dns_server.query_count("no-mail.test", "MX") == 1


def test_cache_honours_ttls(dns_server: DnsServer) -> None:
    now = [1000.0]
    rc = checker(dns_server)
    with mock.patch.object(recipients, "_clock", lambda: now[0]):
        rc.check("jane@short-ttl.test")  # MX TTL 2 s
        assert reason_of(rc, "jane@nope.test") == "no_such_domain"  # SOA minimum 60 s
        now[0] += 1.5
        rc.check("jane@short-ttl.test")
        assert dns_server.query_count("short-ttl.test", "MX") == 1
        now[0] += 1.0
        rc.check("jane@short-ttl.test")
        assert dns_server.query_count("short-ttl.test", "MX") == 2
        now[0] = 1000 + 59
        reason_of(rc, "jane@nope.test")
        assert dns_server.query_count("nope.test", "MX") == 1
        now[0] = 1000 + 61
        reason_of(rc, "jane@nope.test")
        assert dns_server.query_count("nope.test", "MX") == 2


def test_unverified_is_cached_only_briefly(dns_server: DnsServer) -> None:
    now = [5000.0]
    rc = checker(dns_server)
    dns_server.mode = "servfail"
    with mock.patch.object(recipients, "_clock", lambda: now[0]):
        assert rc.check("jane@deliverable.test").dns_unverified is True
        assert rc.check("jane@deliverable.test").dns_unverified is True
        assert dns_server.query_count("deliverable.test", "MX") == 1
        dns_server.mode = "normal"
        now[0] += recipients.UNVERIFIED_TTL + 0.1
        assert rc.check("jane@deliverable.test").dns_unverified is False
        assert dns_server.query_count("deliverable.test", "MX") == 2


def test_cache_is_per_nameserver_set(dns_server: DnsServer) -> None:
    with DnsServer(mode="servfail") as other:
        assert checker(dns_server).check("jane@deliverable.test").dns_unverified is False
        assert checker(other).check("jane@deliverable.test").dns_unverified is True


# ---- plumbing ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "parsed"),
    [
        ("127.0.0.1", ("127.0.0.1", 53)),
        ("127.0.0.1:5353", ("127.0.0.1", 5353)),
        ("[::1]:5353", ("::1", 5353)),
        ("[::1]", ("::1", 53)),
        ("2001:db8::53", ("2001:db8::53", 53)),
    ],
)
def test_nameserver_entries(entry: str, parsed: tuple[str, int]) -> None:
    assert recipients._parse_nameserver(entry) == parsed


def test_logs_mask_the_address(dns_server: DnsServer) -> None:
    out = io.StringIO()
    with redirect_stdout(out):
        checker(dns_server).check("jane.doe@deliverable.test")
        reason_of(checker(dns_server), "jane.doe@null-mx.test")
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    checks = [r for r in records if r["event"] == "recipient_check"]
    assert [r["outcome"] for r in checks] == ["ok", "null_mx"]
    assert "jane.doe" not in out.getvalue()
    verdicts = [r for r in records if r["event"] == "dns_verdict"]
    assert [r["verdict"] for r in verdicts] == ["ok", "null_mx"]


def test_dns_server_answers_over_tcp_with_soa_in_negative_answers(dns_server: DnsServer) -> None:
    import dns.message
    import dns.query
    import dns.rcode
    import dns.rdatatype

    q = dns.message.make_query("nope.test", "MX")
    r = dns.query.tcp(q, "127.0.0.1", port=dns_server.port, timeout=2)
    assert r.rcode() == dns.rcode.NXDOMAIN
    soa = [rr for rr in r.authority if rr.rdtype == dns.rdatatype.SOA]
    assert soa and soa[0].ttl == 60
    r = dns.query.tcp(
        dns.message.make_query("no-ns.test", "NS"), "127.0.0.1", port=dns_server.port, timeout=2
    )
    assert r.rcode() == dns.rcode.NOERROR and not r.answer and r.authority
    r = dns.query.udp(
        dns.message.make_query("gmail.com", "MX"), "127.0.0.1", port=dns_server.port, timeout=2
    )
    assert r.rcode() == dns.rcode.REFUSED
    assert [p for _, _, p in dns_server.queries] == ["tcp", "tcp", "udp"]
