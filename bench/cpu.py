"""Figure 2: handler CPU per accepted order, network answered instantly.

Every order goes through chalice.test.Client -> app.py -> checkout (POST /orders), with moto,
siteverify and DNS answering without delay in child processes. CPU is `time.process_time()`
of this process around each request: the handler's own thread plus the pool threads it uses
(Turnstile, DNS, the two sends); the servers' CPU is in other processes and not counted.
Logs go to /dev/null. The DNS verdict for the domain is cached after the first order
(the steady state of a warm container).

Baseline: GET /catalog through the same client (routing, settings, JSON; no I/O).

Attribution: `time.thread_time()` deltas around the main components (in whichever thread
they run): botocore API calls (DynamoDB + SES), email rendering (Jinja2), Turnstile
(requests), the recipient check (email-validator + dnspython), validation (parse_order).
"""

from __future__ import annotations

import functools
import json
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from bench.common import ROOT, Servers, app_env, order_body, quiet_stdout, summary

RESET_EVERY = 50


class Attribution:
    """thread_time spent inside wrapped functions, per component (outermost call only)."""

    def __init__(self) -> None:
        self.us: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self._depth = threading.local()
        self._lock = threading.Lock()
        self.undo: list[Callable[[], None]] = []

    def wrap(self, owner: Any, attr: str, label: str) -> None:
        original = getattr(owner, attr)

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            depth = getattr(self._depth, label, 0)
            setattr(self._depth, label, depth + 1)
            t = time.thread_time()
            try:
                return original(*args, **kwargs)
            finally:
                setattr(self._depth, label, depth)
                if depth == 0:
                    spent = (time.thread_time() - t) * 1e6
                    with self._lock:
                        self.us[label] += spent
                        self.calls[label] += 1

        setattr(owner, attr, timed)
        self.undo.append(lambda: setattr(owner, attr, original))

    def reset(self) -> None:
        with self._lock:
            self.us.clear()
            self.calls.clear()

    def restore(self) -> None:
        for fn in reversed(self.undo):
            fn()


def run(orders: int = 300) -> dict[str, Any]:
    from chalice.test import Client

    with Servers(dns_delay_ms=0, domains=10) as srv, app_env(srv.env):
        import botocore.client

        from app import app
        from chalicelib import checkout, mail, recipients, turnstile

        cpu_us: list[float] = []
        wall_ms: list[float] = []
        attr = Attribution()
        with Client(app, stage_name="local", project_dir=str(ROOT)) as client, quiet_stdout():

            def one(i: int) -> tuple[float, float]:
                raw = json.dumps(order_body(f"cpu{i}@d0001.bench.test")).encode()
                headers = {
                    "Content-Type": "application/json",
                    "Idempotency-Key": f"bench-cpu-{i:06d}",
                }
                w, c = time.perf_counter(), time.process_time()
                r = client.http.post("/orders", headers=headers, body=raw)
                c, w = time.process_time() - c, time.perf_counter() - w
                if r.status_code != 201:
                    raise RuntimeError(f"{r.status_code} {r.body[:300]!r}")
                return c * 1e6, w * 1000

            for i in range(10):  # warm-up: imports, clients, pools, DNS cache
                one(-i - 1)
            # baseline: the framework floor, GET /catalog through the same client
            catalog_us: list[float] = []
            for _ in range(orders):
                c = time.process_time()
                r = client.http.get("/catalog")
                catalog_us.append((time.process_time() - c) * 1e6)
                if r.status_code != 200:
                    raise RuntimeError(f"catalog {r.status_code}")
            for i in range(orders):
                if i % RESET_EVERY == 0:
                    srv.reset_moto()
                c, w = one(i)
                cpu_us.append(c)
                wall_ms.append(w)

            # replays: the same key and body again (the storefront's retry after a lost answer)
            replay_raw = json.dumps(order_body("cpu-replay@d0001.bench.test")).encode()
            replay_headers = {"Content-Type": "application/json", "Idempotency-Key": "bench-replay"}
            client.http.post("/orders", headers=replay_headers, body=replay_raw)
            replay_us: list[float] = []
            for _ in range(min(100, orders)):
                c = time.process_time()
                r = client.http.post("/orders", headers=replay_headers, body=replay_raw)
                replay_us.append((time.process_time() - c) * 1e6)
                if r.headers.get("Idempotent-Replayed") != "true":
                    raise RuntimeError(f"not a replay: {r.status_code} {r.body[:200]!r}")

            # the same replays on a container that never saw the key (the retry went to another
            # one): Turnstile starts beside the read, its answer unused (info)
            from chalicelib.services import services

            cold_replay_us: list[float] = []
            for _ in range(min(50, orders)):
                services().recent_keys.forget(replay_headers["Idempotency-Key"])
                c = time.process_time()
                r = client.http.post("/orders", headers=replay_headers, body=replay_raw)
                cold_replay_us.append((time.process_time() - c) * 1e6)
                if r.headers.get("Idempotent-Replayed") != "true":
                    raise RuntimeError(f"not a replay: {r.status_code} {r.body[:200]!r}")

            # where the CPU goes (a separate pass, since the wrappers cost a little themselves)
            srv.reset_moto()  # before wrapping: the bootstrap's own calls are not the app's
            attr.wrap(botocore.client.BaseClient, "_make_api_call", "botocore API calls")
            attr.wrap(mail, "render", "email rendering (Jinja2)")
            attr.wrap(turnstile.TurnstileClient, "verify", "Turnstile siteverify (requests)")
            attr.wrap(recipients.RecipientChecker, "check", "recipient check")
            attr.wrap(checkout, "parse_order", "validation (parse_order)")
            attr.wrap(checkout, "expect", "expectations (expect)")
            attr.wrap(checkout, "create_order", "create transaction + decisions (create_order)")
            attr.wrap(checkout, "request_hash", "request hash")
            n_attr = min(100, orders)
            total = 0.0
            try:
                for i in range(n_attr):
                    total += one(orders + i)[0]
                order_us = dict(attr.us)
                order_calls = attr.calls.get("botocore API calls", 0)
                attr.reset()
                client.http.post("/orders", headers=replay_headers, body=replay_raw)  # stored
                attr.reset()
                n_replay = 20
                for _ in range(n_replay):
                    client.http.post("/orders", headers=replay_headers, body=replay_raw)
                replay_calls = attr.calls.get("botocore API calls", 0) / n_replay
            finally:
                attr.restore()

    parts = {k: v / n_attr for k, v in sorted(order_us.items(), key=lambda kv: -kv[1])}
    parts["other (chalice routing, logging, json, threads, ...)"] = total / n_attr - sum(
        parts.values()
    )
    return {
        "orders": orders,
        "cpu_us": summary(cpu_us),
        "catalog_cpu_us": summary(catalog_us),
        "wall_ms": summary(wall_ms),
        "attribution_us_per_order": {k: round(v, 1) for k, v in parts.items()},
        "aws_calls_per_order": round(order_calls / n_attr, 2),
        "replay_cpu_us": summary(replay_us),
        "aws_calls_per_replay": round(replay_calls, 2),
        "replay_unseen_key_cpu_us": summary(cold_replay_us),
    }


if __name__ == "__main__":
    print(json.dumps(run(100), indent=2))
