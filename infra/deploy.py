"""Deploy-side helpers behind infra/deploy.mk (need AWS credentials; none run in tests).

    python infra/deploy.py bootstrap
    python infra/deploy.py init-secrets  --stage prod [--rotate-origin]
    python infra/deploy.py preflight     --stage prod      (read-only; `make deploy` runs it)
    python infra/deploy.py deploy        --stage prod      (after `make package`)
    python infra/deploy.py publish-site  --stage prod [--dry-run]
    python infra/deploy.py smoke         --stage prod [--site-url URL --api-url URL ...]
    python infra/deploy.py outputs       --stage prod
    python infra/deploy.py import-tables --stage prod      (retained tables back into the stack)
    python infra/deploy.py teardown      --stage prod --yes-delete juice-orders-prod

Everything happens in us-east-1 (the template's Rules refuse other regions: CloudFront's
WAF and certificate live there). Deploy parameters come from infra/params-<stage>.json
(see infra/params-example.json); the origin-verify secret never sits in that file: it is
read from its SSM SecureString at deploy time and handed to CloudFormation as a NoEcho
parameter (in the API call, never on a command line).

Every AWS call goes through boto3 (`_boto`), which honours AWS_ENDPOINT_URL: that is how
`make rehearse` (infra/rehearse.py) runs these same functions against moto on loopback.
"""

from __future__ import annotations

import argparse
import json
import mimetypes
import os
import re
import secrets
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as `python infra/deploy.py`: make `infra.*` importable
    sys.path.insert(0, str(ROOT))
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


def link_secret_param(stage: str) -> str:
    """The key of the signed links in emails (order actions, status pages)."""
    return f"/{APP}/{stage}/link-secret"


def admin_secret_param(stage: str) -> str:
    """The key of the back office's sign-in links, sessions and list cursors."""
    return f"/{APP}/{stage}/admin-secret"


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
        out.append(SiteObject("404.html", page, content_type("404.html"), HTML_CACHE))
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


def stack_exists(name: str) -> bool:
    from botocore.exceptions import ClientError

    try:
        stacks = _boto("cloudformation").describe_stacks(StackName=name)["Stacks"]
    except ClientError as e:
        if "does not exist" in str(e):
            return False
        raise
    return bool(stacks) and stacks[0]["StackStatus"] not in ("DELETE_COMPLETE",)


def stack_resources(name: str) -> dict[str, str]:
    """logical id -> physical id of a stack's resources ({} when there is no stack)."""
    if not stack_exists(name):
        return {}
    cfn = _boto("cloudformation")
    out: dict[str, str] = {}
    for page in cfn.get_paginator("list_stack_resources").paginate(StackName=name):
        for r in page["StackResourceSummaries"]:
            out[r["LogicalResourceId"]] = r.get("PhysicalResourceId", "")
    return out


def existing_tables() -> set[str]:
    ddb = _boto("dynamodb")
    names: set[str] = set()
    for page in ddb.get_paginator("list_tables").paginate():
        names.update(page["TableNames"])
    return names


def table_plan(stage: str) -> TablePlan:
    return plan_tables(stage, existing_tables(), stack_resources(stack_name(stage)))


def template_url(bucket: str, key: str) -> str:
    """The TemplateURL CloudFormation fetches. With AWS_ENDPOINT_URL (moto) the S3 URL must
    name `localhost`: moto only recognises that host, not 127.0.0.1, as its own S3."""
    endpoint = os.environ.get("AWS_ENDPOINT_URL", "")
    if endpoint:
        return f"{endpoint.rstrip('/').replace('127.0.0.1', 'localhost')}/{bucket}/{key}"
    return f"https://{bucket}.s3.{REGION}.amazonaws.com/{key}"


def upload_code(template: dict[str, Any], build: Path, bucket: str, prefix: str) -> None:
    """What `aws cloudformation package` does for us: upload the local zip (content-addressed)
    and point every function at it (SAM CodeUri, or Code for an expanded template)."""
    import hashlib

    zips: dict[str, str] = {}
    s3 = _boto("s3")
    for res in template["Resources"].values():
        props = res.get("Properties", {})
        local = props.get("CodeUri") if res["Type"] == "AWS::Serverless::Function" else None
        if res["Type"] == "AWS::Lambda::Function" and isinstance(props.get("Code"), str):
            local = props["Code"]
        if not isinstance(local, str) or local.startswith("s3://"):
            continue
        path = (build / local).resolve()
        if str(path) not in zips:
            body = path.read_bytes()
            key = f"{prefix}/{hashlib.sha256(body).hexdigest()}.zip"
            s3.put_object(Bucket=bucket, Key=key, Body=body)
            zips[str(path)] = key
        key = zips[str(path)]
        if res["Type"] == "AWS::Serverless::Function":
            props["CodeUri"] = f"s3://{bucket}/{key}"
        else:
            props["Code"] = {"S3Bucket": bucket, "S3Key": key}


def deploy_stack(
    name: str,
    template: dict[str, Any],
    parameters: dict[str, str],
    bucket: str,
    prefix: str,
    tags: dict[str, str],
    delay: float = 5.0,
) -> str:
    """`aws cloudformation deploy`, in boto3: upload the template, create a change set (CREATE
    or UPDATE), wait, execute, wait. Returns the final stack status ("NO_CHANGES" if none)."""
    import hashlib

    cfn = _boto("cloudformation")
    body = json.dumps(template, indent=1).encode()
    key = f"{prefix}/{hashlib.sha256(body).hexdigest()}.template.json"
    _boto("s3").put_object(Bucket=bucket, Key=key, Body=body)
    exists = stack_exists(name)
    if exists:
        status = cfn.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"]
        if status == "ROLLBACK_COMPLETE":  # a failed first create can only be deleted
            raise SystemExit(
                f"{name} is ROLLBACK_COMPLETE (its first create failed): see its events, "
                "then `make teardown` and deploy again"
            )
        exists = status != "REVIEW_IN_PROGRESS"  # only an unexecuted change set so far
    change_set = cfn.create_change_set(
        StackName=name,
        ChangeSetName=f"deploy-{int(time.time())}",
        ChangeSetType="UPDATE" if exists else "CREATE",
        TemplateURL=template_url(bucket, key),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
        Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
    )["Id"]
    waiter = {"Delay": max(1, int(delay)), "MaxAttempts": 720}
    described = cfn.describe_change_set(ChangeSetName=change_set)
    while described["Status"] in ("CREATE_PENDING", "CREATE_IN_PROGRESS"):
        time.sleep(delay)
        described = cfn.describe_change_set(ChangeSetName=change_set)
    if described["Status"] == "FAILED":
        reason = described.get("StatusReason", "")
        if "didn't contain changes" in reason or "No updates" in reason:
            cfn.delete_change_set(ChangeSetName=change_set)
            return "NO_CHANGES"
        raise SystemExit(f"change set failed: {reason}")
    cfn.execute_change_set(ChangeSetName=change_set)
    done = "stack_update_complete" if exists else "stack_create_complete"
    try:
        cfn.get_waiter(done).wait(StackName=name, WaiterConfig=waiter)
    except Exception as e:  # noqa: BLE001 - show the events that explain it
        events = cfn.describe_stack_events(StackName=name)["StackEvents"][:15]
        failed = [
            f"{ev['LogicalResourceId']}: {ev.get('ResourceStatusReason', '')}"
            for ev in events
            if "FAILED" in ev.get("ResourceStatus", "")
        ]
        raise SystemExit(f"deploy of {name} failed: {e}\n" + "\n".join(failed)) from e
    return str(cfn.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"])


def load_yaml_template(path: Path) -> dict[str, Any]:
    """A CloudFormation YAML file with short-form intrinsics (!Sub, !Ref ...) as plain JSON."""
    import yaml

    class _Loader(yaml.SafeLoader):
        pass

    def _intrinsic(loader: Any, suffix: str, node: Any) -> Any:
        name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
            if suffix == "GetAtt":
                value = value.split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        return {name: value}

    _Loader.add_multi_constructor("!", _intrinsic)
    return dict(yaml.load(path.read_text(), Loader=_Loader))  # noqa: S506  # nosec B506


def bootstrap(template: dict[str, Any] | None = None, delay: float = 10.0) -> str:
    """Create or update the per-account stack (artifacts bucket, API Gateway logging role)."""
    template = template or load_yaml_template(ROOT / "infra" / "bootstrap.yaml")
    if stack_exists(BOOTSTRAP_STACK):
        bucket = stack_outputs(BOOTSTRAP_STACK)["ArtifactsBucketName"]
        return deploy_stack(BOOTSTRAP_STACK, template, {}, bucket, "bootstrap", {"app": APP}, delay)
    # first run: the bucket templates are uploaded to is the one this creates (TemplateBody)
    cfn = _boto("cloudformation")
    cfn.create_stack(
        StackName=BOOTSTRAP_STACK,
        TemplateBody=json.dumps(template),
        Capabilities=["CAPABILITY_IAM"],
        Tags=[{"Key": "app", "Value": APP}],
    )
    cfn.get_waiter("stack_create_complete").wait(
        StackName=BOOTSTRAP_STACK, WaiterConfig={"Delay": max(1, int(delay)), "MaxAttempts": 120}
    )
    return "CREATE_COMPLETE"


def cmd_bootstrap(args: argparse.Namespace) -> int:
    print(f"{BOOTSTRAP_STACK}: {bootstrap(delay=args.delay)}")
    for k, v in sorted(stack_outputs(BOOTSTRAP_STACK).items()):
        print(f"{k:28} {v}")
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
    # random keys, created once: rotating the link key expires every link already mailed,
    # rotating the admin key signs every merchant out
    for name, what in (
        (link_secret_param(args.stage), "Key of the signed links in order emails"),
        (admin_secret_param(args.stage), "Key of the back office's sign-in links and sessions"),
    ):
        if not exists(name):
            ssm.put_parameter(
                Name=name, Value=secrets.token_urlsafe(48), Type="SecureString", Description=what
            )
            print(f"wrote {name}")
        else:
            print(f"kept {name}")
    return 0


def deploy(
    stage: str,
    template: dict[str, Any],
    params: dict[str, str],
    build: Path,
    delay: float = 5.0,
) -> str:
    """The deploy itself (the template as `make package` wrote it, or expanded for moto)."""
    bucket = stack_outputs(BOOTSTRAP_STACK)["ArtifactsBucketName"]
    plan = table_plan(stage)
    if plan.problem:
        raise SystemExit(f"refusing to deploy: {plan.problem}")
    print(f"tables: {plan.describe()}")
    upload_code(template, build, bucket, f"{APP}/{stage}")
    ssm = _boto("ssm")
    origin_secret = ssm.get_parameter(Name=origin_verify_param(stage), WithDecryption=True)[
        "Parameter"
    ]["Value"]
    overrides = dict(
        o.split("=", 1) for o in parameter_overrides(params, origin_secret, plan.adopt)
    )
    return deploy_stack(
        stack_name(stage),
        template,
        overrides,
        bucket,
        f"{APP}/{stage}",
        {"app": APP, "stage": stage},
        delay,
    )


def cmd_deploy(args: argparse.Namespace) -> int:
    stage = args.stage
    build = ROOT / "build" / stage
    template = build / "template.json"
    if not template.exists():
        raise SystemExit(f"{template} missing: run `make package STAGE={stage}` first")
    params = load_params(stage, args.params)["Parameters"]
    status = deploy(stage, json.loads(template.read_text()), params, build, args.delay)
    print(f"{stack_name(stage)}: {status}")
    for k, v in sorted(stack_outputs(stack_name(stage)).items()):
        print(f"{k:24} {v}")
    return 0


def publish_site(stage: str, site: dict[str, Any], bucket: str, dist: str) -> list[str]:
    plan = site_plan(stage, site.get("turnstileSitekey", ""))
    s3 = _boto("s3")
    lines = []
    for o in plan:
        s3.put_object(
            Bucket=bucket,
            Key=o.key,
            Body=o.body,
            ContentType=o.content_type,
            CacheControl=o.cache_control,
        )
        lines.append(f"put {o.key} ({o.content_type}; {o.cache_control})")
    wanted = {o.key for o in plan}
    stale: list[dict[str, str]] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        stale += [{"Key": c["Key"]} for c in page.get("Contents", []) if c["Key"] not in wanted]
    for i in range(0, len(stale), 1000):  # versioned bucket: a delete only adds a marker
        s3.delete_objects(Bucket=bucket, Delete={"Objects": stale[i : i + 1000]})
    if stale:
        lines.append(f"deleted {len(stale)} stale objects")
    inv = _boto("cloudfront").create_invalidation(
        DistributionId=dist,
        InvalidationBatch={
            "Paths": {"Quantity": 1, "Items": ["/*"]},
            "CallerReference": f"publish-{time.time_ns()}",
        },
    )
    lines.append(f"invalidation {inv['Invalidation']['Id']} on {dist}")
    return lines


def cmd_publish_site(args: argparse.Namespace) -> int:
    stage = args.stage
    site = load_params(stage, args.params)["Site"]
    if args.dry_run:
        for o in site_plan(stage, site.get("turnstileSitekey", "")):
            print(f"{o.key:36} {o.content_type:32} {o.cache_control}")
        return 0
    out = stack_outputs(stack_name(stage))
    for line in publish_site(stage, site, out["SiteBucketName"], out["DistributionId"]):
        print(line)
    return 0


def cmd_preflight(args: argparse.Namespace) -> int:
    from infra.preflight import run

    return run(args.stage, args.params)


def cmd_smoke(args: argparse.Namespace) -> int:
    from infra.smoke import Endpoints, run

    if args.site_url and args.api_url:
        endpoints = Endpoints(
            site=args.site_url,
            api=args.api_url,
            suppression_table=args.suppression_table or "",
            https=args.site_url.startswith("https://"),
        )
    else:
        out = stack_outputs(stack_name(args.stage))
        endpoints = Endpoints(
            site=args.site_url or out["SiteUrl"],
            api=args.api_url or out["EndpointURL"],
            suppression_table=args.suppression_table or out.get("SuppressionTableName", ""),
            https=True,
        )
    return run(args.stage, endpoints, order=not args.no_order, token=args.turnstile_token)


def cmd_outputs(args: argparse.Namespace) -> int:
    for k, v in sorted(stack_outputs(stack_name(args.stage)).items()):
        print(f"{k:24} {v}")
    return 0


def teardown(stage: str, delay: float = 30.0) -> list[str]:
    name = stack_name(stage)
    out = stack_outputs(name)
    bucket = out.get("SiteBucketName")
    lines = []
    if bucket:  # CloudFormation can't delete a non-empty bucket: remove every version
        s3 = _boto("s3")
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
            objs = [
                {"Key": v["Key"], "VersionId": v["VersionId"]}
                for v in page.get("Versions", []) + page.get("DeleteMarkers", [])
            ]
            if objs:
                s3.delete_objects(Bucket=bucket, Delete={"Objects": objs})
        lines.append(f"emptied {bucket}")
    cfn = _boto("cloudformation")
    cfn.delete_stack(StackName=name)
    cfn.get_waiter("stack_delete_complete").wait(
        StackName=name, WaiterConfig={"Delay": max(1, int(delay)), "MaxAttempts": 720}
    )
    kept = ", ".join(retained_table_names(stage).values())
    lines.append(
        f"deleted {name}. Kept on purpose (DeletionPolicy Retain, deletion protection on): "
        f"DynamoDB tables {kept}; SSM parameters /{APP}/{stage}/*. The next `make deploy` "
        "uses the tables again; docs/deploy.md, Teardown and redeploy."
    )
    return lines


def cmd_teardown(args: argparse.Namespace) -> int:
    name = stack_name(args.stage)
    if args.yes_delete != name:
        raise SystemExit(f"refusing: pass --yes-delete {name}")
    print(f"deleting {name} (CloudFront takes ~5-15 minutes) ...")
    for line in teardown(args.stage, args.delay):
        print(line)
    return 0


def import_plan(stage: str, template: dict[str, Any]) -> dict[str, Any]:
    """The IMPORT change set arguments for the retained tables of `stage`."""
    names = retained_table_names(stage)
    return {
        "ResourcesToImport": [
            {
                "ResourceType": "AWS::DynamoDB::Table",
                "LogicalResourceId": logical,
                "ResourceIdentifier": {"TableName": table},
            }
            for logical, table in names.items()
            if logical in template["Resources"]
        ]
    }


def cmd_import_tables(args: argparse.Namespace) -> int:
    """Bring tables kept by a teardown back under the stack (CloudFormation resource import).

    The stack must exist and use them by name (AdoptRetainedTables=true, what `make deploy`
    does after a teardown). The import change set uses the stack's current processed
    template with AdoptRetainedTables=false: the only difference is the two tables, which
    is what an import may change. Afterwards `make deploy` sees them as the stack's own.
    moto has no resource import, so this is the one command the rehearsal can't run.
    """
    stage, name = args.stage, stack_name(args.stage)
    plan = table_plan(stage)
    if not plan.outside:
        print(f"nothing to import: {plan.describe()}")
        return 0
    cfn = _boto("cloudformation")
    # the processed (SAM-expanded) template: an import can't run a transform
    current = cfn.get_template(StackName=name, TemplateStage="Processed")["TemplateBody"]
    template = current if isinstance(current, dict) else json.loads(current)
    stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
    params = [
        {"ParameterKey": p["ParameterKey"], "UsePreviousValue": True}
        for p in stack["Parameters"]
        if p["ParameterKey"] != "AdoptRetainedTables"
    ] + [{"ParameterKey": "AdoptRetainedTables", "ParameterValue": "false"}]
    bucket = stack_outputs(BOOTSTRAP_STACK)["ArtifactsBucketName"]
    key = f"{APP}/{stage}/import-{int(time.time())}.template.json"
    _boto("s3").put_object(Bucket=bucket, Key=key, Body=json.dumps(template).encode())
    change_set = cfn.create_change_set(
        StackName=name,
        ChangeSetName=f"import-tables-{int(time.time())}",
        ChangeSetType="IMPORT",
        TemplateURL=template_url(bucket, key),
        Parameters=params,
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
        **import_plan(stage, template),
    )["Id"]
    cfn.get_waiter("change_set_create_complete").wait(ChangeSetName=change_set)
    cfn.execute_change_set(ChangeSetName=change_set)
    cfn.get_waiter("stack_import_complete").wait(StackName=name)
    print(f"imported {', '.join(plan.outside)} into {name}")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="juice-orders deploy helpers (us-east-1)")
    sub = ap.add_subparsers(dest="cmd", required=True)

    def stage_cmd(name: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name)
        p.add_argument("--stage", required=True, choices=("dev", "prod"))
        return p

    p = sub.add_parser("bootstrap")
    p.add_argument("--delay", type=float, default=10.0, help="seconds between status polls")
    p.set_defaults(func=cmd_bootstrap)
    p = stage_cmd("init-secrets")
    p.add_argument("--rotate-origin", action="store_true")
    p.set_defaults(func=cmd_init_secrets)
    p = stage_cmd("preflight")
    p.add_argument("--params", type=Path)
    p.set_defaults(func=cmd_preflight)
    p = stage_cmd("deploy")
    p.add_argument("--params", type=Path)
    p.add_argument("--delay", type=float, default=15.0, help="seconds between status polls")
    p.set_defaults(func=cmd_deploy)
    p = stage_cmd("publish-site")
    p.add_argument("--params", type=Path)
    p.add_argument("--dry-run", action="store_true")
    p.set_defaults(func=cmd_publish_site)
    p = stage_cmd("smoke")
    p.add_argument("--site-url", help="the shop's base URL (default: stack output SiteUrl)")
    p.add_argument("--api-url", help="the execute-api stage URL (default: output EndpointURL)")
    p.add_argument("--suppression-table", help="default: output SuppressionTableName")
    p.add_argument("--no-order", action="store_true", help="skip the two simulator orders")
    p.add_argument(
        "--turnstile-token",
        default=os.environ.get("SMOKE_TURNSTILE_TOKEN", "XXXX.DUMMY.TOKEN.XXXX"),
        help="token for the orders (default: Cloudflare's test token, accepted by its test "
        "secret keys; $SMOKE_TURNSTILE_TOKEN)",
    )
    p.set_defaults(func=cmd_smoke)
    stage_cmd("outputs").set_defaults(func=cmd_outputs)
    stage_cmd("import-tables").set_defaults(func=cmd_import_tables)
    p = stage_cmd("teardown")
    p.add_argument("--yes-delete", default="")
    p.add_argument("--delay", type=float, default=30.0, help="seconds between status polls")
    p.set_defaults(func=cmd_teardown)
    args = ap.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
