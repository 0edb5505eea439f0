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
MERGE_TEMPLATE = ROOT / "infra" / "resources.yaml"
CLOUD_STAGES = ("dev", "prod")


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


def package(stage: str, out: Path, project_dir: Path = ROOT) -> Path:
    """Package `stage` into `out`; return the path of the final template.json."""
    if stage not in CLOUD_STAGES:
        raise SystemExit(f"stage must be one of {CLOUD_STAGES} (local never deploys)")
    import yaml

    generated = chalice_package(stage, out, project_dir)
    # Chalice's YAML uses long-form intrinsics ({"Fn::Sub": ...}): plain safe_load reads it.
    template = pin_stage(yaml.safe_load(generated.read_text()), stage)
    link_feedback_topic(template, stage)
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
