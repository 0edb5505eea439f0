"""The Lambda package after `chalice package`: our code's bytecode in, an unused library out.

**Bytecode.**
Lambda runs the package from /var/task, which is read-only: Python can't write `__pycache__`
there, so every cold start compiles `app.py` and every `chalicelib` module it imports from
source (~260 ms on the benchmark machine, figure 3). Chalice's zip has sources only. This
adds `__pycache__/<module>.cpython-3XX.pyc` next to each of *our* sources:

- unchecked-hash pycs (PEP 552): the loader uses them without comparing the source's mtime
  (zip extraction sets its own) or hash; the package is immutable, so they can't go stale;
- tracebacks still name the deployed source (the loader sets the code's file name);
- only when this interpreter is the Lambda runtime's version (bytecode is per minor
  version): otherwise nothing is added and the package is exactly Chalice's;
- only for app.py and chalicelib/: the dependencies' bytecode would double the package
  (4.3 MB more; figure 4 keeps the package under 5 MB unzipped).

**Mail templates, compiled.** chalicelib/mail.py loads its templates from
`chalicelib/templates/_compiled/` when that exists (only here: generated from the zip's own
templates with the app's own environment, `mail.compile_templates`), so a cold start imports
four small modules instead of compiling four templates (~80 ms). Only when the build's Jinja2
is the package's (the generated code calls Jinja2's runtime).

**Endpoints, trimmed.** botocore decodes its endpoints.json (1.25 MB: every service in every
partition) when the first client is made. `chalicelib/data/botocore/endpoints.json` is the
same document (this build's botocore) with only the services the app makes clients for
(`chalicelib.aws.SERVICES`); aws.py puts that directory first on botocore's data path.

**Dropped: charset_normalizer** (0.93 MB unzipped, ~60 ms of import at a cold start). pip
installs it because `requests` lists it, but requests only uses it to guess the encoding
of a response that declares none (`Response.apparent_encoding`, which falls back to UTF-8
without it); our one requests call reads siteverify's JSON (`Response.json()`, which
doesn't). chalicelib/turnstile.py silences the one-line warning requests prints when it
finds no detector. Nothing else in the package imports it (tests/unit/test_lambdazip.py
checks the real package).

    python -m infra.lambdazip build/prod/deployment.zip python3.11
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

LAMBDA_ROOT = "/var/task"
OURS = ("app.py", "chalicelib/")
DROPPED = ("charset_normalizer",)  # top-level packages left out (with their dist-info)


ENDPOINTS = "chalicelib/data/botocore/endpoints.json"
TEMPLATES = "chalicelib/templates/"
COMPILED = "chalicelib/templates/_compiled/"


def is_dropped(name: str) -> bool:
    top = name.split("/", 1)[0]
    return any(
        top == d or (top.startswith(f"{d}-") and top.endswith(".dist-info")) for d in DROPPED
    )


def runtime_version(runtime: str) -> tuple[int, int] | None:
    """(3, 11) for "python3.11"; None for anything else."""
    if not runtime.startswith("python3."):
        return None
    minor = runtime.removeprefix("python3.")
    return (3, int(minor)) if minor.isdigit() else None


def is_ours(name: str) -> bool:
    return name.endswith(".py") and (name == OURS[0] or name.startswith(OURS[1]))


def pyc_name(source: str) -> str:
    """The zip path of `source`'s bytecode for this interpreter."""
    p = PurePosixPath(source)
    tag = sys.implementation.cache_tag
    return str(p.parent / "__pycache__" / f"{p.stem}.{tag}.pyc").removeprefix("./")


def compile_source(source: bytes, name: str) -> bytes:
    """An unchecked-hash pyc of `source`, recorded as /var/task/<name>."""
    from importlib._bootstrap_external import _code_to_hash_pyc  # type: ignore[attr-defined]

    code = compile(source, f"{LAMBDA_ROOT}/{name}", "exec", dont_inherit=True)
    data: bytes = _code_to_hash_pyc(code, importlib.util.source_hash(source), checked=False)
    return data


def finish(zip_path: Path, runtime: str) -> dict[str, list[str]]:
    """Rewrite the zip at `zip_path` in place: without the dropped packages, and with our
    bytecode when this interpreter can make it for `runtime`. Returns what was
    {"added": [...pyc names], "dropped": [...file names]}."""
    compile_ours = runtime_version(runtime) == sys.version_info[:2]
    added: list[str] = []
    dropped: list[str] = []
    with tempfile.NamedTemporaryFile(dir=zip_path.parent, suffix=".zip", delete=False) as tmp:
        tmp_path = Path(tmp.name)
    try:
        with (
            zipfile.ZipFile(zip_path) as src,
            zipfile.ZipFile(tmp_path, "w", zipfile.ZIP_DEFLATED) as dst,
        ):
            entries = [
                (info, src.read(info))
                for info in src.infolist()
                if not info.filename.startswith(COMPILED)  # regenerated below
            ]
            entries = [(i, d) for i, d in entries if i.filename != ENDPOINTS]
            entries.append(_entry(ENDPOINTS, trimmed_endpoints(), entries[0][0]))
            if compile_ours:
                entries += compiled_templates(src)
            names = {info.filename for info, _ in entries}
            for info, data in entries:
                if is_dropped(info.filename):
                    dropped.append(info.filename)
                    continue
                dst.writestr(info, data)
                if info.filename.startswith(COMPILED) or info.filename == ENDPOINTS:
                    added.append(info.filename)
                target = pyc_name(info.filename) if is_ours(info.filename) else ""
                if compile_ours and target and target not in names:
                    pyc = zipfile.ZipInfo(target, date_time=info.date_time)
                    pyc.external_attr = info.external_attr
                    pyc.compress_type = zipfile.ZIP_DEFLATED
                    dst.writestr(pyc, compile_source(data, info.filename))
                    added.append(target)
        shutil.copymode(zip_path, tmp_path)
        shutil.move(str(tmp_path), zip_path)
    finally:
        tmp_path.unlink(missing_ok=True)
    return {"added": added, "dropped": dropped}


def trimmed_endpoints() -> bytes:
    """botocore's endpoints.json with only the services of chalicelib.aws.SERVICES (by their
    endpoint prefix: sesv2 is "email"), every partition and its defaults kept."""
    import botocore.session

    from chalicelib.aws import SERVICES

    session = botocore.session.get_session()
    prefixes = {session.get_service_model(s).endpoint_prefix for s in SERVICES}
    full = session.get_component("data_loader").load_data("endpoints")
    trimmed = {
        **full,
        "partitions": [
            {**p, "services": {k: v for k, v in p["services"].items() if k in prefixes}}
            for p in full["partitions"]
        ],
    }
    return json.dumps(trimmed, separators=(",", ":"), sort_keys=True).encode()


def _entry(name: str, data: bytes, like: zipfile.ZipInfo) -> tuple[zipfile.ZipInfo, bytes]:
    info = zipfile.ZipInfo(name, date_time=like.date_time)
    info.external_attr = like.external_attr
    info.compress_type = zipfile.ZIP_DEFLATED
    return info, data


def packaged_jinja_version(src: zipfile.ZipFile) -> str | None:
    try:
        text = src.read("jinja2/__init__.py").decode()
    except KeyError:
        return None
    m = re.search(r"^__version__ = [\"']([^\"']+)[\"']", text, re.M)
    return m.group(1) if m else None


def compiled_templates(src: zipfile.ZipFile) -> list[tuple[zipfile.ZipInfo, bytes]]:
    """The zip's mail templates compiled by the app's environment, as zip entries under
    COMPILED ([] when the zip has no templates or another Jinja2 than this build's)."""
    import jinja2

    from chalicelib.mail import compile_templates

    sources = [
        i
        for i in src.infolist()
        if i.filename.startswith(TEMPLATES)
        and not i.filename.startswith(COMPILED)
        and not i.is_dir()
    ]
    if not sources or packaged_jinja_version(src) != jinja2.__version__:
        return []
    with tempfile.TemporaryDirectory() as tmp:
        for info in sources:
            path = Path(tmp, "src", info.filename.removeprefix(TEMPLATES))
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(src.read(info))
        out = []
        for path in compile_templates(Path(tmp, "src"), Path(tmp, "out")):
            info = zipfile.ZipInfo(COMPILED + path.name, date_time=sources[0].date_time)
            info.external_attr = sources[0].external_attr
            info.compress_type = zipfile.ZIP_DEFLATED
            out.append((info, path.read_bytes()))
        return out


def compile_tree(root: Path) -> list[Path]:
    """The same bytecode for a copy of the app on disk (the cold-start benchmark's copy of what
    the package holds): the mail templates, then app.py and chalicelib/**.py under `root`;
    returns the files written."""
    from chalicelib.mail import compile_templates

    written = []
    endpoints = root / ENDPOINTS
    endpoints.parent.mkdir(parents=True, exist_ok=True)
    endpoints.write_bytes(trimmed_endpoints())
    written.append(endpoints)
    templates = root / TEMPLATES
    if templates.is_dir():
        shutil.rmtree(root / COMPILED, ignore_errors=True)
        written += compile_templates(templates, root / COMPILED)
    for path in sorted(root.rglob("*.py")):
        name = path.relative_to(root).as_posix()
        if not is_ours(name):
            continue
        target = root / pyc_name(name)
        target.parent.mkdir(exist_ok=True)
        target.write_bytes(compile_source(path.read_bytes(), name))
        written.append(target)
    return written


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print(__doc__.strip().splitlines()[-1].strip(), file=sys.stderr)
        return 2
    done = finish(Path(args[0]), args[1])
    print(f"{len(done['added'])} pyc files added, {len(done['dropped'])} files dropped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
