"""The first version's own benchmarks, run in the same `make bench` run as ours.

Issue #11's targets were set against the code as it was when the issue was filed (commit
REF_COMMIT, "the first version") and measured on a faster machine. Absolute milliseconds do
not carry over between machines (or between runs on a noisy one), so figures 2 and 3 also
measure the first version here, back to back with ours, and state the targets as ratios to it.

The first version's tree is materialised with `git archive REF_COMMIT` into
build/bench-ref/<commit>/ (git-ignored; reused when already complete) and ITS OWN
bench/cpu.py `run(orders)` and bench/coldstart.py `run(runs)` run there, each in a subprocess
of this venv's Python (`sys.executable`) with cwd and PYTHONPATH = that tree, so it imports its
own app.py, chalicelib, devstack (moto, siteverify, DNS server) and tests/helpers.py, none of
ours. The subprocess writes run()'s JSON to a file (the old code's servers and bootstrap may
print on stdout).

Never raises: if git or the commit is missing (a tarball without history) or the old code
fails, the answer is {"unavailable": reason} and the rows say "n/a".

    python -m bench.reference cpu 40     # prints the first version's figure 2 JSON
    python -m bench.reference cold 3     # ... figure 3
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import ROOT

# Pinned: issue #11's "first version" (the figures its targets are relative to: 14 ms p50,
# 19 ms p99 handler CPU per order, 356 ms first accepted order). A full hash, so the tree
# cannot change if a later short hash collides; moving it would change what the targets mean.
REF_COMMIT = "c957984e7a494e87af2398dfa2b12f01bab703ac"
REF_DIR = ROOT / "build" / "bench-ref" / REF_COMMIT
_COMPLETE = ".bench-ref-complete"  # written last: a half-extracted tree is never reused

# The first version's run() signatures and output keys (git show REF_COMMIT:bench/cpu.py,
# bench/coldstart.py): cpu.run(orders) -> {"cpu_us": {"p50", "p99", ...}, ...};
# coldstart.run(runs) -> {"app": {"first_order_ms", ...}, ...}.
_CHILD = """\
import json, sys
kind, n, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
if kind == "cpu":
    import bench.cpu as m
else:
    import bench.coldstart as m
r = m.run(n)
with open(out, "w", encoding="utf-8") as f:
    json.dump(r, f)
"""


class Unavailable(Exception):
    """The reference cannot be measured; the message says why (one line)."""


def _git(*args: str, binary: bool = False) -> Any:
    try:
        proc = subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, timeout=120, text=not binary
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise Unavailable(f"git not usable: {type(e).__name__}: {e}") from e
    if proc.returncode != 0:
        err = proc.stderr if isinstance(proc.stderr, str) else proc.stderr.decode(errors="replace")
        lines = err.strip().splitlines() or [f"exit {proc.returncode}"]
        raise Unavailable(f"git {args[0]}: {lines[-1][:120]}")
    return proc.stdout


def tree() -> Path:
    """The first version's files in build/bench-ref/<commit>/, extracted once."""
    if (REF_DIR / _COMPLETE).is_file():
        return REF_DIR
    _git("cat-file", "-e", f"{REF_COMMIT}^{{commit}}")
    data = _git("archive", "--format=tar", REF_COMMIT, binary=True)
    REF_DIR.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".extract-", dir=REF_DIR.parent))
    try:
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            tar.extractall(tmp, filter="data")
        (tmp / _COMPLETE).write_text(f"git archive {REF_COMMIT}\n", encoding="utf-8")
        shutil.rmtree(REF_DIR, ignore_errors=True)  # an incomplete earlier attempt
        try:
            tmp.rename(REF_DIR)
        except OSError:
            if not (REF_DIR / _COMPLETE).is_file():  # else: another run finished it first
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return REF_DIR


def _run_child(kind: str, n: int, timeout: float) -> dict[str, Any]:
    return run_child(tree(), kind, n, timeout)


def run_child(root: Path, kind: str, n: int, timeout: float) -> dict[str, Any]:
    """`kind`'s run(n) of the tree at `root` in a fresh interpreter (bench/run.py measures
    our figure 2 rounds this way too, so neither side carries an earlier figure's heap)."""
    # its modules, never ours; compiled from source on every run, as it shipped (Chalice's zip
    # had no bytecode) and as our "sources only" row: no run leaves __pycache__ for the next
    env = {**os.environ, "PYTHONPATH": str(root), "PYTHONDONTWRITEBYTECODE": "1"}
    who = "first version's" if root == REF_DIR else "our"
    env.pop("PYTHONSTARTUP", None)
    with tempfile.TemporaryDirectory(prefix="bench-ref-") as tmp:
        out = Path(tmp) / "result.json"
        proc = subprocess.Popen(
            [sys.executable, "-c", _CHILD, kind, str(n), str(out)],
            cwd=root,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # its group is stopped on a timeout; its servers die
        )  # with it (PR_SET_PDEATHSIG in its own devstack)
        try:
            _, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired as e:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise Unavailable(f"{who} {kind} benchmark exceeded {timeout:.0f} s") from e
        if proc.returncode != 0 or not out.is_file():
            lines = [ln for ln in stderr.strip().splitlines() if ln.strip()]
            last = lines[-1][:150] if lines else f"exit {proc.returncode}"
            raise Unavailable(f"{who} {kind} benchmark failed: {last}")
        result: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
        return result


def _measure(kind: str, n: int, timeout: float) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        result = _run_child(kind, n, timeout)
    except Unavailable as e:
        return {"commit": REF_COMMIT, "unavailable": str(e)}
    except Exception as e:  # noqa: BLE001 - the reference never stops our run
        return {"commit": REF_COMMIT, "unavailable": f"{type(e).__name__}: {e}"[:200]}
    return {
        "commit": REF_COMMIT,
        "tree": os.path.relpath(REF_DIR, ROOT),
        "seconds": round(time.perf_counter() - started, 1),
        "result": result,
    }


def cpu(orders: int) -> dict[str, Any]:
    """The first version's figure 2 (its bench/cpu.py run(orders)); ~2 min for 300 here."""
    return _measure("cpu", orders, timeout=180 + 2.0 * orders)


def cold(runs: int) -> dict[str, Any]:
    """The first version's figure 3 (its bench/coldstart.py run(runs))."""
    return _measure("cold", runs, timeout=180 + 20.0 * runs)


if __name__ == "__main__":
    kind, count = sys.argv[1], int(sys.argv[2])
    print(json.dumps((cpu if kind == "cpu" else cold)(count), indent=2))
