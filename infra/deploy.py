"""Deploy-side helpers behind infra/deploy.mk (need AWS credentials; none run in tests).

    python infra/deploy.py bootstrap
    python infra/deploy.py init-secrets  --stage prod [--rotate-origin]
    python infra/deploy.py deploy        --stage prod      (after `make package`)
    python infra/deploy.py publish-site  --stage prod [--dry-run]
    python infra/deploy.py smoke         --stage prod
    python infra/deploy.py outputs       --stage prod
    python infra/deploy.py teardown      --stage prod --yes-delete juice-orders-prod

Everything happens in us-east-1 (the template's Rules refuse other regions: CloudFront's
WAF and certificate live there). Deploy parameters come from infra/params-<stage>.json
(see infra/params-example.json); the origin-verify secret never sits in that file: it is
read from its SSM SecureString at deploy time and handed to CloudFormation as a NoEcho
parameter through a 0600 temp file (not the command line).
"""

from __future__ import annotations

import argparse
import json
import mimetypes
import os
import re
import secrets
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
REGION = "us-east-1"
APP = "juice-orders"
BOOTSTRAP_STACK = f"{APP}-bootstrap"
WEBSITE = ROOT / "website"
# files in website/ that are never published (the stage config is generated instead)
SITE_EXCLUDE = {"config.json", "config.example.json"}
# parameters that must not come from the params file
SECRET_PARAMS = {"OriginVerifySecret"}
PINNED_PARAMS = {"Stage", "AdoptRetainedTables"}  # pinned by package / computed by deploy
# Tables the stack keeps on delete (DeletionPolicy Retain): logical id -> name suffix
RETAINED_TABLES = {"OrdersTable": "orders", "SuppressionTable": "suppression"}


def stack_name(stage: str) -> str:
    return f"{APP}-{stage}"


def origin_verify_param(stage: str) -> str:
    return f"/{APP}/{stage}/origin-verify"


def turnstile_secret_param(stage: str) -> str:
    return f"/{APP}/{stage}/turnstile-secret"


# --------------------------------------------------------------------------- params file
def load_params(stage: str, path: Path | None = None) -> dict[str, Any]:
    """Read and check infra/params-<stage>.json; return {"Parameters": {...}, "Site": {...}}."""
    path = path or ROOT / "infra" / f"params-{stage}.json"
    if not path.exists():
        raise SystemExit(
            f"{path} is missing: copy infra/params-example.json and fill it in (docs/deploy.md)"
        )
    data = json.loads(path.read_text())
    params = data.get("Parameters")
    if not isinstance(params, dict) or not params:
        raise SystemExit(f'{path}: needs a non-empty "Parameters" object')
    bad = (SECRET_PARAMS | PINNED_PARAMS) & set(params)
    if bad:
        raise SystemExit(
            f"{path}: remove {sorted(bad)} (the secret comes from SSM, the stage is pinned)"
        )
    for key, value in params.items():
        if not isinstance(value, str):
            raise SystemExit(f"{path}: Parameters.{key} must be a string")
    site = data.get("Site") or {}
    if not isinstance(site.get("turnstileSitekey", ""), str):
        raise SystemExit(f"{path}: Site.turnstileSitekey must be a string")
    return {"Parameters": params, "Site": site}


def parameter_overrides(
    params: dict[str, str], origin_secret: str, adopt_tables: bool = False
) -> list[str]:
    """`Key=Value` strings for `aws cloudformation deploy --parameter-overrides`."""
    return (
        [f"{k}={v}" for k, v in sorted(params.items())]
        + [f"AdoptRetainedTables={'true' if adopt_tables else 'false'}"]
        + [f"OriginVerifySecret={origin_secret}"]
    )


def retained_table_names(stage: str) -> dict[str, str]:
    return {logical: f"{APP}-{stage}-{suffix}" for logical, suffix in RETAINED_TABLES.items()}


@dataclass(frozen=True)
class TablePlan:
    """What the next deploy does with the retained tables."""

    adopt: bool  # AdoptRetainedTables
    owned: tuple[str, ...]  # table names the stack manages already
    outside: tuple[str, ...]  # names that exist but belong to no stack (kept by a teardown)
    problem: str = ""  # non-empty: deploying now would fail; the message says why

    def describe(self) -> str:
        if self.problem:
            return self.problem
        if self.outside:
            return (
                f"retained tables {', '.join(self.outside)} exist outside the stack: deploy "
                "uses them (AdoptRetainedTables=true); `make import-tables` brings them back"
            )
        if self.owned:
            return f"tables {', '.join(self.owned)} belong to the stack"
        return "no tables yet: the stack creates them"


def plan_tables(stage: str, existing: set[str], stack_resources: dict[str, str]) -> TablePlan:
    """Decide AdoptRetainedTables from the tables that exist and the stack's own resources
    (logical id -> physical id; empty when there is no stack)."""
    names = retained_table_names(stage)
    owned = tuple(n for logical, n in names.items() if stack_resources.get(logical) == n)
    outside = tuple(n for n in names.values() if n in existing and n not in owned)
    missing = tuple(n for n in names.values() if n not in existing)
    if owned and outside:
        why = f"the stack owns {owned} but not {outside}: `make import-tables` first"
        return TablePlan(False, owned, outside, why)
    if outside and missing:
        why = (
            f"only {outside} of the retained tables exist: restore {missing} "
            "(PITR/backup, docs/deploy.md) or delete the others"
        )
        return TablePlan(True, owned, outside, why)
    return TablePlan(bool(outside), owned, outside)


# --------------------------------------------------------------------------- site plan
@dataclass(frozen=True)
class SiteObject:
    key: str
    body: bytes
    content_type: str
    cache_control: str


HTML_CACHE = "no-cache"  # always revalidated (ETag): a publish shows up on the next load
CONFIG_CACHE = "no-cache"
FINGERPRINTED_CACHE = "public, max-age=31536000, immutable"
# un-fingerprinted js/css: ES modules must not mix versions for long
CODE_CACHE = "public, max-age=3600"
# images and fonts: change rarely
MEDIA_CACHE = "public, max-age=604800"
_FINGERPRINT = re.compile(r"\.[0-9a-f]{8,}\.[a-z0-9]+$")
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".webmanifest": "application/manifest+json",
    ".txt": "text/plain; charset=utf-8",
    ".ico": "image/x-icon",
    ".woff2": "font/woff2",
    ".webp": "image/webp",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
}


def content_type(name: str) -> str:
    ext = Path(name).suffix.lower()
    return _TYPES.get(ext) or mimetypes.guess_type(name)[0] or "application/octet-stream"


def cache_control(name: str) -> str:
    ext = Path(name).suffix.lower()
    if ext == ".html":
        return HTML_CACHE
    if _FINGERPRINT.search(name):
        return FINGERPRINTED_CACHE
    if ext in (".js", ".mjs", ".css", ".json", ".webmanifest"):
        return CODE_CACHE
    return MEDIA_CACHE


def stage_config(stage: str, turnstile_sitekey: str) -> dict[str, str]:
    """The website/config.json published for a cloud stage."""
    return {"stage": stage, "apiBase": "/api", "turnstileSitekey": turnstile_sitekey}


# The distribution answers unknown paths with /404.html (status 404). website/ may bring its
# own; otherwise publish-site uploads this one (absolute links: it is served at any path).
NOT_FOUND_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Page not found</title>
<meta name="robots" content="noindex">
<link rel="icon" href="/img/logo.svg" type="image/svg+xml">
<link rel="stylesheet" href="/css/site.css">
</head>
<body>
<main class="wrap">
<h1>Page not found</h1>
<p>There is nothing at this address. <a href="/">Back to the shop</a></p>
</main>
</body>
</html>
"""


def site_plan(stage: str, turnstile_sitekey: str, website: Path = WEBSITE) -> list[SiteObject]:
    """Every object publish-site uploads, with its headers (pure: no AWS calls)."""
    if not turnstile_sitekey:
        raise SystemExit("Site.turnstileSitekey is empty in the params file")
    out: list[SiteObject] = []
    for path in sorted(p for p in website.rglob("*") if p.is_file()):
        rel = path.relative_to(website).as_posix()
        if rel in SITE_EXCLUDE or any(part.startswith(".") for part in rel.split("/")):
            continue
        out.append(SiteObject(rel, path.read_bytes(), content_type(rel), cache_control(rel)))
    if not any(o.key == "404.html" for o in out):
        page = NOT_FOUND_PAGE.encode()
        out.append(SiteObject("404.html", page, content_type(".html"), HTML_CACHE))
    config = json.dumps(stage_config(stage, turnstile_sitekey), separators=(",", ":"))
    out.append(SiteObject("config.json", config.encode(), "application/json", CONFIG_CACHE))
    return out


# --------------------------------------------------------------------------- AWS plumbing
def _boto(service: str) -> Any:
    import boto3

    return boto3.session.Session(region_name=REGION).client(service)


def stack_outputs(name: str) -> dict[str, str]:
    cfn = _boto("cloudformation")
    stacks = cfn.describe_stacks(StackName=name)["Stacks"]
    return {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}


def _aws(*args: str) -> None:
    cmd = ["aws", *args, "--region", REGION]
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def cmd_bootstrap(_: argparse.Namespace) -> int:
    _aws(
        "cloudformation", "deploy",
        "--template-file", str(ROOT / "infra" / "bootstrap.yaml"),
        "--stack-name", BOOTSTRAP_STACK,
        "--capabilities", "CAPABILITY_IAM",
        "--no-fail-on-empty-changeset",
        "--tags", f"app={APP}",
    )  # fmt: skip
    print(stack_outputs(BOOTSTRAP_STACK))
    return 0


def cmd_init_secrets(args: argparse.Namespace) -> int:
    """Create the two SecureStrings if missing (origin secret generated; Turnstile asked)."""
    ssm = _boto("ssm")

    def exists(name: str) -> bool:
        try:
            ssm.get_parameter(Name=name)
            return True
        except ssm.exceptions.ParameterNotFound:
            return False

    origin = origin_verify_param(args.stage)
    if args.rotate_origin or not exists(origin):
        ssm.put_parameter(
            Name=origin,
            Value=secrets.token_urlsafe(48),
            Type="SecureString",
            Overwrite=True,
            Description="CloudFront -> API Gateway X-Origin-Verify value",
        )
        print(f"wrote {origin} (run `make deploy` so CloudFront sends the new value)")
    else:
        print(f"kept {origin}")
    turnstile = turnstile_secret_param(args.stage)
    if not exists(turnstile):
        value = os.environ.get("TURNSTILE_SECRET") or ""
        if not value:
            import getpass

            value = getpass.getpass(f"Turnstile secret key for {args.stage}: ").strip()
        if not value:
            raise SystemExit("no Turnstile secret given")
        ssm.put_parameter(
            Name=turnstile, Value=value, Type="SecureString", Description="Turnstile secret key"
        )
        print(f"wrote {turnstile}")
    else:
        print(f"kept {turnstile}")
    return 0


def cmd_deploy(args: argparse.Namespace) -> int:
    stage = args.stage
    build = ROOT / "build" / stage
    template = build / "template.json"
    if not template.exists():
        raise SystemExit(f"{template} missing: run `make package STAGE={stage}` first")
    params = load_params(stage, args.params)["Parameters"]
    bucket = stack_outputs(BOOTSTRAP_STACK)["ArtifactsBucketName"]
    packaged = build / "packaged.json"
    _aws(
        "cloudformation", "package",
        "--template-file", str(template),
        "--s3-bucket", bucket,
        "--s3-prefix", f"{APP}/{stage}",
        "--output-template-file", str(packaged),
        "--use-json",
    )  # fmt: skip
    ssm = _boto("ssm")
    origin_secret = ssm.get_parameter(Name=origin_verify_param(stage), WithDecryption=True)[
        "Parameter"
    ]["Value"]
    fd, overrides_path = tempfile.mkstemp(prefix="overrides-", suffix=".json")
    try:
        with os.fdopen(fd, "w") as f:  # mkstemp creates it 0600
            json.dump(parameter_overrides(params, origin_secret), f)
        _aws(
            "cloudformation", "deploy",
            "--template-file", str(packaged),
            "--stack-name", stack_name(stage),
            "--s3-bucket", bucket,
            "--s3-prefix", f"{APP}/{stage}",
            "--capabilities", "CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND",
            "--parameter-overrides", f"file://{overrides_path}",
            "--no-fail-on-empty-changeset",
            "--tags", f"app={APP}", f"stage={stage}",
        )  # fmt: skip
    finally:
        os.unlink(overrides_path)
    for k, v in sorted(stack_outputs(stack_name(stage)).items()):
        print(f"{k:24} {v}")
    return 0


def cmd_publish_site(args: argparse.Namespace) -> int:
    stage = args.stage
    site = load_params(stage, args.params)["Site"]
    plan = site_plan(stage, site.get("turnstileSitekey", ""))
    if args.dry_run:
        for o in plan:
            print(f"{o.key:36} {o.content_type:32} {o.cache_control}")
        return 0
    out = stack_outputs(stack_name(stage))
    bucket, dist = out["SiteBucketName"], out["DistributionId"]
    s3 = _boto("s3")
    for o in plan:
        s3.put_object(
            Bucket=bucket,
            Key=o.key,
            Body=o.body,
            ContentType=o.content_type,
            CacheControl=o.cache_control,
        )
        print(f"put {o.key} ({o.content_type}; {o.cache_control})")
    wanted = {o.key for o in plan}
    stale: list[dict[str, str]] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        stale += [{"Key": c["Key"]} for c in page.get("Contents", []) if c["Key"] not in wanted]
    for i in range(0, len(stale), 1000):  # versioned bucket: a delete only adds a marker
        s3.delete_objects(Bucket=bucket, Delete={"Objects": stale[i : i + 1000]})
    if stale:
        print(f"deleted {len(stale)} stale objects")
    inv = _boto("cloudfront").create_invalidation(
        DistributionId=dist,
        InvalidationBatch={
            "Paths": {"Quantity": 1, "Items": ["/*"]},
            "CallerReference": f"publish-{int(time.time())}",
        },
    )
    print(f"invalidation {inv['Invalidation']['Id']} on {dist}")
    return 0


def _fetch(
    url: str, method: str = "GET", body: bytes | None = None
) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, method=method, data=body)
    if body is not None:
        req.add_header("Content-Type", "application/json")

    class _NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *a: Any, **kw: Any) -> None:
            return None

    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(req, timeout=15) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def cmd_smoke(args: argparse.Namespace) -> int:
    out = stack_outputs(stack_name(args.stage))
    site, api = out["SiteUrl"], out["EndpointURL"]
    failures: list[str] = []

    def check(what: str, ok: bool, detail: str = "") -> None:
        print(("ok   " if ok else "FAIL ") + what + (f"  ({detail})" if detail else ""))
        if not ok:
            failures.append(what)

    status, headers, _ = _fetch(site)
    check("site answers 200", status == 200, str(status))
    check("HSTS header", "max-age=" in headers.get("strict-transport-security", ""))
    csp = headers.get("content-security-policy", "")
    check("CSP frame-ancestors 'none'", "frame-ancestors 'none'" in csp)
    check("nosniff", headers.get("x-content-type-options") == "nosniff")
    status, _, body = _fetch(site + "config.json")
    check(
        "config.json is this stage", status == 200 and json.loads(body).get("stage") == args.stage
    )
    status, _, body = _fetch(site + "api/catalog")
    check("GET /api/catalog via CloudFront", status == 200 and body.startswith(b"{"), str(status))
    status, _, _ = _fetch(site + "api/orders", "POST", b"{}")
    check("POST /api/orders rejects junk with 4xx", 400 <= status < 500, str(status))
    status, _, _ = _fetch(api + "catalog")
    check("execute-api URL without X-Origin-Verify is 403", status == 403, str(status))
    status, headers, _ = _fetch(site.replace("https://", "http://", 1))
    check("http redirects to https", status in (301, 302, 307, 308), str(status))
    print(f"{len(failures)} failed")
    return 1 if failures else 0


def cmd_outputs(args: argparse.Namespace) -> int:
    for k, v in sorted(stack_outputs(stack_name(args.stage)).items()):
        print(f"{k:24} {v}")
    return 0


def cmd_teardown(args: argparse.Namespace) -> int:
    name = stack_name(args.stage)
    if args.yes_delete != name:
        raise SystemExit(f"refusing: pass --yes-delete {name}")
    out = stack_outputs(name)
    bucket = out.get("SiteBucketName")
    if bucket:  # CloudFormation can't delete a non-empty bucket: remove every version
        s3 = _boto("s3")
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
            objs = [
                {"Key": v["Key"], "VersionId": v["VersionId"]}
                for v in page.get("Versions", []) + page.get("DeleteMarkers", [])
            ]
            if objs:
                s3.delete_objects(Bucket=bucket, Delete={"Objects": objs})
        print(f"emptied {bucket}")
    cfn = _boto("cloudformation")
    cfn.delete_stack(StackName=name)
    print(f"deleting {name} (CloudFront takes ~5-15 minutes) ...")
    cfn.get_waiter("stack_delete_complete").wait(
        StackName=name, WaiterConfig={"Delay": 30, "MaxAttempts": 120}
    )
    print(
        f"deleted. Kept on purpose (DeletionPolicy Retain): DynamoDB tables "
        f"{APP}-{args.stage}-orders and {APP}-{args.stage}-suppression; SSM parameters "
        f"/{APP}/{args.stage}/*. See docs/deploy.md, Teardown."
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="juice-orders deploy helpers (us-east-1)")
    sub = ap.add_subparsers(dest="cmd", required=True)

    def stage_cmd(name: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name)
        p.add_argument("--stage", required=True, choices=("dev", "prod"))
        return p

    sub.add_parser("bootstrap").set_defaults(func=cmd_bootstrap)
    p = stage_cmd("init-secrets")
    p.add_argument("--rotate-origin", action="store_true")
    p.set_defaults(func=cmd_init_secrets)
    p = stage_cmd("deploy")
    p.add_argument("--params", type=Path)
    p.set_defaults(func=cmd_deploy)
    p = stage_cmd("publish-site")
    p.add_argument("--params", type=Path)
    p.add_argument("--dry-run", action="store_true")
    p.set_defaults(func=cmd_publish_site)
    stage_cmd("smoke").set_defaults(func=cmd_smoke)
    stage_cmd("outputs").set_defaults(func=cmd_outputs)
    p = stage_cmd("teardown")
    p.add_argument("--yes-delete", default="")
    p.set_defaults(func=cmd_teardown)
    args = ap.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
