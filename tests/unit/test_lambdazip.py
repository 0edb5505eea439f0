"""infra.lambdazip.py: our code's bytecode in the Lambda package, used by a fresh interpreter
that can't write `__pycache__` (as in Lambda's read-only /var/task)."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

from infra.lambdazip import compile_tree, finish, pyc_name

RUNTIME = f"python3.{sys.version_info.minor}"


def make_zip(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("app.py", "import chalicelib.m\nVALUE = 1\n")
        z.writestr("chalicelib/__init__.py", "")
        z.writestr("chalicelib/m.py", "def boom():\n    raise ValueError('x')\n")
        z.writestr("chalicelib/data/shop.json", "{}")
        z.writestr("requests/__init__.py", "")
        z.writestr("charset_normalizer/__init__.py", "")
        z.writestr("charset_normalizer/md.cpython-311-aarch64-linux-gnu.so", b"\x7fELF")
        z.writestr("charset_normalizer-3.5.3.dist-info/METADATA", "Name: charset-normalizer")
        z.writestr("charset_normalizer_extra/__init__.py", "")  # not ours to drop
    return path


def fresh_python(cwd: Path, code: str) -> str:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": str(cwd)}
    env.pop("PYTHONPYCACHEPREFIX", None)
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_the_deployed_import_runs_the_shipped_bytecode(tmp_path: Path) -> None:
    zpath = make_zip(tmp_path / "deployment.zip")
    done = finish(zpath, RUNTIME)
    assert sorted(n for n in done["added"] if n.endswith(".pyc")) == sorted(
        pyc_name(n) for n in ("app.py", "chalicelib/__init__.py", "chalicelib/m.py")
    )
    task = tmp_path / "task"
    with zipfile.ZipFile(zpath) as z:
        names = z.namelist()
        z.extractall(task)
    assert not any(n.startswith("requests/") and n.endswith(".pyc") for n in names)
    assert "chalicelib/data/shop.json" in names
    assert not [n for n in names if n.startswith("charset_normalizer/")]
    assert not [n for n in names if n.startswith("charset_normalizer-")]
    assert "charset_normalizer_extra/__init__.py" in names
    assert len(done["dropped"]) == 3
    # the source changes after packaging: an unchecked-hash pyc is still what runs
    (task / "app.py").write_text("import chalicelib.m\nVALUE = 2\n")
    assert fresh_python(task, "import app; print(app.VALUE)") == "1"
    # tracebacks name the file where it runs (the loader fixes up the compiled path)
    where = fresh_python(task, "import chalicelib.m as m; print(m.boom.__code__.co_filename)")
    assert where == str(task / "chalicelib" / "m.py")


def test_another_runtime_gets_no_bytecode(tmp_path: Path) -> None:
    zpath = make_zip(tmp_path / "deployment.zip")
    for runtime in ("python3.99", "nodejs22.x"):
        assert [n for n in finish(zpath, runtime)["added"] if n.endswith(".pyc")] == []
    with zipfile.ZipFile(zpath) as z:
        assert not [n for n in z.namelist() if n.endswith(".pyc")]
        assert "app.py" in z.namelist()


def test_compile_tree_writes_the_same_bytecode_as_the_package(tmp_path: Path) -> None:
    zpath = make_zip(tmp_path / "deployment.zip")
    finish(zpath, RUNTIME)
    tree = tmp_path / "tree"
    with zipfile.ZipFile(zpath) as z:
        sources = [n for n in z.namelist() if n.endswith(".py")]
        z.extractall(tree, members=sources)
        shipped = {n: z.read(n) for n in z.namelist() if n.endswith(".pyc")}
    written = [p for p in compile_tree(tree) if p.suffix == ".pyc"]
    assert {p.relative_to(tree).as_posix(): p.read_bytes() for p in written} == shipped


def test_the_trimmed_endpoints_resolve_every_client_exactly_as_botocores_own(
    tmp_path: Path,
) -> None:
    """The package's endpoints.json keeps only the app's services: each of its clients gets
    the same endpoint, region and signing name as with botocore's full file, in every
    partition; and the file is ~1% of botocore's."""
    import json as _json

    from chalicelib import aws
    from infra.lambdazip import trimmed_endpoints

    data = trimmed_endpoints()
    (tmp_path / "endpoints.json").write_bytes(data)
    import botocore.session

    def client(service: str, region: str, trimmed: bool = False) -> Any:
        core = botocore.session.get_session()
        if trimmed:
            base = list(core.get_component("data_loader").search_paths)
            core.register_component("data_loader", aws._app_loader([str(tmp_path), *base]))
        return core.create_client(
            service, region_name=region, aws_access_key_id="x", aws_secret_access_key="y"
        )

    for service in aws.SERVICES:
        for region in ("us-east-1", "eu-west-1", "ap-southeast-2", "us-gov-west-1", "cn-north-1"):
            ours, theirs = client(service, region, trimmed=True), client(service, region)
            assert ours.meta.endpoint_url == theirs.meta.endpoint_url, (service, region)
            assert ours.meta.region_name == theirs.meta.region_name
            assert ours._request_signer._signing_name == theirs._request_signer._signing_name
    core = botocore.session.get_session()
    base = list(core.get_component("data_loader").search_paths)
    used = aws._app_loader([str(tmp_path), *base]).load_data("endpoints")
    assert {k for p in used["partitions"] for k in p["services"]} == {"dynamodb", "email", "ssm"}
    parsed = _json.loads(data)
    services = {k for p in parsed["partitions"] for k in p["services"]}
    assert services == {"dynamodb", "email", "ssm"}
    assert len(data) < 50_000
