"""Figure 5: a repeated recipient check for a domain whose DNS verdict is cached.

`chalicelib.recipients.RecipientChecker.check(email)` against the local DNS server (child
process, no delay). Baseline: the first, uncached check of a domain (median over `domains`
fresh domains; imports, the disposable lists and the resolver are warmed up first on another
domain, so the baseline is the DNS work, not the first-use cost). Measured: the same domains
again with new local parts (the verdict is cached per domain; the syntax and disposable
checks still run every time). Logs go to /dev/null.
"""

from __future__ import annotations

import json
import time
from typing import Any

from bench.common import Servers, app_env, quiet_stdout, summary


def run(repeats: int = 3000, domains: int = 30) -> dict[str, Any]:
    with Servers(dns_delay_ms=0, domains=domains + 1) as srv, app_env(srv.env), quiet_stdout():
        from chalicelib.recipients import (
            DisposableDomains,
            DnsChecker,
            RecipientChecker,
            clear_cache,
        )

        checker = RecipientChecker(
            DnsChecker((f"127.0.0.1:{srv.dns_port}",), 2.0),
            DisposableDomains(),
            test_environment=True,
        )
        clear_cache()
        warm, *fresh = srv.domains
        checker.check(f"warmup@{warm}")  # imports, disposable lists, resolver, thread pools
        uncached = []
        for d in fresh:
            t = time.perf_counter()
            checker.check(f"first@{d}")
            uncached.append((time.perf_counter() - t) * 1e6)
        cached = []
        for i in range(repeats):
            d = fresh[i % len(fresh)]
            t = time.perf_counter()
            checker.check(f"again{i}@{d}")
            cached.append((time.perf_counter() - t) * 1e6)
        # the cache lookup alone (what a repeated check saves the DNS work down to)
        verdict = []
        for i in range(repeats):
            t = time.perf_counter()
            checker.dns.verdict(fresh[i % len(fresh)])
            verdict.append((time.perf_counter() - t) * 1e6)
    return {
        "uncached_us": summary(uncached),
        "cached_us": summary(cached),
        "cached_verdict_only_us": summary(verdict),
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
