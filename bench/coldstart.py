"""Figure 3: cold start proxy, in fresh interpreter subprocesses (bench/cold_child.py).

For the app: time to `import app`, to the first GET /catalog response, to the first accepted
order (local servers answering instantly), and peak RSS; alongside a one-route Chalice app's
import and first response, in the same run and interleaved. Medians over `runs` children each.
Peak RSS is the child's VmHWM (/proc/self/status): getrusage's ru_maxrss is also recorded,
but on Linux it can start at the parent's high-water mark (fork), which hides small children.
Also `python -X importtime -c "import app"`: the imports with the largest cumulative time.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from bench.common import PY, ROOT, Servers, order_body

EMPTY_APP = """from chalice import Chalice

app = Chalice(app_name="empty")


@app.route("/")
def index():
    return {"hello": "world"}
"""


def _child(args: list[str], env: dict[str, str]) -> dict[str, Any]:
    proc = subprocess.run(
        [PY, str(ROOT / "bench" / "cold_child.py"), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith('{"mode"')]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"cold child failed ({proc.returncode}): {proc.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def importtime(cmd: list[str], env: dict[str, str], top: int = 15) -> list[dict[str, Any]]:
    """`python -X importtime <cmd>`: the imports with the largest cumulative time."""
    proc = subprocess.run(
        [PY, "-X", "importtime", *cmd],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    rows = []
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, cumulative_us, name = line[len("import time:") :].split("|")
        depth = (len(name) - len(name.lstrip()) - 1) // 2
        rows.append(
            {
                "module": name.strip(),
                "depth": depth,
                "self_ms": int(self_us) / 1000,
                "cum_ms": int(cumulative_us) / 1000,
            }
        )
    rows.sort(key=lambda r: -r["cum_ms"])
    return rows[:top]


def run(runs: int = 15) -> dict[str, Any]:
    results: dict[str, list[dict[str, Any]]] = {"app": [], "empty": []}
    with Servers(dns_delay_ms=0, domains=runs + 5) as srv, tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "empty_app.py").write_text(EMPTY_APP, encoding="utf-8")
        env = {**os.environ, **srv.env, "PYTHONPATH": str(ROOT)}
        env.pop("PYTHONSTARTUP", None)
        for i in range(runs):
            body = json.dumps(order_body(f"cold{i}@{srv.domains[i]}"))
            pair = [("app", ["app", body, f"bench-cold-{i:04d}"]), ("empty", ["empty", tmp])]
            if i % 2:
                pair.reverse()
            for label, args in pair:
                results[label].append(_child(args, env))
        imports = importtime(["-c", "import app"], env)
        body = json.dumps(order_body(f"cold-it@{srv.domains[-1]}"))
        cold_path = ROOT / "bench" / "cold_child.py"
        imports_order = importtime([str(cold_path), "app", body, "bench-cold-importtime"], env)

    failed = [r for r in results["app"] if r.get("order_status") != 201]
    if failed:
        raise RuntimeError(f"first order not accepted in a cold child: {failed[0]}")

    def med(label: str, key: str) -> float:
        return float(statistics.median(r[key] for r in results[label]))

    out = {
        "runs": runs,
        "app": {
            k: med("app", k)
            for k in ("import_ms", "first_response_ms", "first_order_ms", "peak_rss_kb")
        },
        "empty": {k: med("empty", k) for k in ("import_ms", "first_response_ms", "peak_rss_kb")},
        "importtime_import_app": imports,
        "importtime_through_first_order": imports_order,
    }
    out["ratio_import"] = out["app"]["import_ms"] / out["empty"]["import_ms"]
    out["ratio_first_response"] = (
        out["app"]["first_response_ms"] / out["empty"]["first_response_ms"]
    )
    out["ratio_peak_rss"] = out["app"]["peak_rss_kb"] / out["empty"]["peak_rss_kb"]
    return out


if __name__ == "__main__":
    print(json.dumps(run(5), indent=2))
