"""The packaged CloudFormation template: linted, scanned, and its security properties asserted.

One session fixture runs the real packaging (`infra/package.py`, i.e. `chalice package
--pkg-format cloudformation --merge-template infra/resources.yaml` plus the stage pin and
topic link) for dev and prod; every test reads the resulting template.json. No AWS account.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from devstack.bootstrap import table_definitions
from infra import deploy, package
from infra.lambdazip import is_ours, pyc_name

ROOT = Path(__file__).resolve().parents[2]
STAGES = ("dev", "prod")
CONFIG = json.loads((ROOT / ".chalice" / "config.json").read_text())
SCAN_VENV = ROOT / "build" / ".venv-scan"  # `make scan-venv`
CHECKOV = SCAN_VENV / "bin" / "checkov"
SCAN_PYTHON = SCAN_VENV / "bin" / "python"

CACHING_DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
CACHING_OPTIMIZED = "658327ea-f89d-4fab-a63d-7e88639e58f6"
ALL_VIEWER_EXCEPT_HOST = "b689b0a8-53d0-40ab-baf2-68738e2966ac"
TURNSTILE = "https://challenges.cloudflare.com"

# cfn-lint warnings we accept (rule id -> why). None today.
ALLOWED_LINT_WARNINGS: dict[str, str] = {}

Template = dict[str, Any]
IMPORTS_CHARSET_NORMALIZER = re.compile(rb"^\s*(from|import)\s+charset_normalizer\b", re.M)


# --------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="session")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for stage in STAGES:
        out[stage] = package.package(stage, tmp_path_factory.mktemp(f"pkg-{stage}"))
    return out


@pytest.fixture(scope="session")
def templates(packaged: dict[str, Path]) -> dict[str, Template]:
    return {stage: json.loads(path.read_text()) for stage, path in packaged.items()}


@pytest.fixture(scope="session")
def prod(templates: dict[str, Template]) -> Template:
    return templates["prod"]


def res(t: Template, name: str, type_: str | None = None) -> dict[str, Any]:
    r = t["Resources"][name]
    if type_:
        assert r["Type"] == type_, f"{name} is {r['Type']}"
    return r


def props(t: Template, name: str) -> dict[str, Any]:
    return t["Resources"][name]["Properties"]


def of_type(t: Template, type_: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in t["Resources"].items() if v.get("Type") == type_}


def sub(value: Any, stage: str) -> str:
    """Resolve `!Sub "...${Stage}..."` (only the Stage parameter) to a plain string."""
    if isinstance(value, dict):
        value = value["Fn::Sub"]
    assert isinstance(value, str), value
    return value.replace("${Stage}", stage)


def env(stage: str) -> dict[str, str]:
    return CONFIG["stages"][stage]["environment_variables"]


FUNCTION_KEYS = {  # template resource -> Chalice lambda_functions key
    "APIHandler": "api_handler",
    "HandleSesFeedback": "handle_ses_feedback",
    "SweepOutbox": "sweep_outbox",
    "SweepRetention": "sweep_retention",
}


def policy_file(stage: str, function: str) -> dict[str, Any]:
    """The policy file of one function (`function`: a template resource or Chalice name)."""
    key = FUNCTION_KEYS.get(function, function)
    name = CONFIG["stages"][stage]["lambda_functions"][key]["iam_policy_file"]
    return json.loads((ROOT / ".chalice" / name).read_text())


def all_policies_text(stage: str) -> str:
    return json.dumps([policy_file(stage, f) for f in FUNCTION_KEYS])


def as_list(v: Any) -> list[Any]:
    return v if isinstance(v, list) else [v]


# --------------------------------------------------------------------------- linters
def _cfn_lint(*paths: Path) -> list[dict[str, Any]]:
    exe = Path(sys.executable).parent / "cfn-lint"
    cmd = [str(exe if exe.exists() else shutil.which("cfn-lint") or "cfn-lint")]
    proc = subprocess.run(
        [*cmd, "--format", "json", *map(str, paths)], capture_output=True, text=True
    )
    assert proc.stdout.strip(), proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.parametrize("stage", STAGES)
def test_cfn_lint_has_no_errors(packaged: dict[str, Path], stage: str) -> None:
    findings = _cfn_lint(packaged[stage], ROOT / "infra" / "bootstrap.yaml")
    errors = [f for f in findings if f["Level"] == "Error"]
    assert errors == [], json.dumps(errors, indent=1)
    warnings = [f for f in findings if f["Level"] == "Warning"]
    unexpected = [w for w in warnings if w["Rule"]["Id"] not in ALLOWED_LINT_WARNINGS]
    assert unexpected == [], json.dumps(unexpected, indent=1)


def test_checkov_has_no_failed_checks(packaged: dict[str, Path]) -> None:
    if not CHECKOV.exists():
        pytest.skip("checkov not installed: run `make scan-venv` (creates build/.venv-scan)")
    proc = subprocess.run(
        [
            str(CHECKOV),
            "--framework",
            "cloudformation",
            "--skip-download",
            "--output",
            "json",
            "-f",
            str(packaged["prod"]),
            "-f",
            str(packaged["dev"]),
            "-f",
            str(ROOT / "infra" / "bootstrap.yaml"),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE"},
    )
    reports = json.loads(proc.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    assert reports, proc.stderr
    for report in reports:
        summary = report["summary"]
        failed = report["results"].get("failed_checks", [])
        assert summary["failed"] == 0, [(c["check_id"], c["resource"]) for c in failed]
        assert summary["parsing_errors"] == 0
        assert summary["passed"] > 50  # it really looked at the templates
        for skipped in report["results"].get("skipped_checks", []):
            comment = (skipped.get("check_result") or {}).get("suppress_comment", "")
            assert len(comment) >= 20, f"unjustified skip {skipped['check_id']}"
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_every_checkov_skip_is_justified() -> None:
    """Works without checkov: each Metadata skip in our templates carries a real comment."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    for name in ("resources.yaml", "bootstrap.yaml"):
        t = yaml.load((ROOT / "infra" / name).read_text(), Loader=Loader)  # noqa: S506
        for rname, r in t["Resources"].items():
            for skip in ((r.get("Metadata") or {}).get("checkov") or {}).get("skip", []):
                assert re.fullmatch(r"CKV2?_AWS_\d+", skip["id"]), (rname, skip)
                assert len(skip.get("comment", "")) >= 20, (rname, skip)


@pytest.fixture(scope="session")
def expanded(packaged: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The prod template after the SAM transform (what CloudFormation really creates)."""
    if not SCAN_PYTHON.exists():
        pytest.skip("aws-sam-translator missing: run `make scan-venv` (creates build/.venv-scan)")
    proc = subprocess.run(
        [str(SCAN_PYTHON), str(ROOT / "infra" / "sam_transform.py"), str(packaged["prod"])],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = tmp_path_factory.mktemp("expanded") / "expanded.json"
    out.write_text(proc.stdout)
    return out


def test_sam_expansion_lints_clean_and_wires_events(expanded: Path) -> None:
    findings = [f for f in _cfn_lint(expanded) if f["Level"] in ("Error", "Warning")]
    assert findings == [], json.dumps(findings, indent=1)
    t = json.loads(expanded.read_text())
    assert not of_type(t, "AWS::Serverless::Function")
    fns = of_type(t, "AWS::Lambda::Function")
    assert len(fns) == 4 and all(
        f["Properties"]["Architectures"] == ["arm64"] for f in fns.values()
    )
    for f in fns.values():  # Globals merged into every function
        assert f["Properties"]["Environment"]["Variables"]["SENDER_EMAIL"] == {"Ref": "SenderEmail"}
    subscriptions = of_type(t, "AWS::SNS::Subscription")
    assert set(subscriptions) == {
        "AlarmEmailSubscription",
        "HandleSesFeedbackHandleSesFeedbackSnsSubscription",
    }
    subscription = subscriptions["HandleSesFeedbackHandleSesFeedbackSnsSubscription"]
    assert subscription["Properties"] == {
        "Endpoint": {"Fn::GetAtt": ["HandleSesFeedback", "Arn"]},
        "Protocol": "lambda",
        "TopicArn": {"Ref": "SesFeedbackTopic"},
    }
    rules = {
        r["Properties"]["Targets"][0]["Arn"]["Fn::GetAtt"][0]: r["Properties"]["ScheduleExpression"]
        for r in of_type(t, "AWS::Events::Rule").values()
    }
    assert rules == {"SweepOutbox": "rate(5 minutes)", "SweepRetention": "rate(1 day)"}
    # exactly one stage (SAM's implicit public `Stage` is gone: no StageName on deployments)
    ((stage_id, stage),) = of_type(t, "AWS::ApiGateway::Stage").items()
    assert stage["Properties"]["StageName"] == "api"
    assert "AccessLogSetting" in stage["Properties"]
    assert stage["Properties"]["MethodSettings"][0]["ThrottlingRateLimit"] == {
        "Ref": "ApiThrottleRate"
    }
    for deployment in of_type(t, "AWS::ApiGateway::Deployment").values():
        assert "StageName" not in deployment["Properties"]
    (api,) = of_type(t, "AWS::ApiGateway::RestApi").values()
    assert "DependsOn" not in api  # the account log role comes from the bootstrap stack
    assert api["Properties"]["EndpointConfiguration"] == {"Types": ["REGIONAL"]}
    # the regional web ACL is associated with exactly that stage
    (assoc,) = of_type(t, "AWS::WAFv2::WebACLAssociation").values()
    assert assoc["Properties"]["WebACLArn"] == {"Fn::GetAtt": ["ApiWebAcl", "Arn"]}
    assert assoc["Properties"]["ResourceArn"]["Fn::Sub"].endswith(
        "::/restapis/${RestAPI}/stages/${" + stage_id + "}"
    )
    # gateway responses reached the API definition
    responses = api["Properties"]["Body"]["x-amazon-apigateway-gateway-responses"]
    assert set(responses) == set(package.GATEWAY_RESPONSES)
    feedback = fns["HandleSesFeedback"]["Properties"]
    assert feedback["DeadLetterConfig"] == {
        "TargetArn": {"Fn::GetAtt": ["FeedbackDeadLetterQueue", "Arn"]}
    }
    (invoke,) = of_type(t, "AWS::Lambda::EventInvokeConfig").values()
    assert invoke["Properties"]["FunctionName"] == {"Ref": "HandleSesFeedback"}
    assert invoke["Properties"]["MaximumRetryAttempts"] == 2
    for name, fn in fns.items():
        assert fn["Properties"]["TracingConfig"] == {"Mode": "Active"}, name


# --------------------------------------------------------------------------- stage plumbing
def test_the_package_ships_the_bytecode_of_our_code_only(packaged: dict[str, Path]) -> None:
    """Lambda can't write __pycache__: app.py and every chalicelib module come compiled."""
    for stage, template in packaged.items():
        with zipfile.ZipFile(template.parent / "deployment.zip") as z:
            names = set(z.namelist())
        ours = sorted(n for n in names if is_ours(n))
        assert "app.py" in ours and "chalicelib/checkout.py" in ours, stage
        assert [n for n in ours if pyc_name(n) not in names] == [], stage
        pycs = {n for n in names if n.endswith(".pyc")}
        assert pycs == {pyc_name(n) for n in ours}, stage  # none for the dependencies
        mail_sources = {
            n
            for n in names
            if n.startswith("chalicelib/templates/")
            and not n.startswith(("chalicelib/templates/pages/", "chalicelib/templates/_compiled/"))
            and not n.endswith("/")
        }
        assert "chalicelib/data/botocore/endpoints.json" in names, stage
        compiled = [n for n in ours if n.startswith("chalicelib/templates/_compiled/tmpl_")]
        assert mail_sources and len(compiled) == len(mail_sources), stage


def test_the_package_leaves_out_charset_normalizer_which_only_requests_names(
    packaged: dict[str, Path],
) -> None:
    for stage, template in packaged.items():
        with zipfile.ZipFile(template.parent / "deployment.zip") as z:
            names = z.namelist()
            assert not [n for n in names if n.startswith("charset_normalizer")], stage
            importing = {
                n.split("/", 1)[0]
                for n in names
                if n.endswith(".py") and IMPORTS_CHARSET_NORMALIZER.search(z.read(n))
            }
        assert importing == {"requests"}, stage  # optional there (guarded imports)
        assert "requests/__init__.py" in names, stage


@pytest.mark.parametrize("stage", STAGES)
def test_stage_parameter_is_pinned(templates: dict[str, Template], stage: str) -> None:
    p = templates[stage]["Parameters"]["Stage"]
    assert p["AllowedValues"] == [stage] and p["Default"] == stage


def test_must_deploy_in_us_east_1(prod: Template) -> None:
    assertion = prod["Rules"]["MustDeployInUsEast1"]["Assertions"][0]["Assert"]
    assert assertion == {"Fn::Equals": [{"Ref": "AWS::Region"}, "us-east-1"]}


@pytest.mark.parametrize("stage", STAGES)
def test_names_agree_between_config_template_and_policy(
    templates: dict[str, Template], stage: str
) -> None:
    t, e = templates[stage], env(stage)
    assert sub(props(t, "OrdersTable")["TableName"], stage) == e["ORDERS_TABLE"]
    assert sub(props(t, "SuppressionTable")["TableName"], stage) == e["SUPPRESSION_TABLE"]
    assert sub(props(t, "RateLimitTable")["TableName"], stage) == e["RATE_LIMIT_TABLE"]
    assert sub(props(t, "SesConfigurationSet")["Name"], stage) == e["SES_CONFIGURATION_SET"]
    assert sub(props(t, "SesFeedbackTopic")["TopicName"], stage) == e["SES_FEEDBACK_TOPIC"]
    assert e["SES_FEEDBACK_TOPIC"] == package.feedback_topic_name(stage)
    assert e["ORIGIN_VERIFY_PARAM"] == deploy.origin_verify_param(stage)
    assert e["TURNSTILE_SECRET_PARAM"] == deploy.turnstile_secret_param(stage)
    assert e["LINK_SECRET_PARAM"] == deploy.link_secret_param(stage)
    assert e["ADMIN_SECRET_PARAM"] == deploy.admin_secret_param(stage)
    # the policies name exactly these resources
    text = all_policies_text(stage)
    for table in (e["ORDERS_TABLE"], e["SUPPRESSION_TABLE"], e["RATE_LIMIT_TABLE"]):
        assert f":table/{table}" in text
    assert f"configuration-set/{e['SES_CONFIGURATION_SET']}" in text
    assert f':parameter{e["ORIGIN_VERIFY_PARAM"]}"' in text
    assert f':parameter{e["TURNSTILE_SECRET_PARAM"]}"' in text
    assert f':parameter{e["LINK_SECRET_PARAM"]}"' in text
    dlq = sub(props(t, "FeedbackDeadLetterQueue")["QueueName"], stage)
    assert f':{dlq}"' in text
    # and the packaged functions carry the config's variables
    for fn in of_type(t, "AWS::Serverless::Function").values():
        assert fn["Properties"]["Environment"]["Variables"] == e
    for output in ("OrdersTableName", "SuppressionTableName"):
        assert sub(t["Outputs"][output]["Value"], stage) in e.values()


def test_template_env_from_parameters_via_globals(prod: Template) -> None:
    variables = prod["Globals"]["Function"]["Environment"]["Variables"]
    assert variables == {
        "SENDER_EMAIL": {"Ref": "SenderEmail"},
        "MERCHANT_EMAIL": {"Ref": "MerchantEmail"},
        "SES_FEEDBACK_TOPIC_ARN": {"Ref": "SesFeedbackTopic"},
        "TURNSTILE_HOSTNAMES": {"Ref": "DomainName"},
        "PUBLIC_BASE_URL": {"Fn::Sub": "https://${DomainName}"},  # links in emails
    }
    # nothing the functions set themselves is silently overridden by Globals
    assert not set(variables) & set(env("prod"))


# --------------------------------------------------------------------------- compute
def test_functions(prod: Template) -> None:
    fns = of_type(prod, "AWS::Serverless::Function")
    assert set(fns) == {"APIHandler", "HandleSesFeedback", "SweepOutbox", "SweepRetention"}, (
        "a new Lambda needs FunctionName/LoggingConfig/alarms in infra/resources.yaml"
    )
    handlers = {k: v["Properties"]["Handler"] for k, v in fns.items()}
    assert handlers == {
        "APIHandler": "app.app",
        "HandleSesFeedback": "app.handle_ses_feedback",
        "SweepOutbox": "app.sweep_outbox",
        "SweepRetention": "app.sweep_retention",
    }
    log_groups = of_type(prod, "AWS::Logs::LogGroup")
    for name, fn in fns.items():
        p = fn["Properties"]
        assert p["Architectures"] == ["arm64"], name
        assert p["Runtime"] == "python3.11"
        fname = sub(p["FunctionName"], "prod")
        assert fname.startswith("juice-orders-prod-")
        group = p["LoggingConfig"]["LogGroup"]["Ref"]
        assert sub(log_groups[group]["Properties"]["LogGroupName"], "prod") == (
            f"/aws/lambda/{fname}"
        )
        assert log_groups[group]["Properties"]["RetentionInDays"] == 30
    # Chalice 1.34's `${ApiHandler}` (a resource that does not exist) is overridden
    assert "${ApiHandler}" not in json.dumps(prod)


def test_feedback_handler_subscribed_to_our_topic(prod: Template) -> None:
    events = props(prod, "HandleSesFeedback")["Events"]
    sns = [e for e in events.values() if e["Type"] == "SNS"]
    assert len(sns) == 1
    assert sns[0]["Properties"]["Topic"] == {"Ref": "SesFeedbackTopic"}
    res(prod, "SesFeedbackTopic", "AWS::SNS::Topic")
    dlq = props(prod, "HandleSesFeedback")["DeadLetterQueue"]
    assert dlq == {"Type": "SQS", "TargetArn": {"Fn::GetAtt": ["FeedbackDeadLetterQueue", "Arn"]}}


def test_link_feedback_topic_refuses_a_foreign_topic() -> None:
    t = {
        "Resources": {
            "F": {
                "Type": "AWS::Serverless::Function",
                "Properties": {
                    "Events": {
                        "E": {
                            "Type": "SNS",
                            "Properties": {"Topic": {"Fn::Sub": "arn:x:ses-other"}},
                        }
                    }
                },
            }
        }
    }
    with pytest.raises(RuntimeError, match="juice-orders-prod-ses-feedback"):
        package.link_feedback_topic(t, "prod")


def test_sweeper_is_scheduled_every_5_minutes(prod: Template) -> None:
    events = props(prod, "SweepOutbox")["Events"]
    schedules = [e["Properties"]["Schedule"] for e in events.values() if e["Type"] == "Schedule"]
    assert schedules == ["rate(5 minutes)"]


def test_rest_api(prod: Template) -> None:
    p = props(prod, "RestAPI")
    assert res(prod, "RestAPI")["Type"] == "AWS::Serverless::Api"
    assert p["EndpointConfiguration"] == "REGIONAL"
    assert p["StageName"] == "api"
    assert sub(p["Name"], "prod") == "juice-orders-prod"
    assert p["DefinitionBody"]["info"]["title"] == p["Name"]
    assert p["TracingEnabled"] is True
    assert p["AccessLogSetting"]["DestinationArn"] == {"Fn::GetAtt": ["ApiAccessLogGroup", "Arn"]}
    json.loads(p["AccessLogSetting"]["Format"].replace("$context.", "x"))  # valid JSON lines
    assert p["MethodSettings"][0]["ThrottlingRateLimit"] == {"Ref": "ApiThrottleRate"}
    paths = p["DefinitionBody"]["paths"]
    assert "post" in paths["/orders"] and "get" in paths["/catalog"]


# --------------------------------------------------------------------------- data
def _shape(defn: dict[str, Any]) -> dict[str, Any]:
    return {
        "KeySchema": defn["KeySchema"],
        "AttributeDefinitions": sorted(
            defn["AttributeDefinitions"], key=lambda a: a["AttributeName"]
        ),
        "GlobalSecondaryIndexes": defn.get("GlobalSecondaryIndexes", []),
        "BillingMode": defn["BillingMode"],
    }


def test_tables_match_devstack_shapes(prod: Template) -> None:
    e = env("prod")
    wanted = table_definitions(e["ORDERS_TABLE"], e["SUPPRESSION_TABLE"], e["RATE_LIMIT_TABLE"])
    by_name = {
        sub(t["Properties"]["TableName"], "prod"): t["Properties"]
        for t in of_type(prod, "AWS::DynamoDB::Table").values()
    }
    assert set(by_name) == {d["TableName"] for d in wanted}
    for d in wanted:
        assert _shape(by_name[d["TableName"]]) == _shape(d), d["TableName"]


def test_tables_are_protected(prod: Template) -> None:
    for t in of_type(prod, "AWS::DynamoDB::Table").values():
        p = t["Properties"]
        assert p["BillingMode"] == "PAY_PER_REQUEST"
        assert p["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
        assert p["SSESpecification"]["SSEEnabled"] is True
        # every table expires on `expires_at` (orders: idempotency records)
        assert p["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    for keep in ("OrdersTable", "SuppressionTable"):
        assert res(prod, keep)["DeletionPolicy"] == "Retain"
        assert res(prod, keep)["UpdateReplacePolicy"] == "Retain"
        assert props(prod, keep)["DeletionProtectionEnabled"] is True
        assert res(prod, keep)["Condition"] == "CreateRetainedTables"
    # rate limits are disposable: deleted with the stack, so no deletion protection
    assert res(prod, "RateLimitTable")["DeletionPolicy"] == "Delete"
    assert "DeletionProtectionEnabled" not in props(prod, "RateLimitTable")
    assert "Condition" not in res(prod, "RateLimitTable")


def test_retained_tables_can_be_adopted_on_a_second_deploy(prod: Template) -> None:
    """After a teardown the retained tables still exist: a new stack must not try to create
    them again ("already exists"). AdoptRetainedTables=true skips them; nothing in the
    template refers to them other than by name, so the stack works either way."""
    param = prod["Parameters"]["AdoptRetainedTables"]
    assert param["AllowedValues"] == ["true", "false"] and param["Default"] == "false"
    assert prod["Conditions"]["CreateRetainedTables"] == {
        "Fn::Equals": [{"Ref": "AdoptRetainedTables"}, "false"]
    }
    text = json.dumps({k: v for k, v in prod["Resources"].items() if not k.endswith("Table")})
    for table in ("OrdersTable", "SuppressionTable"):
        assert f'"Ref": "{table}"' not in text and f'"{table}", "Arn"' not in text
        assert f'"DependsOn": "{table}"' not in text


# --------------------------------------------------------------------------- site
def test_site_bucket_is_private_versioned_encrypted(prod: Template) -> None:
    p = props(prod, "SiteBucket")
    assert p["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert p["VersioningConfiguration"] == {"Status": "Enabled"}
    assert p["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    enc = p["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert enc["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms")
    assert "WebsiteConfiguration" not in p


def test_site_bucket_policy_tls_only_and_cloudfront_only(prod: Template) -> None:
    p = props(prod, "SiteBucketPolicy")
    assert p["Bucket"] == {"Ref": "SiteBucket"}
    stmts = p["PolicyDocument"]["Statement"]
    deny = [s for s in stmts if s["Effect"] == "Deny"]
    assert len(deny) == 1
    assert deny[0]["Principal"] == "*" and deny[0]["Action"] == "s3:*"
    assert deny[0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert deny[0]["Resource"] == [
        {"Fn::GetAtt": ["SiteBucket", "Arn"]},
        {"Fn::Sub": "${SiteBucket.Arn}/*"},
    ]
    allow = [s for s in stmts if s["Effect"] == "Allow" and s["Action"] == "s3:GetObject"]
    assert len(allow) == 1
    assert allow[0]["Principal"] == {"Service": "cloudfront.amazonaws.com"}
    assert allow[0]["Action"] == "s3:GetObject"
    source = allow[0]["Condition"]["StringEquals"]["AWS:SourceArn"]["Fn::Sub"]
    assert source.endswith(":distribution/${Distribution}")


def _distribution(prod: Template) -> dict[str, Any]:
    return props(prod, "Distribution")["DistributionConfig"]


def test_cloudfront_origins(prod: Template) -> None:
    d = _distribution(prod)
    origins = {o["Id"]: o for o in d["Origins"]}
    site = origins["site"]
    assert site["DomainName"] == {"Fn::GetAtt": ["SiteBucket", "RegionalDomainName"]}
    assert site["OriginAccessControlId"] == {"Fn::GetAtt": ["SiteOriginAccessControl", "Id"]}
    assert site["S3OriginConfig"] == {"OriginAccessIdentity": ""}
    oac = props(prod, "SiteOriginAccessControl")["OriginAccessControlConfig"]
    assert (oac["OriginAccessControlOriginType"], oac["SigningBehavior"]) == ("s3", "always")
    assert oac["SigningProtocol"] == "sigv4"
    api = origins["api"]
    assert "${RestAPI}.execute-api.${AWS::Region}" in api["DomainName"]["Fn::Sub"]
    assert "OriginPath" not in api  # stage `api` is part of the viewer path
    assert api["CustomOriginConfig"]["OriginProtocolPolicy"] == "https-only"
    assert api["CustomOriginConfig"]["OriginSSLProtocols"] == ["TLSv1.2"]
    assert api["OriginCustomHeaders"] == [
        {"HeaderName": "X-Origin-Verify", "HeaderValue": {"Ref": "OriginVerifySecret"}}
    ]
    secret = prod["Parameters"]["OriginVerifySecret"]
    assert secret["NoEcho"] is True and "Default" not in secret and secret["MinLength"] >= 32


def test_cloudfront_behaviours_and_tls(prod: Template) -> None:
    d = _distribution(prod)
    assert d["ViewerCertificate"] == {
        "AcmCertificateArn": {"Ref": "CertificateArn"},
        "SslSupportMethod": "sni-only",
        "MinimumProtocolVersion": "TLSv1.2_2021",
    }
    assert d["Aliases"] == [{"Ref": "DomainName"}]
    assert d["WebACLId"] == {"Fn::GetAtt": ["WebAcl", "Arn"]}
    default = d["DefaultCacheBehavior"]
    assert default["TargetOriginId"] == "site"
    assert default["ViewerProtocolPolicy"] == "redirect-to-https"
    assert default["CachePolicyId"] == CACHING_OPTIMIZED
    assert default["ResponseHeadersPolicyId"] == {"Ref": "SecurityHeadersPolicy"}
    behaviours = {b["PathPattern"]: b for b in d["CacheBehaviors"]}
    # first match wins: the specific API paths come before /api/*
    assert list(behaviours) == ["/admin", "/api/admin/*", "/api/catalog", "/api/*"]
    # /admin: the site's admin.html through a viewer-request rewrite, cached like the site
    page = behaviours.pop("/admin")
    assert page["TargetOriginId"] == "site" and page["CachePolicyId"] == CACHING_OPTIMIZED
    assert page["ResponseHeadersPolicyId"] == {"Ref": "SecurityHeadersPolicy"}
    (fa,) = page["FunctionAssociations"]
    assert fa["EventType"] == "viewer-request"
    code = props(prod, "AdminPathFunction")["FunctionCode"]
    assert "request.uri = '/admin.html'" in code
    every_method = {"GET", "HEAD", "OPTIONS", "PUT", "PATCH", "POST", "DELETE"}
    for b in behaviours.values():
        assert b["TargetOriginId"] == "api"
        assert b["ViewerProtocolPolicy"] == "redirect-to-https"
        assert b["ResponseHeadersPolicyId"] == {"Ref": "SecurityHeadersPolicy"}
        assert b["OriginRequestPolicyId"] != ALL_VIEWER_EXCEPT_HOST
    api, admin = behaviours["/api/*"], behaviours["/api/admin/*"]
    catalog = behaviours["/api/catalog"]
    assert api["CachePolicyId"] == admin["CachePolicyId"] == CACHING_DISABLED
    assert set(api["AllowedMethods"]) == set(admin["AllowedMethods"]) == every_method
    assert api["OriginRequestPolicyId"] == {"Ref": "ApiOriginRequestPolicy"}
    assert admin["OriginRequestPolicyId"] == {"Ref": "AdminOriginRequestPolicy"}
    assert catalog["OriginRequestPolicyId"] == {"Ref": "ApiOriginRequestPolicy"}
    assert catalog["CachePolicyId"] == {"Ref": "CatalogCachePolicy"}
    assert catalog["AllowedMethods"] == ["GET", "HEAD"]


def test_catalog_is_cached_at_most_60_seconds_for_everyone(prod: Template) -> None:
    cfg = props(prod, "CatalogCachePolicy")["CachePolicyConfig"]
    assert (cfg["MinTTL"], cfg["DefaultTTL"], cfg["MaxTTL"]) == (0, 60, 60)
    key = cfg["ParametersInCacheKeyAndForwardedToOrigin"]
    assert key["CookiesConfig"] == {"CookieBehavior": "none"}
    assert key["HeadersConfig"] == {"HeaderBehavior": "none"}
    assert key["QueryStringsConfig"] == {"QueryStringBehavior": "none"}


API_HEADERS = {"accept", "content-type", "idempotency-key", "origin", "cloudfront-viewer-address"}


def test_origin_request_policies_forward_only_what_the_api_reads(prod: Template) -> None:
    api = props(prod, "ApiOriginRequestPolicy")["OriginRequestPolicyConfig"]
    assert {h.lower() for h in api["HeadersConfig"]["Headers"]} == API_HEADERS
    assert api["HeadersConfig"]["HeaderBehavior"] == "whitelist"
    assert api["CookiesConfig"] == {"CookieBehavior": "none"}  # no cookies to /api/*
    assert api["QueryStringsConfig"] == {"QueryStringBehavior": "none"}
    admin = props(prod, "AdminOriginRequestPolicy")["OriginRequestPolicyConfig"]
    assert {h.lower() for h in admin["HeadersConfig"]["Headers"]} == API_HEADERS | {
        "x-requested-with"
    }
    assert admin["CookiesConfig"] == {"CookieBehavior": "whitelist", "Cookies": ["admin_session"]}
    # every query parameter the admin routes read reaches the origin (and only those)
    import inspect

    from chalicelib import admin as admin_module

    read = set(re.findall(r'params\.get\("(\w+)"\)', inspect.getsource(admin_module)))
    forwarded = admin["QueryStringsConfig"]
    assert forwarded["QueryStringBehavior"] == "whitelist"
    assert (
        set(forwarded["QueryStrings"])
        == read
        == {"day", "status", "q", "limit", "cursor", "from", "to"}
    )
    assert "host" not in {h.lower() for h in api["HeadersConfig"]["Headers"]}


def test_unknown_site_paths_get_the_404_page(prod: Template) -> None:
    (page,) = _distribution(prod)["CustomErrorResponses"]
    assert page == {
        "ErrorCode": 404,
        "ResponseCode": 404,
        "ResponsePagePath": "/404.html",
        "ErrorCachingMinTTL": 60,
    }
    # S3 only says 404 (rather than 403 AccessDenied) when the reader may list the bucket
    stmts = props(prod, "SiteBucketPolicy")["PolicyDocument"]["Statement"]
    (listing,) = [s for s in stmts if s["Action"] == "s3:ListBucket"]
    assert listing["Resource"] == {"Fn::GetAtt": ["SiteBucket", "Arn"]}
    assert listing["Principal"] == {"Service": "cloudfront.amazonaws.com"}
    assert "AWS:SourceArn" in listing["Condition"]["StringEquals"]
    # the site behaviour forwards no query string, so no viewer can make it list
    assert _distribution(prod)["DefaultCacheBehavior"]["CachePolicyId"] == CACHING_OPTIMIZED
    # publish-site always uploads a 404 page
    assert "404.html" in {o.key for o in deploy.site_plan("prod", "0xSITEKEY")}


def test_security_headers_come_from_the_one_source(prod: Template) -> None:
    source = json.loads((ROOT / "infra" / "security_headers.json").read_text())
    cfg = props(prod, "SecurityHeadersPolicy")["ResponseHeadersPolicyConfig"]
    h = cfg["SecurityHeadersConfig"]
    csp = h["ContentSecurityPolicy"]["ContentSecurityPolicy"]
    parsed = {
        part.split()[0]: part.split()[1:] for part in (p.strip() for p in csp.split(";")) if part
    }
    assert parsed == source["content_security_policy"]
    assert list(parsed) == list(source["content_security_policy"])  # same order too
    headers = {**source["headers"], **source["https_only_headers"]}
    assert h["FrameOptions"]["FrameOption"] == headers["X-Frame-Options"]
    assert h["ReferrerPolicy"]["ReferrerPolicy"] == headers["Referrer-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff" and "ContentTypeOptions" in h
    hsts = headers["Strict-Transport-Security"]
    assert f"max-age={h['StrictTransportSecurity']['AccessControlMaxAgeSec']}" in hsts
    assert h["StrictTransportSecurity"]["IncludeSubdomains"] == ("includeSubDomains" in hsts)
    assert "CustomHeadersConfig" not in cfg  # every header of the file has a typed slot


def test_security_headers_config_maps_other_headers_and_refuses_bad_hsts() -> None:
    cfg = package.security_headers_config(
        {
            "content_security_policy": {"default-src": ["'self'"]},
            "headers": {"Permissions-Policy": "camera=()"},
            "https_only_headers": {"Strict-Transport-Security": "max-age=60; preload"},
        }
    )
    assert cfg["CustomHeadersConfig"] == {
        "Items": [{"Header": "Permissions-Policy", "Value": "camera=()", "Override": True}]
    }
    assert cfg["SecurityHeadersConfig"]["StrictTransportSecurity"]["Preload"] is True
    with pytest.raises(ValueError):
        package.security_headers_config(
            {"content_security_policy": {}, "headers": {"Strict-Transport-Security": "1"}}
        )


def test_security_headers(prod: Template) -> None:
    cfg = props(prod, "SecurityHeadersPolicy")["ResponseHeadersPolicyConfig"]
    h = cfg["SecurityHeadersConfig"]
    assert h["StrictTransportSecurity"]["AccessControlMaxAgeSec"] >= 31536000
    assert h["StrictTransportSecurity"]["IncludeSubdomains"] is True
    assert h["ContentTypeOptions"]["Override"] is True
    assert h["ReferrerPolicy"]["ReferrerPolicy"] == "strict-origin-when-cross-origin"
    assert h["FrameOptions"]["FrameOption"] == "DENY"
    directives = {
        part.split()[0]: part.split()[1:]
        for part in (
            p.strip() for p in h["ContentSecurityPolicy"]["ContentSecurityPolicy"].split(";")
        )
        if part
    }
    assert directives["default-src"] == ["'self'"]
    assert set(directives["script-src"]) == {"'self'", TURNSTILE}
    assert set(directives["frame-src"]) == {"'self'", TURNSTILE}
    assert directives["frame-ancestors"] == ["'none'"]
    assert directives["connect-src"] == ["'self'"]  # website/js/api.js relies on same-origin
    assert directives["object-src"] == ["'none'"]
    assert all(v.get("Override", True) for v in h.values() if isinstance(v, dict))


# --------------------------------------------------------------------------- WAF
def test_waf_web_acl(prod: Template) -> None:
    p = props(prod, "WebAcl")
    assert p["Scope"] == "CLOUDFRONT"
    assert p["DefaultAction"] == {"Allow": {}}
    rules = p["Rules"]
    country = rules[0]["Fn::If"]
    assert country[0] == "HasCountryAllowlist" and country[2] == {"Ref": "AWS::NoValue"}
    geo = country[1]
    assert geo["Action"] == {"Block": {}}
    assert geo["Statement"]["NotStatement"]["Statement"]["GeoMatchStatement"] == {
        "CountryCodes": {"Ref": "AllowedCountries"}
    }
    cond = prod["Conditions"]["HasCountryAllowlist"]
    assert cond == {
        "Fn::Not": [{"Fn::Equals": [{"Fn::Join": ["", {"Ref": "AllowedCountries"}]}, ""]}]
    }
    assert prod["Parameters"]["AllowedCountries"]["Default"] == ""
    plain = [geo] + rules[1:]
    priorities = [r["Priority"] for r in plain]
    assert len(set(priorities)) == len(priorities)
    managed = {
        r["Statement"]["ManagedRuleGroupStatement"]["Name"]: r
        for r in plain
        if "ManagedRuleGroupStatement" in r["Statement"]
    }
    assert set(managed) == {
        "AWSManagedRulesCommonRuleSet",
        "AWSManagedRulesKnownBadInputsRuleSet",
        "AWSManagedRulesAmazonIpReputationList",
    }
    for name, r in managed.items():
        assert r["OverrideAction"] == {"None": {}}  # block mode, not Count
        stmt = r["Statement"]["ManagedRuleGroupStatement"]
        assert stmt["VendorName"] == "AWS"
        assert "ExcludedRules" not in stmt
        if name != "AWSManagedRulesCommonRuleSet":
            assert "RuleActionOverrides" not in stmt
    # the common set's 8 KB body rule only counts: the API accepts up to 16 KiB ...
    common = managed["AWSManagedRulesCommonRuleSet"]["Statement"]["ManagedRuleGroupStatement"]
    assert common["RuleActionOverrides"] == [
        {"Name": "SizeRestrictions_BODY", "ActionToUse": {"Count": {}}}
    ]
    # ... and our own rule enforces exactly the API's limit with the API's JSON 413
    from chalicelib.checkout import MAX_BODY_BYTES

    (size,) = [r for r in plain if "SizeConstraintStatement" in r["Statement"]]
    sc = size["Statement"]["SizeConstraintStatement"]
    assert (sc["ComparisonOperator"], sc["Size"]) == ("GT", MAX_BODY_BYTES)
    assert sc["FieldToMatch"] == {"Body": {"OversizeHandling": "MATCH"}}
    response = size["Action"]["Block"]["CustomResponse"]
    assert response["ResponseCode"] == 413
    body = json.loads(p["CustomResponseBodies"][response["CustomResponseBodyKey"]]["Content"])
    assert body == {
        "error": {
            "code": "payload_too_large",
            "message": f"The body is over {MAX_BODY_BYTES} bytes.",
            "fields": {},
        }
    }
    (rate,) = [r for r in plain if "RateBasedStatement" in r["Statement"]]
    assert rate["Action"] == {"Block": {}}
    rb = rate["Statement"]["RateBasedStatement"]
    assert rb["Limit"] == {"Ref": "OrdersRateLimit"} and rb["AggregateKeyType"] == "IP"
    match = rb["ScopeDownStatement"]["ByteMatchStatement"]
    assert match["FieldToMatch"] == {"UriPath": {}}
    assert match["PositionalConstraint"] == "STARTS_WITH"
    assert match["SearchString"] == "/api/orders"
    assert all(r["VisibilityConfig"]["CloudWatchMetricsEnabled"] for r in plain)
    logging = props(prod, "WafLogging")
    assert logging["ResourceArn"] == {"Fn::GetAtt": ["WebAcl", "Arn"]}
    (destination,) = logging["LogDestinationConfigs"]
    assert destination["Fn::Sub"].endswith(":log-group:${WafLogGroup}")  # no ":*" suffix
    assert sub(props(prod, "WafLogGroup")["LogGroupName"], "prod").startswith("aws-waf-logs-")


def test_regional_waf_refuses_the_execute_api_url_without_the_origin_header(
    prod: Template,
) -> None:
    p = props(prod, "ApiWebAcl")
    assert p["Scope"] == "REGIONAL"
    rules = {r["Name"]: r for r in p["Rules"]}
    assert [r["Priority"] for r in p["Rules"]] == [0, 1]
    verify = rules["require-origin-verify"]
    block = verify["Action"]["Block"]["CustomResponse"]
    assert block["ResponseCode"] == 403
    match = verify["Statement"]["NotStatement"]["Statement"]["ByteMatchStatement"]
    assert match["FieldToMatch"] == {"SingleHeader": {"Name": "x-origin-verify"}}
    assert match["PositionalConstraint"] == "EXACTLY"
    # the same secret CloudFront sends
    assert match["SearchString"] == {"Ref": "OriginVerifySecret"}
    origins = {o["Id"]: o for o in _distribution(prod)["Origins"]}
    (header,) = origins["api"]["OriginCustomHeaders"]
    assert header["HeaderName"].lower() == "x-origin-verify"
    assert header["HeaderValue"] == match["SearchString"]
    rate = rules["source-rate-limit"]["Statement"]["RateBasedStatement"]
    assert rate["Limit"] == {"Ref": "ApiDirectRateLimit"} and rate["AggregateKeyType"] == "IP"
    assert rules["source-rate-limit"]["Action"]["Block"]["CustomResponse"]["ResponseCode"] == 429
    for key, body in p["CustomResponseBodies"].items():
        assert body["ContentType"] == "APPLICATION_JSON"
        err = json.loads(body["Content"])["error"]
        assert err["code"] == key and err["message"] and err["fields"] == {}
    assoc = props(prod, "ApiWebAclAssociation")
    assert assoc["WebACLArn"] == {"Fn::GetAtt": ["ApiWebAcl", "Arn"]}
    arn = assoc["ResourceArn"]["Fn::Sub"]
    assert arn.endswith("::/restapis/${RestAPI}/stages/${RestAPI.Stage}")
    logging = props(prod, "ApiWafLogging")
    assert logging["ResourceArn"] == {"Fn::GetAtt": ["ApiWebAcl", "Arn"]}
    assert logging["RedactedFields"] == [{"SingleHeader": {"Name": "x-origin-verify"}}]


def test_gateway_responses_use_the_api_error_shape(prod: Template) -> None:
    responses = props(prod, "RestAPI")["GatewayResponses"]
    assert {"MISSING_AUTHENTICATION_TOKEN", "THROTTLED", "WAF_FILTERED", "ACCESS_DENIED",
            "DEFAULT_4XX", "DEFAULT_5XX"} <= set(responses)  # fmt: skip
    for kind, r in responses.items():
        body = json.loads(r["ResponseTemplates"]["application/json"])
        assert set(body) == {"error"}, kind
        assert set(body["error"]) == {"code", "message", "fields"}, kind
        assert body["error"]["fields"] == {} and body["error"]["message"], kind
        headers = r["ResponseParameters"]["Headers"]
        assert headers["X-Content-Type-Options"] == "'nosniff'", kind
        assert all(v.startswith("'") and v.endswith("'") for v in headers.values()), kind
    assert responses["MISSING_AUTHENTICATION_TOKEN"]["StatusCode"] == "404"
    assert responses["THROTTLED"]["StatusCode"] == "429"
    assert responses["THROTTLED"]["ResponseParameters"]["Headers"]["Retry-After"] == "'5'"
    assert responses["WAF_FILTERED"]["StatusCode"] == "403"
    # the defaults keep API Gateway's own status code
    assert "StatusCode" not in responses["DEFAULT_4XX"]
    assert "StatusCode" not in responses["DEFAULT_5XX"]
    codes = {json.loads(r["ResponseTemplates"]["application/json"])["error"]["code"]
             for r in responses.values()}  # fmt: skip
    # the app's own codes where they mean the same thing
    assert {"rate_limited", "forbidden", "payload_too_large", "internal_error"} <= codes


def test_api_gateway_logging_role_is_per_account_in_the_bootstrap_stack(prod: Template) -> None:
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: {suffix: "…"})
    boot = yaml.load((ROOT / "infra" / "bootstrap.yaml").read_text(), Loader=Loader)  # noqa: S506
    role = boot["Resources"]["ApiGatewayCloudWatchRole"]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "apigateway.amazonaws.com"}
    assert "Condition" not in trust  # API Gateway sends no aws:SourceAccount here
    account = boot["Resources"]["ApiGatewayAccount"]
    assert account["Type"] == "AWS::ApiGateway::Account"
    # and no stage stack touches the account setting
    assert not of_type(prod, "AWS::ApiGateway::Account")
    assert "ApiGatewayCloudWatchRole" not in prod["Resources"]
    assert "ManageApiGatewayAccount" not in prod["Parameters"]


# --------------------------------------------------------------------------- mail + alarms
def test_ses_configuration_set_and_feedback_destination(prod: Template) -> None:
    cs = props(prod, "SesConfigurationSet")
    assert cs["ReputationOptions"] == {"ReputationMetricsEnabled": True}
    assert cs["DeliveryOptions"] == {"TlsPolicy": "REQUIRE"}
    dest = props(prod, "SesFeedbackEventDestination")
    assert dest["ConfigurationSetName"] == {"Ref": "SesConfigurationSet"}
    ed = dest["EventDestination"]
    assert ed["Enabled"] is True
    assert set(ed["MatchingEventTypes"]) == {"bounce", "complaint", "delivery", "reject"}
    assert ed["SnsDestination"] == {"TopicARN": {"Ref": "SesFeedbackTopic"}}
    (allow_ses, *_) = props(prod, "SesFeedbackTopicPolicy")["PolicyDocument"]["Statement"]
    assert allow_ses["Principal"] == {"Service": "ses.amazonaws.com"}
    assert allow_ses["Condition"]["StringEquals"] == {
        "aws:SourceAccount": {"Ref": "AWS::AccountId"}
    }
    for topic in ("SesFeedbackTopic", "AlarmTopic"):
        assert props(prod, topic)["KmsMasterKeyId"] == {"Ref": "NotificationsKey"}
    assert props(prod, "NotificationsKey")["EnableKeyRotation"] is True


ALARMS = {
    # resource: (namespace, metric, statistic, threshold, dimensions)
    "SesBounceRateAlarm": ("AWS/SES", "Reputation.BounceRate", "Average", 0.05, None),
    "SesComplaintRateAlarm": ("AWS/SES", "Reputation.ComplaintRate", "Average", 0.001, None),
    "ApiHandlerErrorsAlarm": (
        "AWS/Lambda", "Errors", "Sum", 1, [{"Name": "FunctionName", "Value": {"Ref": "APIHandler"}}]
    ),
    "ApiHandlerThrottlesAlarm": (
        "AWS/Lambda", "Throttles", "Sum", 1,
        [{"Name": "FunctionName", "Value": {"Ref": "APIHandler"}}],
    ),
    "Api5xxAlarm": (
        "AWS/ApiGateway", "5XXError", "Sum", 1,
        [{"Name": "ApiName", "Value": {"Fn::Sub": "juice-orders-${Stage}"}},
         {"Name": "Stage", "Value": "api"}],
    ),
    "OutboxFailedForGoodAlarm": ("OrderFulfilment", "OutboxFailedForGood", "Sum", 1, None),
    "MerchantAddressSuppressedAlarm": (
        "OrderFulfilment", "MerchantAddressSuppressed", "Sum", 1, None
    ),
    "FeedbackDeadLetterAlarm": (
        "AWS/SQS", "ApproximateNumberOfMessagesVisible", "Maximum", 1,
        [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["FeedbackDeadLetterQueue", "QueueName"]}}],
    ),
    "FeedbackErrorsAlarm": (
        "AWS/Lambda", "Errors", "Sum", 1,
        [{"Name": "FunctionName", "Value": {"Ref": "HandleSesFeedback"}}],
    ),
    "FeedbackDeadLetterErrorsAlarm": (
        "AWS/Lambda", "DeadLetterErrors", "Sum", 1,
        [{"Name": "FunctionName", "Value": {"Ref": "HandleSesFeedback"}}],
    ),
    "FeedbackEventsDroppedAlarm": (
        "AWS/Lambda", "AsyncEventsDropped", "Sum", 1,
        [{"Name": "FunctionName", "Value": {"Ref": "HandleSesFeedback"}}],
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(ALARMS))
def test_required_alarms(prod: Template, name: str) -> None:
    namespace, metric, stat, threshold, dims = ALARMS[name]
    p = props(prod, name)
    assert (p["Namespace"], p["MetricName"], p["Statistic"]) == (namespace, metric, stat)
    assert p["Threshold"] == threshold
    assert p["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert p["TreatMissingData"] == "notBreaching"
    assert p.get("Dimensions") == dims
    assert p["AlarmActions"] == [{"Ref": "AlarmTopic"}]


def test_alarm_plumbing(prod: Template) -> None:
    from chalicelib.obs import NAMESPACE

    assert NAMESPACE == "OrderFulfilment"
    # the 5XX alarm's ApiName dimension is the API's real name
    assert props(prod, "RestAPI")["Name"] == {"Fn::Sub": "juice-orders-${Stage}"}
    for name, alarm in of_type(prod, "AWS::CloudWatch::Alarm").items():
        assert alarm["Properties"]["TreatMissingData"] == "notBreaching", name
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": "AlarmTopic"}], name
    sub_ = res(prod, "AlarmEmailSubscription", "AWS::SNS::Subscription")
    assert sub_["Condition"] == "HasAlarmEmail"
    assert sub_["Properties"]["Protocol"] == "email"
    assert prod["Conditions"]["HasAlarmEmail"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmEmail"}, ""]}]
    }


# --------------------------------------------------------------------------- IAM
def _statements(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return as_list(doc["Statement"])


def _lambda_roles(t: Template) -> dict[str, dict[str, Any]]:
    fns = of_type(t, "AWS::Serverless::Function")
    names = {fn["Properties"]["Role"]["Fn::GetAtt"][0] for fn in fns.values()}
    return {n: res(t, n, "AWS::IAM::Role") for n in names}


@pytest.mark.parametrize("stage", STAGES)
def test_each_function_has_its_own_role_with_its_own_policy(
    templates: dict[str, Template], stage: str
) -> None:
    t = templates[stage]
    assert CONFIG["stages"][stage]["autogen_policy"] is False
    roles = {}
    for name, fn in of_type(t, "AWS::Serverless::Function").items():
        role_name = fn["Properties"]["Role"]["Fn::GetAtt"][0]
        role = res(t, role_name, "AWS::IAM::Role")
        (policy,) = role["Properties"]["Policies"]
        assert policy["PolicyDocument"] == policy_file(stage, name), name
        assert "ManagedPolicyArns" not in role["Properties"]
        roles[name] = role_name
    assert len(set(roles.values())) == len(FUNCTION_KEYS) == 4, roles


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("function", sorted(FUNCTION_KEYS))
def test_policy_is_least_privilege(stage: str, function: str) -> None:
    """Shape only; tests/infra/test_iam_calls.py proves each grant is called by the code."""
    doc = policy_file(stage, function)
    acct = "arn:${AWS::Partition}:%s:${AWS::Region}:${AWS::AccountId}:"
    by_sid = {s["Sid"]: s for s in _statements(doc)}
    e = env(stage)
    for sid, s in by_sid.items():
        assert s["Effect"] == "Allow"
        for action in as_list(s["Action"]):
            assert "*" not in action, action
        if sid == "WriteTraces":  # X-Ray has no resource-level permissions
            assert set(s["Action"]) == {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}
            assert s["Resource"] == ["*"]
            continue
        for r in as_list(s["Resource"]):
            assert isinstance(r, dict) and r != "*", r  # always a concrete Fn::Sub ARN
            assert r["Fn::Sub"].startswith(acct.split("%s")[0])
        for action in as_list(s["Action"]):
            assert action != "dynamodb:Scan"
    fname = sub(props_of_function(stage, function)["FunctionName"], stage)
    assert {r["Fn::Sub"] for r in by_sid["WriteOwnLogs"]["Resource"]} == {
        acct % "logs" + f"log-group:/aws/lambda/{fname}:*"
    }
    tables = {
        r["Fn::Sub"]
        for s in by_sid.values()
        if any(a.startswith("dynamodb:") for a in s["Action"])
        for r in s["Resource"]
    }
    allowed_tables = {
        acct % "dynamodb" + f"table/{e[k]}" for k in ("ORDERS_TABLE", "SUPPRESSION_TABLE",
                                                       "RATE_LIMIT_TABLE")
    } | {
        acct % "dynamodb" + f"table/{e['ORDERS_TABLE']}/index/{i}"
        for i in ("outbox", "by_day", "by_status", "by_email")  # the back office's three
    } | {acct % "dynamodb" + f"table/{e['SUPPRESSION_TABLE']}/index/recent"}  # fmt: skip
    assert tables <= allowed_tables
    if "SendOrderMailFromOurIdentity" in by_sid:
        ses = by_sid["SendOrderMailFromOurIdentity"]
        assert ses["Action"] == ["ses:SendEmail"]
        assert {r["Fn::Sub"] for r in ses["Resource"]} == {
            acct % "ses" + "identity/${SenderIdentity}",
            acct % "ses" + f"configuration-set/{e['SES_CONFIGURATION_SET']}",
        }
        assert ses["Condition"] == {"StringEquals": {"ses:FromAddress": {"Ref": "SenderEmail"}}}
    if "ReadOwnSecrets" in by_sid:  # the API: all four; the sweeper: the link key only
        own = {r["Fn::Sub"] for r in by_sid["ReadOwnSecrets"]["Resource"]}
        wanted = {"APIHandler": ("TURNSTILE_SECRET_PARAM", "ORIGIN_VERIFY_PARAM",
                                 "LINK_SECRET_PARAM", "ADMIN_SECRET_PARAM"),
                  "SweepOutbox": ("LINK_SECRET_PARAM",)}[function]  # fmt: skip
        assert own == {acct % "ssm" + "parameter" + e[k] for k in wanted}


def test_only_the_right_functions_hold_the_dangerous_grants() -> None:
    def actions_on(function: str, table_key: str) -> set[str]:
        table = env("prod")[table_key]
        return {
            a
            for s in _statements(policy_file("prod", function))
            for r in as_list(s["Resource"])
            if isinstance(r, dict) and r["Fn::Sub"].endswith(f"table/{table}")
            for a in as_list(s["Action"])
        }

    # the API checks the suppression list (a ConditionCheck in each order's transaction; the
    # back office reads it); only the back office's "remove from suppression" (deletes) and
    # erasure (a hashed row) change it - never SES feedback's own soft-bounce counters (no
    # UpdateItem/GetItem here)
    assert actions_on("APIHandler", "SUPPRESSION_TABLE") == {
        "dynamodb:BatchGetItem",
        "dynamodb:ConditionCheckItem",
        "dynamodb:BatchWriteItem",
        "dynamodb:PutItem",
    }
    assert actions_on("SweepOutbox", "SUPPRESSION_TABLE") == {"dynamodb:BatchGetItem"}
    # the retention sweep touches orders only: no suppression, rate limits, mail or secrets
    assert not actions_on("SweepRetention", "SUPPRESSION_TABLE")
    assert not actions_on("SweepRetention", "RATE_LIMIT_TABLE")
    assert actions_on("SweepRetention", "ORDERS_TABLE") == {
        "dynamodb:GetItem",
        "dynamodb:UpdateItem",
    }
    assert not actions_on("HandleSesFeedback", "RATE_LIMIT_TABLE")
    assert not actions_on("SweepOutbox", "RATE_LIMIT_TABLE")
    text = {f: json.dumps(policy_file("prod", f)) for f in FUNCTION_KEYS}
    assert "ssm:GetParameter" not in text["HandleSesFeedback"] + text["SweepRetention"]
    assert "ses:SendEmail" not in text["SweepRetention"]
    assert "turnstile-secret" not in text["SweepOutbox"] + text["HandleSesFeedback"]
    assert "ses:SendEmail" not in text["HandleSesFeedback"]
    assert "sqs:SendMessage" not in text["APIHandler"] + text["SweepOutbox"]
    # batch reads: the API (the back office, a refusal's offer) and the sweeper (suppression)
    assert "dynamodb:BatchGetItem" not in text["HandleSesFeedback"] + text["SweepRetention"]


def props_of_function(stage: str, function: str) -> dict[str, Any]:
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!Sub", lambda loader, suffix, node: {"Fn::Sub": node.value})
    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    t = yaml.load((ROOT / "infra" / "resources.yaml").read_text(), Loader=Loader)  # noqa: S506
    return dict(t["Resources"][function]["Properties"])


def test_timeouts_per_function(prod: Template) -> None:
    fns = of_type(prod, "AWS::Serverless::Function")
    timeout = {name: fn["Properties"]["Timeout"] for name, fn in fns.items()}
    # API: under API Gateway's 29 s integration limit (Lambda's own timeout must fire first,
    # so the code's deadline from get_remaining_time_in_millis() governs) and no longer
    # than the storefront waits (website/js/api.js gives up after 20 s)
    storefront = int(
        re.search(r"timeoutMs = (\d+)", (ROOT / "website/js/api.js").read_text()).group(1)
    )
    assert timeout["APIHandler"] <= min(28, storefront // 1000)
    # ...but longer than one request's own worst case before SES (Turnstile + DNS)
    from chalicelib.settings import load

    s = load()
    assert timeout["APIHandler"] > s.turnstile_timeout * 2 + s.dns_timeout + 5
    # the sweeper: a budget of its own, longer than one SES worst case (3 x (2 + 15) s plus
    # backoff) and the outbox lease, shorter than its 5-minute schedule (no overlap)
    assert s.outbox_lease_seconds < timeout["SweepOutbox"] < 300
    assert timeout["SweepOutbox"] >= 120
    assert 15 <= timeout["HandleSesFeedback"] <= 60


def test_policy_references_only_template_parameters(prod: Template) -> None:
    """`${X}` / Ref in the policy file must resolve inside the merged template."""
    text = all_policies_text("prod")
    names = set(re.findall(r"\$\{([A-Za-z0-9]+)\}", text)) | set(
        re.findall(r'"Ref": "([A-Za-z0-9]+)"', text)
    )
    assert names and names <= set(prod["Parameters"]) | set(prod["Resources"])


def test_no_wildcard_resources_except_where_aws_requires(prod: Template) -> None:
    """IAM-ish documents with Resource "*": only the KMS key policy (a key policy's "*" means
    "this key") and the X-Ray write statement (X-Ray has no resource-level permissions)."""
    found: list[str] = []

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            if node.get("Resource") == "*" or "*" in as_list(node.get("Resource", [])):
                found.append(path)
            for k, v in node.items():
                walk(v, f"{path}.{k}")
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f"{path}[{i}]")

    walk(prod["Resources"], "Resources")
    xray = re.compile(
        r"Resources\.\w+Role\.Properties\.Policies\[0\]\.PolicyDocument\.Statement\[1\]$"
    )
    for path in found:
        if xray.match(path):  # X-Ray writes: no resource-level permissions exist
            continue
        assert path.startswith("Resources.NotificationsKey.Properties.KeyPolicy"), path
    stmts = props(prod, "NotificationsKey")["KeyPolicy"]["Statement"]
    services = [s for s in stmts if "Service" in s["Principal"]]
    assert services and all("Condition" in s for s in services)


def test_secrets_are_not_in_the_template(prod: Template) -> None:
    text = json.dumps(prod)
    assert "1x0000000000000000000000000000000AA" not in text  # the local Turnstile test secret
    for name, p in prod["Parameters"].items():
        if "secret" in name.lower():
            assert p.get("NoEcho") is True, name
    # the Turnstile secret is only ever referred to by its SSM name
    assert 'TURNSTILE_SECRET"' not in text
    assert "TURNSTILE_SECRET_PARAM" in text


# --------------------------------------------------------------------------- deploy plumbing
def test_params_example_matches_template(prod: Template, tmp_path: Path) -> None:
    example = json.loads((ROOT / "infra" / "params-example.json").read_text())
    params = example["Parameters"]
    template_params = prod["Parameters"]
    assert set(params) <= set(template_params)
    required = {k for k, v in template_params.items() if "Default" not in v}
    assert required - set(params) == {"OriginVerifySecret"}  # from SSM at deploy time
    assert set(example["Notes"]) - {"_"} == set(params) | {"turnstileSitekey"}
    for key, value in params.items():
        pattern = template_params[key].get("AllowedPattern")
        if pattern:
            assert re.fullmatch(pattern, value), key
        allowed = template_params[key].get("AllowedValues")
        if allowed:
            assert value in allowed, key
    copy = tmp_path / "params-prod.json"
    copy.write_text(json.dumps(example))
    loaded = deploy.load_params("prod", copy)
    assert loaded["Site"]["turnstileSitekey"]
    overrides = deploy.parameter_overrides(loaded["Parameters"], "s" * 40)
    assert overrides[-1] == "OriginVerifySecret=" + "s" * 40
    bad = dict(example, Parameters={**params, "OriginVerifySecret": "x"})
    copy.write_text(json.dumps(bad))
    with pytest.raises(SystemExit):
        deploy.load_params("prod", copy)


def test_publish_site_plan(tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "js").mkdir(parents=True)
    (site / "img").mkdir()
    (site / "index.html").write_text("<!doctype html>")
    (site / "js" / "app.js").write_text("export {}")
    (site / "js" / "vendor.0123abcd89.js").write_text("x")
    (site / "img" / "logo.svg").write_text("<svg/>")
    (site / "config.json").write_text('{"stage":"local"}')
    (site / "config.example.json").write_text("{}")
    (site / ".DS_Store").write_text("")
    plan = {o.key: o for o in deploy.site_plan("prod", "0xSITEKEY", site)}
    assert set(plan) == {"index.html", "js/app.js", "js/vendor.0123abcd89.js", "img/logo.svg",
                         "config.json", "404.html"}  # fmt: skip
    assert plan["index.html"].content_type == "text/html; charset=utf-8"
    assert plan["index.html"].cache_control == "no-cache"
    assert plan["js/app.js"].content_type.startswith("text/javascript")
    assert "max-age=" in plan["js/app.js"].cache_control
    assert plan["js/vendor.0123abcd89.js"].cache_control.endswith("immutable")
    assert plan["img/logo.svg"].content_type == "image/svg+xml"
    assert json.loads(plan["config.json"].body) == {
        "stage": "prod",
        "apiBase": "/api",
        "turnstileSitekey": "0xSITEKEY",
    }
    assert plan["config.json"].cache_control == "no-cache"
    # the real website publishes too
    real = deploy.site_plan("prod", "0xSITEKEY")
    assert any(o.key == "index.html" for o in real)


def test_make_targets_dry_run() -> None:
    make = shutil.which("make")
    if not make:
        pytest.skip("make not installed")
    out = subprocess.run(
        [make, "-n", "-f", "infra/deploy.mk", "package", "deploy", "publish-site", "STAGE=prod"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    assert "infra/package.py --stage prod --out build/prod" in out.stdout
    assert "infra/deploy.py deploy --stage prod" in out.stdout
    assert "infra/deploy.py publish-site --stage prod" in out.stdout
    bad = subprocess.run(
        [make, "-n", "-f", "infra/deploy.mk", "deploy", "STAGE=local"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert bad.returncode != 0 and "STAGE=dev or STAGE=prod" in bad.stderr
