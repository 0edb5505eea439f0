"""`make load`: concurrent shoppers against the whole local stack, then consistency checks.

    python -m load.run                             # 50 shoppers for 60 s
    python -m load.run --duration 5 --shoppers 5   # a smoke run

Starts `devstack.stack.Stack` on free ports (moto, siteverify, DNS, chalice local, dev web
server) with the rate limits raised, places one warm-up order, then runs N shopper threads
(arriving over --ramp seconds), each with its own requests.Session, placing orders through the
web server's /api (loopback only) until the time is up. Like the storefront, a shopper waits
up to 20 s per attempt; on a timeout or a connection error it retries with the same
Idempotency-Key and body, and on 429/502/503/504 it retries after Retry-After (capped at 5 s),
also with the same key. At the end it checks:

* no 5xx answer at any attempt, and every 4xx is a status/code documented in docs/openapi.yaml;
* every accepted order is stored exactly once (one order per Idempotency-Key, and the order
  id the client got is the stored one), and nothing else was stored;
* every stored order has exactly one merchant alert and one receipt in moto's mail (matched
  by the order id in the subject), both recorded as sent, and no other mail. If some are
  missing when the load ends (a send or its record timed out), the app's outbox sweeper is
  run once (clock an hour ahead) and the mail is checked again: that is the promised
  behaviour, and duplicates would show up here.

Prints throughput and latency percentiles; exits 1 if a check fails, 2 if the stack fails.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DUMMY_TOKEN = "XXXX.DUMMY.TOKEN.XXXX"
SKUS = ["green-machine", "sunrise-citrus", "beet-it", "pineapple-mint", "carrot-ginger"]
RETRY_AFTER_CAP = 5.0


def documented_codes() -> dict[int, set[str]]:
    """{status: error codes} for POST /orders, read from docs/openapi.yaml."""
    import yaml

    spec = yaml.safe_load((ROOT / "docs" / "openapi.yaml").read_text(encoding="utf-8"))

    def resolve(node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node:
            out: Any = spec
            for part in node["$ref"][2:].split("/"):
                out = out[part]
            node = out
        return node

    codes: dict[int, set[str]] = {}
    for status, raw in spec["paths"]["/orders"]["post"]["responses"].items():
        schema = resolve(
            resolve(raw).get("content", {}).get("application/json", {}).get("schema", {})
        )
        found = set()
        for alt in schema.get("oneOf", [schema]):
            code = resolve(alt).get("properties", {}).get("error", {}).get("properties", {})
            if "const" in code.get("code", {}):
                found.add(code["code"]["const"])
        codes[int(status)] = found
    return codes


def _kind(problem: str) -> str:
    """A problem's category: '503:service_unavailable', 'mail missing', ..."""
    if problem.startswith("mail "):
        return " ".join(problem.split(" ", 2)[:2]).rstrip(":")
    if " for " in problem:
        return problem.split(" for ", 1)[0]
    return problem.split(":", 1)[0][:40]


def _brief(mail: dict[str, Any]) -> dict[str, Any]:
    return {k: (len(v) if isinstance(v, list) else v) for k, v in mail.items()}


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))]


@dataclass
class Tally:
    lock: threading.Lock = field(default_factory=threading.Lock)
    attempts: Counter[str] = field(default_factory=Counter)  # "201", "422:validation_failed", ...
    attempt_ms: list[float] = field(default_factory=list)
    order_ms: list[float] = field(default_factory=list)
    accepted: dict[str, str] = field(default_factory=dict)  # idempotency key -> order id
    abandoned: list[str] = field(default_factory=list)  # keys given up on (unknown outcome)
    rejected: list[str] = field(default_factory=list)  # keys answered with a final 4xx
    retries: Counter[str] = field(default_factory=Counter)  # why
    problems: list[str] = field(default_factory=list)
    replays: int = 0


def order_body(shopper: int, n: int) -> dict[str, Any]:
    sku = SKUS[(shopper + n) % len(SKUS)]
    return {
        "name": f"Load Shopper {shopper}",
        "email": f"shopper{shopper}.{n}@deliverable.test",
        "phone": "(212) 555-0143",
        "shipping": {
            "line1": f"{100 + n} Main Street",
            "line2": "",
            "city": "New York",
            "state": "NY",
            "zip": "10001",
        },
        "items": [{"sku": sku, "qty": 3}],
        "turnstile_token": DUMMY_TOKEN,
        "website": "",
    }


def shopper(
    idx: int,
    base: str,
    start_at: float,
    deadline: float,
    timeout: float,
    max_attempts: int,
    tally: Tally,
    documented: dict[int, set[str]],
) -> None:
    import requests

    session = requests.Session()
    time.sleep(max(0.0, start_at - time.monotonic()))
    n = 0
    while time.monotonic() < deadline:
        n += 1
        key = f"load-{idx:03d}-{n:05d}-{uuid.uuid4().hex[:8]}"
        body = json.dumps(order_body(idx, n))
        headers = {"Content-Type": "application/json", "Idempotency-Key": key}
        started = time.perf_counter()
        outcome = None
        for attempt in range(1, max_attempts + 1):
            t = time.perf_counter()
            try:
                r = session.post(f"{base}/api/orders", data=body, headers=headers, timeout=timeout)
            except (requests.Timeout, requests.ConnectionError) as e:
                with tally.lock:
                    tally.attempts[f"client:{type(e).__name__}"] += 1
                    tally.retries[type(e).__name__] += 1
                session = requests.Session()  # a fresh connection, same key and body
                continue
            ms = (time.perf_counter() - t) * 1000
            code = ""
            try:
                data = r.json()
                code = data.get("error", {}).get("code", "") if r.status_code >= 400 else ""
            except ValueError:
                data = None
            label = f"{r.status_code}:{code}" if code else str(r.status_code)
            with tally.lock:
                tally.attempts[label] += 1
                tally.attempt_ms.append(ms)
                if r.status_code >= 500:
                    tally.problems.append(
                        f"{label} for {key} (attempt {attempt}, after {ms / 1000:.1f} s)"
                    )
                elif 400 <= r.status_code < 500 and code not in documented.get(
                    r.status_code, set()
                ):
                    tally.problems.append(f"undocumented {label} for {key}")
                if r.headers.get("Idempotent-Replayed") == "true":
                    tally.replays += 1
            if r.status_code in (429, 502, 503, 504):
                wait = min(RETRY_AFTER_CAP, float(r.headers.get("Retry-After") or 1))
                with tally.lock:
                    tally.retries[str(r.status_code)] += 1
                time.sleep(wait)
                continue
            outcome = (r.status_code, data)
            break
        with tally.lock:
            if outcome is None:
                tally.abandoned.append(key)
            elif outcome[0] == 201 and isinstance(outcome[1], dict):
                tally.accepted[key] = outcome[1]["order_id"]
                tally.order_ms.append((time.perf_counter() - started) * 1000)
            else:
                tally.rejected.append(key)


def warm_up(base: str, tally: Tally) -> None:
    """One order before the clock starts (a warm container: lazy imports and clients done).
    It is checked like every other order."""
    import requests

    key = f"load-warmup-{uuid.uuid4().hex[:12]}"
    r = requests.post(
        f"{base}/api/orders",
        data=json.dumps(order_body(999, 0)),
        headers={"Content-Type": "application/json", "Idempotency-Key": key},
        timeout=60,
    )
    if r.status_code != 201:
        raise RuntimeError(f"warm-up order: {r.status_code} {r.text[:300]}")
    tally.accepted[key] = r.json()["order_id"]


def settle_mail(stack: Any, quiet_for: float = 2.0, limit: float = 600.0) -> list[dict[str, Any]]:
    """moto's mail once two reads at least `quiet_for` seconds apart agree. moto's data.json
    dumps every backend (the orders table too), which takes a while after a big run: hence
    the long read timeout."""
    deadline = time.monotonic() + limit
    mail: list[dict[str, Any]] = stack.sent_mail(timeout=600)
    while time.monotonic() < deadline:
        time.sleep(quiet_for)
        again = stack.sent_mail(timeout=600)
        if len(again) == len(mail):
            return again
        mail = again
    return mail


def check_storage(orders: list[dict[str, Any]], tally: Tally) -> list[str]:
    problems = []
    by_key: dict[str, list[dict[str, Any]]] = {}
    for o in orders:
        by_key.setdefault(str(o.get("idempotency_key")), []).append(o)
    for key, group in by_key.items():
        if len(group) != 1:
            problems.append(f"{len(group)} stored orders for Idempotency-Key {key}")
    for key, oid in tally.accepted.items():
        stored = by_key.get(key, [])
        if not stored:
            problems.append(f"accepted order {oid} ({key}) is not stored")
        elif stored[0]["order_id"] != oid:
            problems.append(f"{key}: client got {oid}, stored {stored[0]['order_id']}")
    finished = set(tally.accepted) | set(tally.abandoned)
    for key in by_key:
        if key not in finished:
            problems.append(f"stored order {by_key[key][0]['order_id']} for {key}, not accepted")
    return problems


def check_mail(orders: list[dict[str, Any]], mail: list[dict[str, Any]]) -> dict[str, Any]:
    """Per stored order: exactly one merchant alert and one receipt (by order id in the
    subject), both recorded as sent; no mail for anything else."""
    ids = {o["order_id"]: o for o in orders}
    per: Counter[tuple[str, str]] = Counter()
    stray = []
    for m in mail:
        subject = str(m.get("subject", ""))
        oid = subject.rsplit(" ", 1)[-1]
        if oid not in ids:
            stray.append(subject)
            continue
        per[(oid, "merchant" if subject.startswith("New order") else "customer")] += 1
    missing, duplicated, unrecorded = [], [], []
    for oid, order in ids.items():
        for role in ("merchant", "customer"):
            n = per[(oid, role)]
            if n == 0:
                missing.append(f"{oid}:{role}")
            elif n > 1:
                duplicated.append(f"{oid}:{role} x{n}")
            status = order.get("emails", {}).get(role, {}).get("status")
            if n == 1 and status != "sent":
                unrecorded.append(f"{oid}:{role} sent but recorded {status!r}")
    return {
        "messages": len(mail),
        "expected": 2 * len(ids),
        "missing": missing,
        "duplicated": duplicated,
        "unrecorded": unrecorded,
        "stray": stray,
    }


def sweep_outbox(stack: Any, ahead_s: int = 3600) -> list[dict[str, int]]:
    """Run the app's outbox sweeper in-process against the stack, with the clock `ahead_s`
    seconds ahead (leases and backoffs expired): what the 5-minute schedule would do."""
    from datetime import timedelta
    from unittest import mock

    from bench.common import app_env
    from chalicelib import clock
    from chalicelib.services import run_sweeper

    real_now = clock.now()
    passes = []
    with app_env(stack.env):
        with mock.patch("chalicelib.clock.now", return_value=real_now + timedelta(seconds=ahead_s)):
            for _ in range(50):
                counts = run_sweeper()
                passes.append(counts)
                if not counts.get("orders"):
                    break
    return passes


def verify(stack: Any, tally: Tally) -> tuple[list[str], dict[str, Any]]:
    """-> (problems, details). Mail is checked as the load left it and again after one
    sweeper run (emails whose send or record timed out under load are the sweeper's job)."""
    problems = list(tally.problems)
    orders = stack.orders(limit=10**8)
    problems += check_storage(orders, tally)
    at_end = check_mail(orders, settle_mail(stack))
    details: dict[str, Any] = {"stored_orders": len(orders), "mail_at_end_of_load": at_end}
    if at_end["missing"] or at_end["unrecorded"]:
        details["sweeper_passes"] = sweep_outbox(stack)
        orders = stack.orders(limit=10**8)
        after = check_mail(orders, settle_mail(stack))
        details["mail_after_sweeper"] = after
    else:
        after = at_end
    for what in ("missing", "duplicated", "unrecorded", "stray"):
        problems += [f"mail {what}: {x}" for x in after[what]]
    return problems, details


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--duration", type=float, default=60.0, help="seconds of load (default 60)")
    p.add_argument("--shoppers", type=int, default=50, help="concurrent shoppers (default 50)")
    p.add_argument(
        "--timeout", type=float, default=20.0, help="client timeout per attempt, s (storefront: 20)"
    )
    p.add_argument("--attempts", type=int, default=6, help="attempts per order")
    p.add_argument(
        "--ramp", type=float, default=5.0, help="seconds over which the shoppers arrive (default 5)"
    )
    p.add_argument("--out", default="", help="also write the results as JSON here")
    a = p.parse_args(argv)

    import tempfile

    from devstack.stack import Stack

    # thousands of orders: delivery-day capacity out of the way (a full day is a 422)
    roomy = Path(tempfile.mkdtemp()) / "shop.json"
    roomy.write_text(json.dumps({"delivery": {"capacity_per_day": 1_000_000}}))
    env = {
        "RATE_LIMIT_IP": "100000/600",
        "RATE_LIMIT_EMAIL": "100000/600",
        "BUSINESS_HOURS": "always",
        "SHOP_PROFILE": str(roomy),
    }
    documented = documented_codes()
    tally = Tally()
    print("[load] starting the local stack ...", file=sys.stderr, flush=True)
    try:
        stack = Stack(env=env).start()
    except Exception as e:  # noqa: BLE001 - report and exit 2
        print(f"[load] the stack did not start: {e}", file=sys.stderr)
        return 2
    try:
        print(
            f"[load] {a.shoppers} shoppers for {a.duration:.0f} s against {stack.url}",
            file=sys.stderr,
            flush=True,
        )
        warm_up(stack.url, tally)
        started = time.monotonic()
        deadline = started + a.duration
        threads = [
            threading.Thread(
                target=shopper,
                args=(
                    i,
                    stack.url,
                    started + a.ramp * i / a.shoppers,
                    deadline,
                    a.timeout,
                    a.attempts,
                    tally,
                    documented,
                ),
                name=f"shopper-{i}",
                daemon=True,
            )
            for i in range(a.shoppers)
        ]
        for t in threads:
            t.start()
        timeline: list[dict[str, int]] = []
        last = 0
        while any(t.is_alive() for t in threads):
            for t in threads:
                t.join(timeout=max(0.0, 10.0 / len(threads)))
            now = time.monotonic() - started
            if now >= 10 * (len(timeline) + 1):
                with tally.lock:
                    done, p50 = len(tally.accepted), pct(tally.attempt_ms[-200:], 50)
                timeline.append({"t": round(now), "accepted": done, "recent_p50_ms": round(p50)})
                print(
                    f"[load] {now:5.0f} s: {done} accepted (+{done - last}), "
                    f"recent request p50 {p50:.0f} ms",
                    file=sys.stderr,
                    flush=True,
                )
                last = done
        elapsed = time.monotonic() - started
        dead = stack.dead()
        print(f"[load] load done in {elapsed:.1f} s; checking ...", file=sys.stderr, flush=True)
        problems, details = verify(stack, tally)
        if dead:
            problems.append(f"stack processes died: {dead}")
    finally:
        stack.stop()

    accepted = len(tally.accepted)
    result = {
        "shoppers": a.shoppers,
        "duration_s": round(elapsed, 1),
        "accepted_orders": accepted,
        "throughput_orders_per_s": round(accepted / elapsed, 2),
        "timeline": timeline,
        "attempts": dict(tally.attempts),
        "retries": dict(tally.retries),
        "replays": tally.replays,
        "abandoned": len(tally.abandoned),
        "rejected": len(tally.rejected),
        "request_ms": {
            "p50": round(pct(tally.attempt_ms, 50), 1),
            "p95": round(pct(tally.attempt_ms, 95), 1),
            "max": round(max(tally.attempt_ms, default=float("nan")), 1),
        },
        "order_ms": {
            "p50": round(pct(tally.order_ms, 50), 1),
            "p95": round(pct(tally.order_ms, 95), 1),
        },
        **{k: (v if not isinstance(v, dict) else _brief(v)) for k, v in details.items()},
        "problem_kinds": dict(Counter(_kind(p) for p in problems)),
        "problems": problems[:50],
        "problem_count": len(problems),
    }
    print(json.dumps(result, indent=2))
    if tally.attempt_ms:
        print(
            f"\nthroughput {result['throughput_orders_per_s']} orders/s "
            f"({accepted} accepted in {elapsed:.0f} s, {a.shoppers} shoppers); "
            f"request p50 {result['request_ms']['p50']} ms, p95 {result['request_ms']['p95']} ms; "
            f"mean {statistics.fmean(tally.attempt_ms):.0f} ms",
        )
    if a.out:
        Path(a.out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    if problems:
        kinds = ", ".join(f"{k} x{n}" for k, n in Counter(_kind(p) for p in problems).most_common())
        print(f"\nFAIL: {len(problems)} problem(s): {kinds}")
        return 1
    print(
        "\nPASS: no 5xx, only documented 4xx, every order stored once with one alert + one receipt"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
