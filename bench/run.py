"""`make bench`: run every benchmark, print a table with targets, write bench/results.json.

    python -m bench.run                      # everything (a few minutes)
    python -m bench.run --only latency,dns   # some figures
    python -m bench.run --quick              # small sample sizes (a smoke run)

Every figure is compared with a baseline measured in the same run (bench/README.md says
which). Figures 2 (cpu) and 3 (cold) also run the first version's own benchmarks
(bench/reference.py, commit c957984) right after ours, with the same sizes, and add "vs first
version" rows (issue 11's targets as ratios); --no-ref skips that. Exit status: 2 if a
benchmark could not run; 1 if a target failed and --strict (or BENCH_STRICT=1) is given; else
0. A first version that cannot be measured gives "n/a" rows, not an error.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from bench.common import ROOT, machine

FIGURES = ("latency", "cpu", "cold", "package", "dns", "page")


@dataclass
class Row:
    figure: str
    measure: str
    ours: str
    baseline: str
    ratio: str
    target: str
    result: str  # PASS | FAIL | info | ERROR


def _kb(n: float) -> str:
    return f"{n / 1000:,.1f} kB"


def _mb(n: float) -> str:
    return f"{n / 1e6:,.2f} MB"


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


# Issue 11's targets as ratios to the first version (bench/reference.py), measured in the same
# run: target / the first version's figure on the machine (14 ms p50, 19 ms p99 handler
# CPU per order; 356 ms first accepted order). (numerator, denominator) so the text shows it.
REF_CPU_P50 = (5, 14)  # <= 5 ms p50
REF_CPU_P99 = (8, 19)  # <= 8 ms p99
REF_REPLAY = (2, 14)  # replay <= 2 ms, against the first version's order p50
REF_COLD_ORDER = (250, 356)  # first accepted order <= 250 ms


def merge_rounds(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Several runs' results as one: each number is the median of the rounds' (summaries
    p50/p99/..., attributions, calls), `orders` their sum; anything else the first round's."""
    first = rounds[0]
    merged: dict[str, Any] = {}
    for key, value in first.items():
        values = [r.get(key) for r in rounds]
        if key == "orders" and all(isinstance(v, int) for v in values):
            merged[key] = sum(v for v in values if isinstance(v, int))
        elif isinstance(value, dict) and all(isinstance(v, dict) for v in values):
            merged[key] = merge_rounds([v for v in values if isinstance(v, dict)])
        elif (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and all(isinstance(v, int | float) for v in values)
        ):
            merged[key] = statistics.median(float(v) for v in values if v is not None)
        else:
            merged[key] = value
    return merged


def merge_reference(refs: list[dict[str, Any]]) -> dict[str, Any]:
    """The first version's rounds (bench/reference.py's answers) as one answer."""
    missing = [r for r in refs if "result" not in r]
    if missing:
        return missing[0]
    return {
        **refs[0],
        "seconds": round(sum(float(r.get("seconds", 0)) for r in refs), 1),
        "rounds": len(refs),
        "result": merge_rounds([r["result"] for r in refs]),
    }


def _ref_result(r: dict[str, Any]) -> tuple[dict[str, Any] | None, str]:
    """The first version's raw output in figure r, or None and why not."""
    ref = r.get("reference")
    if ref is None:
        return None, "n/a (reference skipped: --no-ref)"
    if "result" not in ref:
        return None, f"n/a (reference unavailable: {ref.get('unavailable', '?')})"[:160]
    return ref["result"], ""


def _ref_row(
    figure: str, measure: str, ours: float, ref: float | None, why: str, target: tuple[int, int]
) -> Row:
    """Ours / the first version's (both us or both ms), against target[0] / target[1]."""
    num, den = target
    goal = f"<= {num / den:.3f}x ({num}/{den} ms)"

    def fmt(v: float) -> str:  # as the absolute rows show it: figure 2 in us, 3 in ms
        return f"{v:,.0f} us" if figure.startswith("2") else f"{v:.0f} ms"

    if ref is None:
        return Row(figure, measure, fmt(ours), "n/a", "-", goal, why)
    ratio = ours / ref
    return Row(
        figure,
        measure,
        fmt(ours),
        f"{fmt(ref)} (first version)",
        f"{ratio:.3f}x",
        goal,
        _verdict(ratio * den <= num),
    )


def rows_latency(r: dict[str, Any]) -> list[Row]:
    ms = r["ms"]
    out = []
    for p in ("p50", "p95"):
        ratio = ms["ours"][p] / ms["baseline"][p]
        out.append(
            Row(
                "1 order latency",
                f"{p} (n={r['orders']})",
                f"{ms['ours'][p]:.0f} ms",
                f"{ms['baseline'][p]:.0f} ms",
                f"{ratio:.3f}x",
                "<= 0.60x",
                _verdict(ratio <= 0.6),
            )
        )
    seed = 263.0  # the seed stack's p50, measured the same way (issue 11)
    out.append(
        Row(
            "1 order latency",
            "p50 vs the seed stack",
            f"{ms['ours']['p50']:.0f} ms",
            f"{seed:.0f} ms (seed, recorded)",
            f"{ms['ours']['p50'] / seed:.3f}x",
            "<= 0.60x (<= 160 ms)",
            _verdict(ms["ours"]["p50"] <= 160),
        )
    )
    for p in ("p50", "p95"):
        ratio = ms["ours"][p] / ms["baseline_no_ns"][p]
        out.append(
            Row(
                "1 order latency",
                f"{p} vs baseline w/o NS",
                f"{ms['ours'][p]:.0f} ms",
                f"{ms['baseline_no_ns'][p]:.0f} ms",
                f"{ratio:.3f}x",
                "-",
                "info",
            )
        )
    return out


def _rounds(r: dict[str, Any]) -> str:
    n = int(r.get("rounds", 1))
    return f", median of {n} rounds" if n > 1 else ""


def rows_cpu(r: dict[str, Any]) -> list[Row]:
    cpu, cat, rep = r["cpu_us"], r["catalog_cpu_us"], r["replay_cpu_us"]
    targets = {"p50": 5000, "p99": 8000}
    ref, why = _ref_result(r)
    ref_cpu = ref["cpu_us"] if ref else None
    rows = [
        Row(
            "2 handler CPU/order",
            f"{p} (n={r['orders']}{_rounds(r)})",
            f"{cpu[p]:,.0f} us",
            f"{cat[p]:,.0f} us (GET /catalog)",
            f"{cpu[p] / cat[p]:.1f}x",
            f"<= {targets[p]:,} us",
            _verdict(cpu[p] <= targets[p]),
        )
        for p in ("p50", "p99")
    ]
    rows += [
        _ref_row(
            "2 handler CPU/order",
            f"{p} vs first version (n={r['orders']}{_rounds(r)})",
            cpu[p],
            ref_cpu[p] if ref_cpu else None,
            why,
            target,
        )
        for p, target in (("p50", REF_CPU_P50), ("p99", REF_CPU_P99))
    ]
    rows.append(
        Row(
            "2 AWS calls/order",
            "botocore calls, accepted order",
            f"{r['aws_calls_per_order']:g}",
            "14 (first version)",
            f"{r['aws_calls_per_order'] / 14:.2f}x",
            "<= 5",
            _verdict(r["aws_calls_per_order"] <= 5),
        )
    )
    rows.append(
        Row(
            "2 replay",
            "AWS calls / CPU p50 (same key + body)",
            f"{r['aws_calls_per_replay']:g} / {rep['p50']:,.0f} us",
            f"{cat['p50']:,.0f} us (GET /catalog)",
            f"{rep['p50'] / cat['p50']:.1f}x",
            "1 call, <= 2,000 us",
            _verdict(r["aws_calls_per_replay"] <= 1 and rep["p50"] <= 2000),
        )
    )
    unseen = r.get("replay_unseen_key_cpu_us")
    if unseen:
        rows.append(
            Row(
                "2 replay",
                "CPU p50, key new to this container (Turnstile asked, answer unused)",
                f"{unseen['p50']:,.0f} us",
                f"{rep['p50']:,.0f} us (key seen here)",
                f"{unseen['p50'] / rep['p50']:.2f}x",
                "-",
                "info",
            )
        )
    rows.append(
        _ref_row(
            "2 replay",
            "CPU p50 vs first version's order p50",
            rep["p50"],
            ref_cpu["p50"] if ref_cpu else None,
            why,
            REF_REPLAY,
        )
    )
    return rows


def rows_cold(r: dict[str, Any]) -> list[Row]:
    a, e = r["app"], r["empty"]
    n = f"median of {r['runs']}"
    ref, why = _ref_result(r)
    rows: list[Row | None] = [
        Row(
            "3 cold start",
            f"import app ({n})",
            f"{a['import_ms']:.1f} ms",
            f"{e['import_ms']:.1f} ms (empty app)",
            f"{r['ratio_import']:.2f}x",
            "<= 3x",
            _verdict(r["ratio_import"] <= 3),
        ),
        Row(
            "3 cold start",
            f"first response ({n})",
            f"{a['first_response_ms']:.1f} ms",
            f"{e['first_response_ms']:.1f} ms (empty app)",
            f"{r['ratio_first_response']:.2f}x",
            "-",
            "info",
        ),
        Row(
            "3 cold start",
            f"first accepted order ({n})",
            f"{a['first_order_ms']:.0f} ms",
            f"{e['first_response_ms']:.1f} ms (empty app)",
            f"{a['first_order_ms'] / e['first_response_ms']:.1f}x",
            "<= 250 ms",
            _verdict(a["first_order_ms"] <= 250),
        ),
        Row(
            "3 cold start",
            f"first accepted order, Chalice's zip as is ({n})",
            f"{r['app_source']['first_order_ms']:.0f} ms",
            f"{a['first_order_ms']:.0f} ms (as packaged: lambdazip)",
            f"{r['app_source']['first_order_ms'] / a['first_order_ms']:.2f}x",
            "-",
            "info",
        )
        if "app_source" in r
        else None,
        _ref_row(
            "3 cold start",
            f"first accepted order vs first version ({n})",
            a["first_order_ms"],
            ref["app"]["first_order_ms"] if ref else None,
            why,
            REF_COLD_ORDER,
        ),
        Row(
            "3 cold start",
            "peak RSS",
            f"{a['peak_rss_kb'] / 1024:.1f} MiB",
            f"{e['peak_rss_kb'] / 1024:.1f} MiB (empty app)",
            f"{r['ratio_peak_rss']:.2f}x",
            "-",
            "info",
        ),
    ]
    return [row for row in rows if row is not None]


def rows_package(r: dict[str, Any]) -> list[Row]:
    e = r["empty_app"]
    return [
        Row(
            "4 package",
            "deployment.zip unzipped",
            _mb(r["unzipped_bytes"]),
            f"{_mb(e['unzipped_bytes'])} (empty app)",
            f"{r['unzipped_bytes'] / e['unzipped_bytes']:.0f}x",
            "<= 5 MB",
            _verdict(r["unzipped_bytes"] <= 5_000_000),
        ),
        Row(
            "4 package",
            "deployment.zip zipped",
            _mb(r["zipped_bytes"]),
            f"{_mb(e['zipped_bytes'])} (empty app)",
            f"{r['zipped_bytes'] / e['zipped_bytes']:.0f}x",
            "-",
            "info",
        ),
    ]


def rows_dns(r: dict[str, Any]) -> list[Row]:
    c, u = r["cached_us"], r["uncached_us"]
    return [
        Row(
            "5 warm DNS cache",
            f"cached check {p} (n={c['n']})",
            f"{c[p]:.1f} us",
            f"{u['p50']:.0f} us (uncached p50)",
            f"{c[p] / u['p50']:.3f}x",
            "<= 100 us" if p == "p99" else "-",
            _verdict(c[p] <= 100) if p == "p99" else "info",
        )
        for p in ("p50", "p99")
    ]


def rows_page(r: dict[str, Any]) -> list[Row]:
    return [
        Row(
            "6 page weight",
            f"shop page, {r['requests']} requests (body+headers)",
            _kb(r["total_bytes"]),
            f"{_kb(r['document_bytes'])} (HTML alone)",
            f"{r['total_bytes'] / r['document_bytes']:.1f}x",
            "<= 60 kB",
            _verdict(r["total_bytes"] <= 60_000),
        ),
        Row(
            "6 page weight",
            "bodies only",
            _kb(r["body_bytes"]),
            "-",
            "-",
            "-",
            "info",
        ),
    ]


def print_table(rows: list[Row]) -> str:
    head = Row("figure", "measure", "ours", "baseline", "ratio", "target", "result")
    cols = list(asdict(head))
    widths = {c: max(len(getattr(r, c)) for r in [head, *rows]) for c in cols}
    lines = []
    for i, r in enumerate([head, *rows]):
        lines.append(" | ".join(getattr(r, c).ljust(widths[c]) for c in cols).rstrip())
        if i == 0:
            lines.append("-+-".join("-" * widths[c] for c in cols))
    text = "\n".join(lines)
    print(text, flush=True)
    return text


def markdown_table(rows: list[Row]) -> str:
    head = "| figure | measure | ours | baseline | ratio | target | result |"
    sep = "|---|---|---|---|---|---|---|"
    body = [
        f"| {r.figure} | {r.measure} | {r.ours} | {r.baseline} | {r.ratio} | {r.target} "
        f"| {r.result} |"
        for r in rows
    ]
    return "\n".join([head, sep, *body])


def update_readme(doc: dict[str, Any]) -> None:
    """Replace the table between the results markers in bench/README.md."""
    path = ROOT / "bench" / "README.md"
    text = path.read_text(encoding="utf-8")
    start, end = "<!-- results:start -->", "<!-- results:end -->"
    if start not in text or end not in text:
        return
    m = doc["machine"]
    block = (
        f"{start}\n"
        f"Run {doc['generated_at']} at commit `{doc['commit']}` on {m['nproc']} x {m['cpu']}, "
        f"Python {m['python']} ({m['platform']}); `make bench` defaults.\n\n"
        f"{doc['markdown']}\n{end}"
    )
    before, rest = text.split(start, 1)
    after = rest.split(end, 1)[1]
    path.write_text(before + block + after, encoding="utf-8")


def git_commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except OSError:
        return ""


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--only", default=",".join(FIGURES), help=f"comma list of {FIGURES}")
    p.add_argument("--quick", action="store_true", help="small samples (a smoke run)")
    p.add_argument("--orders", type=int, default=100, help="latency: orders per variant")
    p.add_argument("--cpu-orders", type=int, default=500)
    p.add_argument("--cpu-rounds", type=int, default=5, help="cpu: alternating rounds")
    p.add_argument("--cold-runs", type=int, default=15)
    p.add_argument(
        "--no-ref",
        action="store_true",
        help="cpu/cold: don't run the first version's benchmarks (its rows say n/a)",
    )
    p.add_argument("--out", default=str(ROOT / "bench" / "results.json"))
    p.add_argument("--strict", action="store_true", default=os.environ.get("BENCH_STRICT") == "1")
    p.add_argument(
        "--no-readme", action="store_true", help="don't update the table in bench/README.md"
    )
    a = p.parse_args(argv)
    if a.quick:
        a.orders, a.cpu_orders, a.cold_runs, a.cpu_rounds = 10, 40, 3, 1
    wanted = [f.strip() for f in a.only.split(",") if f.strip()]
    unknown = set(wanted) - set(FIGURES)
    if unknown:
        p.error(f"unknown figure(s): {sorted(unknown)}")

    from bench import coldstart, dnscache, latency, package, pageweight, reference

    def with_ref(
        ours: Callable[[], dict[str, Any]], ref: Callable[[], dict[str, Any]]
    ) -> Callable[[], dict[str, Any]]:
        """Ours, then (same sizes, back to back) the first version's raw output under
        "reference"; reference.* never raises (it answers {"unavailable": why})."""

        def both() -> dict[str, Any]:
            out = ours()
            if not a.no_ref:
                print("[bench]   ... the first version (bench/reference.py)", file=sys.stderr)
                out["reference"] = ref()
            return out

        return both

    def cpu_in_rounds() -> dict[str, Any]:
        """Ours and the first version in alternating rounds (ours, first version, ours, ...):
        the machine's drift within a run (it changes speed within minutes) falls on both.
        Every summary figure is the median of the rounds' figures."""
        n = max(1, a.cpu_orders // a.cpu_rounds)
        ours: list[dict[str, Any]] = []
        refs: list[dict[str, Any]] = []
        for i in range(a.cpu_rounds):
            print(f"[bench]   round {i + 1}/{a.cpu_rounds}", file=sys.stderr, flush=True)
            ours.append(reference.run_child(ROOT, "cpu", n, timeout=180 + 2.0 * n))
            if not a.no_ref:
                print("[bench]   ... the first version (bench/reference.py)", file=sys.stderr)
                refs.append(reference.cpu(n))
        out = merge_rounds(ours)
        out["rounds"] = len(ours)
        if refs:
            out["reference"] = merge_reference(refs)
            out["round_ratios"] = [  # each round against the first version's next to it (info)
                {p: round(o["cpu_us"][p] / f["result"]["cpu_us"][p], 3) for p in ("p50", "p99")}
                for o, f in zip(ours, refs, strict=True)
                if "result" in f
            ]
        return out

    plan: dict[str, tuple[Callable[[], dict[str, Any]], Callable[[dict[str, Any]], list[Row]]]] = {
        "latency": (lambda: latency.run(a.orders), rows_latency),
        "cpu": (cpu_in_rounds, rows_cpu),
        "cold": (
            with_ref(lambda: coldstart.run(a.cold_runs), lambda: reference.cold(a.cold_runs)),
            rows_cold,
        ),
        "package": (package.run, rows_package),
        "dns": (dnscache.run, rows_dns),
        "page": (pageweight.run, rows_page),
    }
    results: dict[str, Any] = {}
    rows: list[Row] = []
    errors = 0
    for name in FIGURES:
        if name not in wanted:
            continue
        run, to_rows = plan[name]
        print(f"[bench] {name} ...", file=sys.stderr, flush=True)
        started = time.perf_counter()
        try:
            results[name] = run()
            rows += to_rows(results[name])
        except Exception as e:  # noqa: BLE001 - report and go on with the other figures
            errors += 1
            results[name] = {"error": f"{type(e).__name__}: {e}", "trace": traceback.format_exc()}
            rows.append(Row(name, "-", "-", "-", "-", "-", f"ERROR {type(e).__name__}: {e}"[:120]))
        results[name]["seconds"] = round(time.perf_counter() - started, 1)
        print(f"[bench] {name} done in {results[name]['seconds']} s", file=sys.stderr, flush=True)

    print()
    print_table(rows)
    info = machine()
    print(f"\nmachine: {info['nproc']} x {info['cpu']}, Python {info['python']}")
    doc = {
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "commit": git_commit(),
        "machine": info,
        "argv": sys.argv[1:],
        "rows": [asdict(r) for r in rows],
        "markdown": markdown_table(rows),
        "figures": results,
    }
    with open(a.out, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=2, default=str)
        f.write("\n")
    print(f"wrote {os.path.relpath(a.out, ROOT)}")
    if not a.no_readme and set(wanted) == set(FIGURES) and not a.quick:
        update_readme(doc)
        print("updated the results table in bench/README.md")
    if errors:
        return 2
    if a.strict and any(r.result == "FAIL" for r in rows):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
