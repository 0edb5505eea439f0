"""Figure 1: end-to-end order latency with simulated network, ours vs a sequential baseline.

Network: the fake siteverify answers after 80 ms (its /_control delay_ms), the DNS server
answers every query after 30 ms (--delay-ms), and every SES SendEmail waits 60 ms (a botocore
`before-send.sesv2.SendEmail` hook on the app's SES client). moto, siteverify and DNS run as
child processes.

Ours: POST /orders through the real handler (chalice.test.Client -> app.py -> checkout),
which reads nothing first: the recipient check || Turnstile (every order here has a key new
to the container), then one create transaction, then both emails concurrently.

Baseline: the pipeline's own steps (chalicelib.checkout), one after another - Turnstile,
DNS MX, DNS NS, the DynamoDB reads (the seed's one BatchGetItem: `seed_reads`), the create
transaction, merchant mail + its status write,
customer mail + its status write. (Our recipient check skips NS when an MX answers; the
baseline asks both, as a naive implementation would. `baseline_no_ns` is reported too, for
the strict comparison.)

Fairness: every order (ours and baseline) uses a domain never seen before (the zone has one per
order) and the DNS cache is cleared before each order, so every order pays its DNS latency.
Ours and baseline alternate, start with the same warm connections, and moto is reset every 5
rounds: moto answers a Query by walking the whole table, so it gets slower as a table grows -
noise real DynamoDB does not have. (Its TransactWriteItems used to deep-copy every table it
touched; devstack/moto_server.py now rolls transactions back item by item: ~13 ms each,
whatever the table's size, was 60-85 ms at 200 items.)
"""

from __future__ import annotations

import json
import time
from typing import Any

from bench.common import ROOT, Servers, app_env, order_body, quiet_stdout, summary

SITEVERIFY_MS = 80
DNS_MS = 30
SES_MS = 60
RESET_EVERY = 5  # pairs; moto's queries walk the whole table


class SesDelay:
    """Sleeps SES_MS before every SendEmail of the clients it is attached to; counts them."""

    def __init__(self, ms: int) -> None:
        self.seconds = ms / 1000
        self.calls = 0
        self.attached = 0

    def __call__(self, **kwargs: Any) -> None:
        self.calls += 1
        time.sleep(self.seconds)

    def attach_to_app_clients(self) -> int:
        from chalicelib import aws

        n = 0
        for client in aws.all_clients():
            if client.meta.service_model.service_name == "sesv2":
                client.meta.events.register("before-send.sesv2.SendEmail", self)
                n += 1
        self.attached = n
        return n


def seed_reads(svc: Any, req: Any, key: str | None, ip: str) -> None:
    """What the seed read before writing, in one BatchGetItem: the idempotency record, every
    recipient's suppression, the rate windows (the app itself reads none of it now)."""
    from chalicelib import ddb
    from chalicelib.ratelimit import counter_pk
    from chalicelib.suppression import keys_for

    s = svc.settings
    wanted = {
        s.orders_table: [svc.store.idempotency_pk(key)] if key else [],
        s.suppression_table: list(
            dict.fromkeys(pk for a in (req.email, *s.merchant_emails) for pk in keys_for(a))
        ),
        s.rate_limit_table: [
            counter_pk("email", req.email),
            counter_pk("ip", ip),
            counter_pk("botfail_ip", ip),
        ],
    }
    found = ddb.batch_get(svc.dynamodb, {t: k for t, k in wanted.items() if k})
    if any(t == s.orders_table for t, _ in found):
        raise RuntimeError("unexpected replay")


def baseline_order(svc: Any, raw: bytes, key: str, ip: str, ask_ns: bool = True) -> dict[str, Any]:
    """The pipeline's own steps (chalicelib.checkout), every network step one after another:
    Turnstile, DNS MX (+ NS, as a naive check would), the DynamoDB reads, the create
    transaction, the merchant email, its status write, the receipt, its status write."""
    from concurrent.futures import Future

    from chalicelib import checkout, clock
    from chalicelib.orders import request_hash
    from chalicelib.outbox import deliver
    from chalicelib.recipients import normalize_email
    from chalicelib.store import ROLES

    s = svc.settings
    body, key_ok = checkout.read_request(checkout.IncomingOrder(raw, "application/json", key, ip))
    req = checkout.validate(body, svc)
    now_dt = clock.now()
    now = int(now_dt.timestamp())
    checkout.check_hours(svc, now_dt)
    digest = request_hash(checkout.submission_fields(body))
    bot: Future[None] = Future()
    bot.set_result(svc.turnstile.verify(req.turnstile_token, ip, key_ok))  # 1. Turnstile
    domain = normalize_email(req.email, s.email_test_environment).rpartition("@")[2]
    rc = svc.recipients
    if rc.disposable.is_disposable(domain):
        raise RuntimeError("disposable")
    import dns.name

    name = dns.name.from_text(domain)
    deadline = time.monotonic() + s.dns_timeout
    mx = rc.dns._query(name, "MX", deadline)  # 2. MX
    if ask_ns:
        rc.dns._query(name, "NS", deadline)  # 3. NS
    if mx.kind != "answer":
        raise RuntimeError(f"no MX for {domain}")
    rcpt: Future[Any] = Future()
    rcpt.set_result(None)
    seed_reads(svc, req, key_ok, ip)  # 4. reads (the seed read before it wrote)
    known = checkout.expect(svc, req, ip, now)
    flags = checkout.judge(svc, req, known, bot, rcpt, now)
    order = checkout.create_order(svc, req, key_ok, digest, now, flags, known)  # 5. store
    if not isinstance(order, dict):
        raise RuntimeError("unexpected replay")
    for role in ROLES:  # 6.-9. the two emails and their status writes, one after the other
        outcome = deliver(svc, order, role, now, known.suppressed)
        if outcome.status != "sent":
            raise RuntimeError(f"{role} email not sent")
        svc.store.record_sends(order, {role: outcome}, now)
        order["emails"][role] = {"status": outcome.status}
    return checkout.response_body(order)


def run(orders: int = 60) -> dict[str, Any]:
    from chalice.test import Client

    with Servers(dns_delay_ms=DNS_MS, domains=3 * orders + 20) as srv, app_env(srv.env):
        from app import app
        from chalicelib.recipients import clear_cache
        from chalicelib.services import services

        domains = iter(srv.domains)
        ses = SesDelay(SES_MS)
        times: dict[str, list[float]] = {"ours": [], "baseline": [], "baseline_no_ns": []}
        seq = 0

        with Client(app, stage_name="local", project_dir=str(ROOT)) as client, quiet_stdout():

            def ours() -> float:
                nonlocal seq
                seq += 1
                raw = json.dumps(order_body(f"o{seq}@{next(domains)}")).encode()
                headers = {
                    "Content-Type": "application/json",
                    "Idempotency-Key": f"bench-o-{seq:05d}",
                }
                clear_cache()
                before_sv, before_ses = srv.siteverify_requests(), ses.calls
                t = time.perf_counter()
                r = client.http.post("/orders", headers=headers, body=raw)
                dt = time.perf_counter() - t
                if r.status_code != 201:
                    raise RuntimeError(f"ours: {r.status_code} {r.body[:300]!r}")
                if srv.siteverify_requests() != before_sv + 1:
                    raise RuntimeError("ours did not call siteverify: is Turnstile wired in?")
                if ses.attached and ses.calls != before_ses + 2:
                    raise RuntimeError(f"ours sent {ses.calls - before_ses} emails through SES")
                return dt * 1000

            def baseline(ask_ns: bool) -> float:
                nonlocal seq
                seq += 1
                raw = json.dumps(order_body(f"b{seq}@{next(domains)}")).encode()
                clear_cache()
                before_ses = ses.calls
                t = time.perf_counter()
                baseline_order(services(), raw, f"bench-b-{seq:05d}", "127.0.0.1", ask_ns)
                dt = time.perf_counter() - t
                if ses.attached and ses.calls != before_ses + 2:
                    raise RuntimeError("baseline did not send two emails")
                return dt * 1000

            # warm-up without delays: imports, boto3 clients, connection pools, thread pools
            for _ in range(3):
                ours()
                baseline(True)
            if ses.attach_to_app_clients() == 0:
                raise RuntimeError("no sesv2 client found in chalicelib.aws to delay")
            srv.siteverify_delay(SITEVERIFY_MS)
            ours()  # one delayed order each before measuring (hook and delays active)
            baseline(True)
            for i in range(orders):
                if i % RESET_EVERY == 0:
                    srv.reset_moto()
                runs = [
                    ("ours", lambda: ours()),
                    ("baseline", lambda: baseline(True)),
                    ("baseline_no_ns", lambda: baseline(False)),
                ]
                if i % 2:
                    runs.reverse()
                for label, fn in runs:
                    times[label].append(fn())

    stats = {k: summary(v) for k, v in times.items()}
    return {
        "orders": orders,
        "network": {"siteverify_ms": SITEVERIFY_MS, "dns_ms_per_query": DNS_MS, "ses_ms": SES_MS},
        "ms": stats,
        "ratio_p50": stats["ours"]["p50"] / stats["baseline"]["p50"],
        "ratio_p95": stats["ours"]["p95"] / stats["baseline"]["p95"],
        "ratio_p50_vs_no_ns": stats["ours"]["p50"] / stats["baseline_no_ns"]["p50"],
        "ratio_p95_vs_no_ns": stats["ours"]["p95"] / stats["baseline_no_ns"]["p95"],
    }


if __name__ == "__main__":
    print(json.dumps(run(20), indent=2))
