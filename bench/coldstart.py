"""Figure 3: cold start proxy, in fresh interpreter subprocesses (bench/cold_child.py).

For the app: time to `import app`, to the first GET /catalog response, to the first accepted
order (local servers answering instantly), and peak RSS; alongside a one-route Chalice app's
import and first response, in the same run and interleaved. Medians over `runs` children each.
Peak RSS is the child's VmHWM (/proc/self/status): getrusage's ru_maxrss is also recorded,
but on Linux it can start at the parent's high-water mark (fork), which hides small children.
Also `python -X importtime -c "import app"`: the imports with the largest cumulative time.

Our code runs the way the package ships it: a copy of app.py + chalicelib/ with the same
bytecode infra/package.py adds to deployment.zip (infra/lambdazip.py; Lambda can't write
`__pycache__`), and, as info, a copy with sources only and every dependency (Chalice's zip as is).
The package also leaves out charset_normalizer (requests finds no detector and does without),
so the packaged copy hides the venv's with a module that raises ImportError, as its absence
would.
Every child runs with PYTHONDONTWRITEBYTECODE=1 (as in Lambda's read-only /var/task), so no
run leaves bytecode for the next. The dependencies come from the venv (compiled by pip).
"""

from __future__ import annotations

import json
import os
import shutil
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


ABSENT = 'raise ImportError("not in the Lambda package (infra/lambdazip.py)")\n'


def app_copy(dest: Path, bytecode: bool) -> Path:
    """app.py + chalicelib/ as the package holds them, with or without our bytecode (and,
    with it, without the packages the deployment zip drops)."""
    from infra.lambdazip import DROPPED, compile_tree

    dest.mkdir(parents=True)
    shutil.copy2(ROOT / "app.py", dest / "app.py")
    shutil.copytree(
        ROOT / "chalicelib", dest / "chalicelib", ignore=shutil.ignore_patterns("__pycache__")
    )
    if bytecode:
        compile_tree(dest)
        for name in DROPPED:
            (dest / f"{name}.py").write_text(ABSENT, encoding="utf-8")
    return dest


def run(runs: int = 15) -> dict[str, Any]:
    results: dict[str, list[dict[str, Any]]] = {"app": [], "app_source": [], "empty": []}
    with Servers(dns_delay_ms=0, domains=2 * runs + 5) as srv, tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "empty_app.py").write_text(EMPTY_APP, encoding="utf-8")
        packaged = app_copy(Path(tmp, "packaged"), bytecode=True)
        source = app_copy(Path(tmp, "source"), bytecode=False)
        base = {**os.environ, **srv.env, "PYTHONDONTWRITEBYTECODE": "1"}
        base.pop("PYTHONSTARTUP", None)
        env = {**base, "PYTHONPATH": f"{packaged}{os.pathsep}{ROOT}"}
        envs = {
            "app": env,
            "app_source": {**base, "PYTHONPATH": f"{source}{os.pathsep}{ROOT}"},
            "empty": env,
        }
        for i in range(runs):
            trio = [
                (
                    "app",
                    [
                        "app",
                        json.dumps(order_body(f"cold{i}@{srv.domains[i]}")),
                        f"bench-cold-{i:04d}",
                    ],
                ),
                (
                    "app_source",
                    [
                        "app",
                        json.dumps(order_body(f"cold{i}@{srv.domains[runs + i]}")),
                        f"bench-cold-src-{i:04d}",
                    ],
                ),
                ("empty", ["empty", tmp]),
            ]
            trio = trio[i % 3 :] + trio[: i % 3]  # each kind goes first, second and third
            for label, args in trio:
                results[label].append(_child(args, envs[label]))
        imports = importtime(["-c", "import app"], env)
        body = json.dumps(order_body(f"cold-it@{srv.domains[-1]}"))
        cold_path = ROOT / "bench" / "cold_child.py"
        imports_order = importtime([str(cold_path), "app", body, "bench-cold-importtime"], env)

    failed = [r for r in results["app"] + results["app_source"] if r.get("order_status") != 201]
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
        "app_source": {
            k: med("app_source", k) for k in ("import_ms", "first_response_ms", "first_order_ms")
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
