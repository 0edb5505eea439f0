"""Figure 4: deployment package size - `chalice package --stage prod <tmp>`, deployment.zip,
finished as `make package` finishes it (infra/lambdazip.py: our bytecode and compiled mail
templates in, charset_normalizer out) - the zip that deploys.

Zipped = the file's size; unzipped = the sum of its members' sizes (what Lambda's 250 MB
unzipped limit counts, and what a cold start has to map). Chalice reuses its cached zip in
.chalice/deployments when nothing changed, which is fine: the same bytes.
Baseline: the same command on a one-route Chalice project with no requirements (the framework
floor: Chalice's runtime module alone).
"""

from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from bench.common import PY, ROOT

EMPTY_APP = """from chalice import Chalice

app = Chalice(app_name="empty")


@app.route("/")
def index():
    return {"hello": "world"}
"""


def package(project: Path, finish: bool = False) -> dict[str, Any]:
    """`chalice package --stage prod` of `project` (finished like infra/package.py does, if
    `finish`): sizes of its deployment.zip."""
    with tempfile.TemporaryDirectory(prefix="bench-pkg-") as tmp:
        region = os.environ.get("AWS_DEFAULT_REGION", "us-east-1")
        env = {**os.environ, "AWS_DEFAULT_REGION": region}
        cmd = [PY, "-c", "import sys; from chalice.cli import main; sys.exit(main())"]
        cmd += ["--project-dir", str(project), "package", "--stage", "prod", tmp]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
        path = Path(tmp) / "deployment.zip"
        if proc.returncode != 0 or not path.exists():
            raise RuntimeError(
                f"chalice package failed: {proc.stdout[-1500:]} {proc.stderr[-1500:]}"
            )
        if finish:
            from infra.lambdazip import finish as finish_zip

            finish_zip(path, f"python{sys.version_info.major}.{sys.version_info.minor}")
        zipped = path.stat().st_size
        sizes: collections.Counter[str] = collections.Counter()
        files = 0
        with zipfile.ZipFile(path) as z:
            for info in z.infolist():
                sizes[info.filename.split("/")[0]] += info.file_size
                files += 1
    return {
        "zipped_bytes": zipped,
        "unzipped_bytes": sum(sizes.values()),
        "files": files,
        "largest_top_level": [{"name": k, "bytes": v} for k, v in sizes.most_common(10)],
    }


def run() -> dict[str, Any]:
    ours = package(ROOT, finish=True)
    with tempfile.TemporaryDirectory(prefix="bench-empty-") as tmp:
        project = Path(tmp)
        (project / "app.py").write_text(EMPTY_APP, encoding="utf-8")
        (project / "requirements.txt").write_text("", encoding="utf-8")
        (project / ".chalice").mkdir()
        config = {"version": "2.0", "app_name": "empty", "stages": {"prod": {}}}
        (project / ".chalice" / "config.json").write_text(json.dumps(config), encoding="utf-8")
        empty = package(project)
    return {**ours, "empty_app": empty}


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
