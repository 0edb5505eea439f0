"""Expand the packaged SAM template into plain CloudFormation, offline (runs in build/.venv-scan).

    build/.venv-scan/bin/python infra/sam_transform.py build/prod/template.json > expanded.json

This is what CloudFormation's AWS::Serverless-2016-10-31 transform does at deploy time
(same library, aws-sam-translator). tests/infra/test_template.py lints the result with cfn-lint and
checks the generated SNS subscription, schedule rule and API stage.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any


class _NoManagedPolicies:
    """SAM only needs this for `Policies:` on functions; ours use Chalice-made roles."""

    def load(self) -> dict[str, str]:
        return {}


def expand(template: dict[str, Any]) -> dict[str, Any]:
    from samtranslator.translator.transform import transform

    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    for res in template.get("Resources", {}).values():
        if res.get("Type") == "AWS::Serverless::Function":
            # `aws cloudformation package` rewrites the local zip path to an S3 URI
            res["Properties"]["CodeUri"] = "s3://artifacts-bucket/deployment.zip"
    return dict(transform(template, {}, _NoManagedPolicies()))


def main(argv: list[str]) -> int:
    with open(argv[1]) as f:
        template = json.load(f)
    json.dump(expand(template), sys.stdout, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
