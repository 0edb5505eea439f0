"""Package the app for one stage: `chalice package` + infra/resources.yaml, then pin the stage.

    python infra/package.py --stage prod --out build/prod

writes build/prod/template.json (a SAM template: Transform AWS::Serverless-2016-10-31)
and build/prod/deployment.zip. This is exactly

    chalice package --stage prod --pkg-format cloudformation \
        --merge-template infra/resources.yaml build/prod

(which writes sam.yaml, YAML because the merge template is YAML) followed by two edits,
saved as template.json:

1. The `Stage` parameter is pinned to the packaged stage (Default and the only
   AllowedValue). The Lambda environment (table names, SSM parameter names) and the IAM
   policy are baked in per stage by Chalice, so deploying a prod package with Stage=dev
   would point dev's functions at prod's tables; the pin makes CloudFormation refuse that.
2. The SNS event of the feedback handler is pointed at `!Ref SesFeedbackTopic`. Chalice
   writes `Fn::Sub arn:...:<topic name>` from `@app.on_sns_message(topic=...)`, which
   names the right topic but carries no dependency on the topic resource (the
   subscription could be created first). We check that the name Chalice used is the
   topic this template creates (juice-orders-<stage>-ses-feedback, which app.py reads
   from SES_FEEDBACK_TOPIC in .chalice/config.json) and fail loudly otherwise.
3. The CloudFront ResponseHeadersPolicy is filled from infra/security_headers.json (the
   one source of the site's headers; the dev server sends the same ones).
4. The REST API gets its GatewayResponses (API Gateway's own errors: unknown route,
   throttling, WAF block, 4XX/5XX defaults) in the app's JSON error shape, with nosniff.
5. deployment.zip gets the bytecode of app.py and chalicelib when this interpreter is the
   functions' runtime (Lambda can't write `__pycache__`, so otherwise every cold start
   compiles our code), and loses charset_normalizer, which requests never uses here
   (infra/lambdazip.py).

Works offline as long as requirements.txt needs no download (pip may fetch arm64 wheels
from PyPI for runtime dependencies; Chalice caches the zip in .chalice/deployments).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: `python infra/package.py`
    sys.path.insert(0, str(ROOT))
MERGE_TEMPLATE = ROOT / "infra" / "resources.yaml"
SECURITY_HEADERS = ROOT / "infra" / "security_headers.json"
CLOUD_STAGES = ("dev", "prod")

# API Gateway's own responses (the Lambda never ran): type -> (status or None to keep
# API Gateway's, code, message, extra headers). Same shape as chalicelib.errors.ApiError.
GATEWAY_RESPONSES: dict[str, tuple[int | None, str, str, dict[str, str]]] = {
    "MISSING_AUTHENTICATION_TOKEN": (404, "not_found", "There is no such API route.", {}),
    "RESOURCE_NOT_FOUND": (404, "not_found", "There is no such API route.", {}),
    "ACCESS_DENIED": (403, "forbidden", "This request is not allowed.", {}),
    "WAF_FILTERED": (403, "forbidden", "This request was blocked.", {}),
    "THROTTLED": (
        429, "rate_limited", "Too many requests. Please wait a moment and try again.",
        {"Retry-After": "5"},
    ),
    "QUOTA_EXCEEDED": (
        429, "rate_limited", "Too many requests. Please wait a moment and try again.",
        {"Retry-After": "60"},
    ),
    "REQUEST_TOO_LARGE": (413, "payload_too_large", "The body is over 16384 bytes.", {}),
    "UNSUPPORTED_MEDIA_TYPE": (
        415, "unsupported_media_type", "Send Content-Type: application/json.", {}
    ),
    "INTEGRATION_TIMEOUT": (
        504, "service_unavailable", "The shop did not answer in time. Please try again.",
        {"Retry-After": "5"},
    ),
    "DEFAULT_4XX": (None, "bad_request", "The request could not be handled.", {}),
    "DEFAULT_5XX": (
        None, "internal_error", "Something went wrong on our side. Please try again.",
        {"Retry-After": "5"},
    ),
}  # fmt: skip
GATEWAY_RESPONSE_HEADERS = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"}


def chalice_package(stage: str, out: Path, project_dir: Path = ROOT) -> Path:
    """Run `chalice package` for `stage` into `out`; return the template path."""
    out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    # Chalice needs a region to build ARNs for `chalice deploy`; packaging ignores it, but
    # refuses to start without one. The stack itself must be deployed in us-east-1.
    env.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    cmd = [
        sys.executable,
        "-c",
        "import sys; from chalice.cli import main; sys.exit(main())",
        "--project-dir",
        str(project_dir),
        "package",
        "--stage",
        stage,
        "--pkg-format",
        "cloudformation",
        "--merge-template",
        str(MERGE_TEMPLATE),
        str(out),
    ]
    for stale in ("sam.yaml", "sam.json", "template.json"):
        (out / stale).unlink(missing_ok=True)
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    generated = out / "sam.yaml"
    if proc.returncode != 0 or not generated.exists():
        raise RuntimeError(
            f"chalice package failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        )
    return generated


def pin_stage(template: dict[str, Any], stage: str) -> dict[str, Any]:
    param = template["Parameters"]["Stage"]
    param["Default"] = stage
    param["AllowedValues"] = [stage]
    return template


def feedback_topic_name(stage: str) -> str:
    return f"juice-orders-{stage}-ses-feedback"


def link_feedback_topic(template: dict[str, Any], stage: str) -> int:
    """Point every SNS event at the SesFeedbackTopic resource; return how many were linked."""
    want = feedback_topic_name(stage)
    linked = 0
    for name, res in template.get("Resources", {}).items():
        if res.get("Type") != "AWS::Serverless::Function":
            continue
        for event_name, event in (res.get("Properties", {}).get("Events") or {}).items():
            if event.get("Type") != "SNS":
                continue
            topic = event["Properties"]["Topic"]
            arn = topic.get("Fn::Sub") if isinstance(topic, dict) else topic
            if not isinstance(arn, str) or arn.rsplit(":", 1)[-1] != want:
                raise RuntimeError(
                    f"{name}.{event_name} subscribes to {topic!r}, but the stack creates the "
                    f"topic {want!r}: make app.py use SES_FEEDBACK_TOPIC from the stage config"
                )
            event["Properties"]["Topic"] = {"Ref": "SesFeedbackTopic"}
            linked += 1
    return linked


def gateway_responses() -> dict[str, Any]:
    """SAM `GatewayResponses` for the REST API, from GATEWAY_RESPONSES."""
    out: dict[str, Any] = {}
    for kind, (status, code, message, extra) in GATEWAY_RESPONSES.items():
        body = {"error": {"code": code, "message": message, "fields": {}}}
        headers = {**GATEWAY_RESPONSE_HEADERS, **extra}
        entry: dict[str, Any] = {
            # header values are API Gateway mapping expressions: literals are single-quoted
            "ResponseParameters": {"Headers": {k: f"'{v}'" for k, v in headers.items()}},
            "ResponseTemplates": {"application/json": json.dumps(body, separators=(",", ":"))},
        }
        if status is not None:
            entry["StatusCode"] = str(status)
        out[kind] = entry
    return out


def csp_string(directives: dict[str, list[str]]) -> str:
    return "; ".join(" ".join([name, *values]) for name, values in directives.items())


def security_headers_config(source: dict[str, Any]) -> dict[str, Any]:
    """CloudFront `SecurityHeadersConfig` (+ `CustomHeadersConfig`) from security_headers.json.

    Headers CloudFront models (CSP, HSTS, nosniff, X-Frame-Options, Referrer-Policy) go to
    their typed slots; anything else to CustomHeadersConfig. Every one overrides the origin.
    """
    headers = {**source.get("headers", {}), **source.get("https_only_headers", {})}
    cfg: dict[str, Any] = {
        "ContentSecurityPolicy": {
            "ContentSecurityPolicy": csp_string(source["content_security_policy"]),
            "Override": True,
        }
    }
    custom: list[dict[str, Any]] = []
    for name, value in headers.items():
        key = name.lower()
        if key == "x-content-type-options":
            if value != "nosniff":
                raise ValueError(f"CloudFront can only send {name}: nosniff")
            cfg["ContentTypeOptions"] = {"Override": True}
        elif key == "x-frame-options":
            cfg["FrameOptions"] = {"FrameOption": value.upper(), "Override": True}
        elif key == "referrer-policy":
            cfg["ReferrerPolicy"] = {"ReferrerPolicy": value, "Override": True}
        elif key == "strict-transport-security":
            parts = [p.strip() for p in value.split(";") if p.strip()]
            ages = [p for p in parts if p.lower().startswith("max-age=")]
            if len(ages) != 1:
                raise ValueError(f"{name}: needs exactly one max-age, got {value!r}")
            flags = {p.lower() for p in parts} - {ages[0].lower()}
            if flags - {"includesubdomains", "preload"}:
                raise ValueError(f"{name}: unknown directives in {value!r}")
            cfg["StrictTransportSecurity"] = {
                "AccessControlMaxAgeSec": int(ages[0].split("=", 1)[1]),
                "IncludeSubdomains": "includesubdomains" in flags,
                "Preload": "preload" in flags,
                "Override": True,
            }
        else:
            custom.append({"Header": name, "Value": value, "Override": True})
    out: dict[str, Any] = {"SecurityHeadersConfig": cfg}
    if custom:
        out["CustomHeadersConfig"] = {"Items": custom}
    return out


def apply_security_headers(template: dict[str, Any], source_path: Path = SECURITY_HEADERS) -> None:
    policy = template["Resources"]["SecurityHeadersPolicy"]["Properties"]
    config = policy["ResponseHeadersPolicyConfig"]
    config.update(security_headers_config(json.loads(source_path.read_text())))


def apply_gateway_responses(template: dict[str, Any]) -> None:
    api = template["Resources"]["RestAPI"]
    if api.get("Type") != "AWS::Serverless::Api":
        raise RuntimeError(f"RestAPI is {api.get('Type')}, expected AWS::Serverless::Api")
    api["Properties"]["GatewayResponses"] = gateway_responses()


def function_runtime(template: dict[str, Any]) -> str:
    """The one Python runtime every function of the template runs (Chalice sets it per
    function, from the interpreter that packaged it)."""
    runtimes = {
        str(res["Properties"].get("Runtime"))
        for res in template.get("Resources", {}).values()
        if res.get("Type") == "AWS::Serverless::Function"
    }
    if len(runtimes) != 1:
        raise RuntimeError(f"expected one runtime for every function, found {sorted(runtimes)}")
    return runtimes.pop()


def finish_zip(template: dict[str, Any], zip_path: Path) -> dict[str, list[str]]:
    from infra.lambdazip import finish

    runtime = function_runtime(template)
    done = finish(zip_path, runtime)
    if not done["added"]:
        print(
            f"note: no bytecode in {zip_path.name}: this is Python "
            f"{sys.version_info.major}.{sys.version_info.minor}, the functions run {runtime}",
            file=sys.stderr,
        )
    return done


def package(stage: str, out: Path, project_dir: Path = ROOT) -> Path:
    """Package `stage` into `out`; return the path of the final template.json."""
    if stage not in CLOUD_STAGES:
        raise SystemExit(f"stage must be one of {CLOUD_STAGES} (local never deploys)")
    import yaml

    generated = chalice_package(stage, out, project_dir)
    # Chalice's YAML uses long-form intrinsics ({"Fn::Sub": ...}): plain safe_load reads it.
    template = pin_stage(yaml.safe_load(generated.read_text()), stage)
    link_feedback_topic(template, stage)
    apply_security_headers(template)
    apply_gateway_responses(template)
    finish_zip(template, out / "deployment.zip")
    final = out / "template.json"
    final.write_text(json.dumps(template, indent=2) + "\n")
    generated.unlink()
    return final


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stage", required=True, choices=CLOUD_STAGES)
    ap.add_argument("--out", type=Path, help="output directory (default build/<stage>)")
    args = ap.parse_args(argv)
    out = args.out or ROOT / "build" / args.stage
    path = package(args.stage, out)
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
