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
from pathlib import Path
from typing import Any

import pytest

from devstack.bootstrap import table_definitions
from infra import deploy, package

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


def policy_file(stage: str) -> dict[str, Any]:
    name = CONFIG["stages"][stage]["iam_policy_file"]
    return json.loads((ROOT / ".chalice" / name).read_text())


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
    assert len(fns) == 3 and all(
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
    (stage,) = of_type(t, "AWS::ApiGateway::Stage").values()
    assert stage["Properties"]["StageName"] == "api"
    assert "AccessLogSetting" in stage["Properties"]
    (api,) = of_type(t, "AWS::ApiGateway::RestApi").values()
    assert api["DependsOn"] == "ApiGatewayAccountReady"  # account log role set first
    assert api["Properties"]["EndpointConfiguration"] == {"Types": ["REGIONAL"]}
    feedback = fns["HandleSesFeedback"]["Properties"]
    assert feedback["DeadLetterConfig"] == {
        "TargetArn": {"Fn::GetAtt": ["FeedbackDeadLetterQueue", "Arn"]}
    }


# --------------------------------------------------------------------------- stage plumbing
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
    # the policy names exactly these resources
    text = json.dumps(policy_file(stage))
    for table in (e["ORDERS_TABLE"], e["SUPPRESSION_TABLE"], e["RATE_LIMIT_TABLE"]):
        assert f":table/{table}" in text
    assert f"configuration-set/{e['SES_CONFIGURATION_SET']}" in text
    assert f':parameter{e["ORIGIN_VERIFY_PARAM"]}"' in text
    assert f':parameter{e["TURNSTILE_SECRET_PARAM"]}"' in text
    dlq = sub(props(t, "FeedbackDeadLetterQueue")["QueueName"], stage)
    assert f':{dlq}"' in text
    # and the packaged functions carry the config's variables
    for fn in of_type(t, "AWS::Serverless::Function").values():
        assert fn["Properties"]["Environment"]["Variables"] == e


def test_template_env_from_parameters_via_globals(prod: Template) -> None:
    variables = prod["Globals"]["Function"]["Environment"]["Variables"]
    assert variables == {
        "SENDER_EMAIL": {"Ref": "SenderEmail"},
        "MERCHANT_EMAIL": {"Ref": "MerchantEmail"},
        "SES_FEEDBACK_TOPIC_ARN": {"Ref": "SesFeedbackTopic"},
        "TURNSTILE_HOSTNAMES": {"Ref": "DomainName"},
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
    ttl = {"SuppressionTable", "RateLimitTable"}
    for name, t in of_type(prod, "AWS::DynamoDB::Table").items():
        p = t["Properties"]
        assert p["BillingMode"] == "PAY_PER_REQUEST"
        assert p["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
        assert p["SSESpecification"]["SSEEnabled"] is True
        if name in ttl:
            assert p["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
        else:
            assert "TimeToLiveSpecification" not in p
    for keep in ("OrdersTable", "SuppressionTable"):
        assert res(prod, keep)["DeletionPolicy"] == "Retain"
        assert res(prod, keep)["UpdateReplacePolicy"] == "Retain"


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
    allow = [s for s in stmts if s["Effect"] == "Allow"]
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
    (api,) = d["CacheBehaviors"]
    assert api["PathPattern"] == "/api/*" and api["TargetOriginId"] == "api"
    assert api["ViewerProtocolPolicy"] == "redirect-to-https"
    assert api["CachePolicyId"] == CACHING_DISABLED
    assert api["OriginRequestPolicyId"] == ALL_VIEWER_EXCEPT_HOST
    assert set(api["AllowedMethods"]) == {
        "GET",
        "HEAD",
        "OPTIONS",
        "PUT",
        "PATCH",
        "POST",
        "DELETE",
    }
    assert api["ResponseHeadersPolicyId"] == {"Ref": "SecurityHeadersPolicy"}


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
    for r in managed.values():
        assert r["OverrideAction"] == {"None": {}}  # block mode, not Count
        stmt = r["Statement"]["ManagedRuleGroupStatement"]
        assert stmt["VendorName"] == "AWS"
        assert "RuleActionOverrides" not in stmt and "ExcludedRules" not in stmt
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
def test_lambda_roles_use_the_hand_written_policy(
    templates: dict[str, Template], stage: str
) -> None:
    assert CONFIG["stages"][stage]["autogen_policy"] is False
    for name, role in _lambda_roles(templates[stage]).items():
        (policy,) = role["Properties"]["Policies"]
        assert policy["PolicyDocument"] == policy_file(stage), name
        assert "ManagedPolicyArns" not in role["Properties"]


@pytest.mark.parametrize("stage", STAGES)
def test_policy_is_least_privilege(stage: str) -> None:
    doc = policy_file(stage)
    acct = "arn:${AWS::Partition}:%s:${AWS::Region}:${AWS::AccountId}:"
    by_sid = {s["Sid"]: s for s in _statements(doc)}
    for s in by_sid.values():
        assert s["Effect"] == "Allow"
        for action in as_list(s["Action"]):
            assert "*" not in action, action
        for r in as_list(s["Resource"]):
            assert isinstance(r, dict) and r != "*", r  # always a concrete Fn::Sub ARN
            assert r["Fn::Sub"].startswith(acct.split("%s")[0])
    e = env(stage)

    def arns(sid: str) -> set[str]:
        return {r["Fn::Sub"] for r in as_list(by_sid[sid]["Resource"])}

    assert arns("OwnTables") == {
        acct % "dynamodb" + f"table/{e['ORDERS_TABLE']}",
        acct % "dynamodb" + f"table/{e['ORDERS_TABLE']}/index/outbox",
        *(
            acct % "dynamodb" + f"table/{e['ORDERS_TABLE']}/index/{i}"
            for i in ("by_day", "by_status", "by_email")
        ),  # the back office (issue 15)
        acct % "dynamodb" + f"table/{e['SUPPRESSION_TABLE']}",
        acct % "dynamodb" + f"table/{e['RATE_LIMIT_TABLE']}",
    }
    assert "dynamodb:Scan" not in by_sid["OwnTables"]["Action"]
    ses = by_sid["SendOrderMailFromOurIdentity"]
    assert ses["Action"] == ["ses:SendEmail"]
    assert arns("SendOrderMailFromOurIdentity") == {
        acct % "ses" + "identity/${SenderIdentity}",
        acct % "ses" + f"configuration-set/{e['SES_CONFIGURATION_SET']}",
    }
    assert ses["Condition"] == {"StringEquals": {"ses:FromAddress": {"Ref": "SenderEmail"}}}
    assert by_sid["ReadOwnSecrets"]["Action"] == ["ssm:GetParameter"]
    assert arns("ReadOwnSecrets") == {
        acct % "ssm" + "parameter" + e["TURNSTILE_SECRET_PARAM"],
        acct % "ssm" + "parameter" + e["ORIGIN_VERIFY_PARAM"],
        acct % "ssm" + "parameter" + e["ADMIN_SECRET_PARAM"],
    }
    assert arns("WriteOwnLogs") == {
        acct % "logs" + f"log-group:/aws/lambda/juice-orders-{stage}-*:*"
    }
    assert set(by_sid["WriteOwnLogs"]["Action"]) == {"logs:CreateLogStream", "logs:PutLogEvents"}
    assert arns("FeedbackDeadLetters") == {acct % "sqs" + f"juice-orders-{stage}-feedback-dlq"}


def test_policy_references_only_template_parameters(prod: Template) -> None:
    """`${X}` / Ref in the policy file must resolve inside the merged template."""
    text = json.dumps(policy_file("prod"))
    names = set(re.findall(r"\$\{([A-Za-z0-9]+)\}", text)) | set(
        re.findall(r'"Ref": "([A-Za-z0-9]+)"', text)
    )
    assert names and names <= set(prod["Parameters"]) | set(prod["Resources"])


def test_no_wildcard_resources_except_where_aws_requires(prod: Template) -> None:
    """IAM-ish documents with Resource "*": only the KMS key policy (a key policy's "*" means
    "this key"). The API Gateway CloudWatch role uses AWS's managed
    AmazonAPIGatewayPushToCloudWatchLogs policy (account-wide by design; API Gateway picks
    the log group names)."""
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
    assert all(p.startswith("Resources.NotificationsKey.Properties.KeyPolicy") for p in found), (
        found
    )
    managed = props(prod, "ApiGatewayCloudWatchRole")["ManagedPolicyArns"]
    assert managed == [
        {
            "Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/service-role/"
            "AmazonAPIGatewayPushToCloudWatchLogs"
        }
    ]
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
                         "config.json"}  # fmt: skip
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
