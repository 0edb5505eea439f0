"""`make preflight STAGE=prod`: read-only checks before a deploy, one line each.

Stops with a non-zero exit at the first blocker (what would make the deploy fail, or deploy
something that can't work); warnings are printed and don't stop it. Only Get/Describe/List
calls: nothing is created or changed. `make deploy` runs it first.

Under `make rehearse` (AWS_ENDPOINT_URL set to moto) a check whose API moto does not
implement says "not emulated" instead of failing.
"""

from __future__ import annotations

import fnmatch
import importlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from infra import deploy

REQUIRED_MODULES = ("boto3", "botocore", "chalice", "yaml")


class Blocker(Exception):
    """A check failed: the deploy must not run."""


class NotEmulated(Exception):
    """The rehearsal's moto has no such API."""


def _call(fn: Callable[..., Any], **kwargs: Any) -> Any:
    from botocore.exceptions import ClientError

    try:
        return fn(**kwargs)
    except ClientError as e:
        code = e.response.get("Error", {}).get("Code", "")
        status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        rehearsal = bool(os.environ.get("AWS_ENDPOINT_URL"))
        if rehearsal and (status in (404, 501) or "NotImplemented" in code or "not yet" in str(e)):
            raise NotEmulated(str(e)[:120]) from e
        raise


def covers(pattern: str, name: str) -> bool:
    """Does a certificate name (possibly `*.example.com`) cover host `name`?"""
    pattern, name = pattern.lower().rstrip("."), name.lower().rstrip(".")
    if pattern.startswith("*."):
        return name.count(".") == pattern.count(".") and fnmatch.fnmatchcase(name, pattern)
    return pattern == name


def sender_in_identity(sender: str, identity: str) -> bool:
    if "@" in identity:
        return sender.lower() == identity.lower()
    domain = sender.rsplit("@", 1)[-1].lower()
    return domain == identity.lower() or domain.endswith("." + identity.lower())


def checks(stage: str, params_path: Path | None) -> list[tuple[str, Callable[[], str]]]:
    """(what, check) pairs in order; a check returns its detail line or raises Blocker."""
    state: dict[str, Any] = {}

    def tools() -> str:
        missing = []
        for name in REQUIRED_MODULES:
            try:
                importlib.import_module(name)
            except ImportError:
                missing.append(name)
        if missing:
            raise Blocker(f"missing Python packages {missing}: run `make venv`")
        template = deploy.ROOT / "build" / stage / "template.json"
        note = "" if template.exists() else f" ({template.relative_to(deploy.ROOT)} not built yet)"
        return f"python packages {', '.join(REQUIRED_MODULES)} present{note}"

    def params() -> str:
        try:
            state["params"] = deploy.load_params(stage, params_path)["Parameters"]
        except SystemExit as e:
            raise Blocker(str(e)) from None
        return f"{len(state['params'])} parameters"

    def credentials() -> str:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            ident = deploy._boto("sts").get_caller_identity()
        except (BotoCoreError, ClientError) as e:
            raise Blocker(f"no usable AWS credentials: {e}") from None
        state["account"] = ident["Account"]
        return f"account {ident['Account']} as {ident['Arn']}"

    def region() -> str:
        for var in ("AWS_REGION", "AWS_DEFAULT_REGION"):
            value = os.environ.get(var)
            if value and value != deploy.REGION:
                raise Blocker(f"{var}={value}: this stack deploys in {deploy.REGION} only")
        return f"{deploy.REGION} (CloudFront's WAF and certificate live there)"

    def certificate() -> str:
        arn = state["params"]["CertificateArn"]
        if f":acm:{deploy.REGION}:" not in arn:
            raise Blocker(f"{arn} is not in {deploy.REGION} (CloudFront reads certificates there)")
        if state.get("account") and f":{state['account']}:" not in arn:
            raise Blocker(f"{arn} belongs to another account than {state['account']}")
        cert = _call(deploy._boto("acm").describe_certificate, CertificateArn=arn)["Certificate"]
        if cert["Status"] != "ISSUED":
            raise Blocker(f"certificate is {cert['Status']}: publish its DNS validation record")
        domain = state["params"]["DomainName"]
        names = [cert["DomainName"], *cert.get("SubjectAlternativeNames", [])]
        if not any(covers(n, domain) for n in names):
            raise Blocker(f"certificate names {names} do not cover {domain}")
        return f"ISSUED, covers {domain}"

    def ses_identity() -> str:
        p = state["params"]
        identity, sender = p["SenderIdentity"], p["SenderEmail"]
        if not sender_in_identity(sender, identity):
            raise Blocker(f"SenderEmail {sender} is not covered by SenderIdentity {identity}")
        got = _call(deploy._boto("sesv2").get_email_identity, EmailIdentity=identity)
        verified = got.get("VerifiedForSendingStatus")
        if not verified and os.environ.get("AWS_ENDPOINT_URL"):
            # moto never sets VerifiedForSendingStatus; its VerificationStatus is the signal
            verified = got.get("VerificationStatus") == "SUCCESS"
        if not verified:
            raise Blocker(f"SES identity {identity} is not verified for sending yet")
        dkim = (got.get("DkimAttributes") or {}).get("Status")
        if "@" not in identity and dkim != "SUCCESS":
            if os.environ.get("AWS_ENDPOINT_URL") and dkim is None:
                return f"{identity} verified (DKIM not emulated)"
            raise Blocker(f"DKIM for {identity} is {dkim}: publish the three CNAME records")
        return f"{identity} verified, DKIM {dkim or 'n/a (address identity)'}"

    def ses_production() -> str:
        try:
            account = _call(deploy._boto("sesv2").get_account)
        except NotEmulated:
            return "not emulated by the rehearsal"
        if account.get("ProductionAccessEnabled"):
            return "production access (out of the sandbox)"
        if stage == "prod":
            raise Blocker("SES is in the sandbox: request production access (docs/deploy.md, 2)")
        return "WARNING: sandbox (only verified recipients; fine for dev)"

    def secrets() -> str:
        ssm = deploy._boto("ssm")
        names = [
            deploy.origin_verify_param(stage),
            deploy.turnstile_secret_param(stage),
            deploy.link_secret_param(stage),
            deploy.admin_secret_param(stage),
        ]
        missing = []
        for name in names:
            try:
                ssm.get_parameter(Name=name)  # no decryption: presence only
            except ssm.exceptions.ParameterNotFound:
                missing.append(name)
        if missing:
            fix = f"make init-secrets STAGE={stage}"
            raise Blocker(f"missing SSM parameters {missing}: run `{fix}`")
        return f"all {len(names)} SecureStrings present"

    def bootstrap() -> str:
        try:
            out = deploy.stack_outputs(deploy.BOOTSTRAP_STACK)
        except Exception as e:  # noqa: BLE001 - any failure means the same thing
            why = f"no {deploy.BOOTSTRAP_STACK} stack: run `make bootstrap` ({e})"
            raise Blocker(why) from None
        if "ArtifactsBucketName" not in out:
            raise Blocker(f"{deploy.BOOTSTRAP_STACK} has no ArtifactsBucketName output")
        return f"artifacts bucket {out['ArtifactsBucketName']}"

    def api_gateway_logging() -> str:
        role = _call(deploy._boto("apigateway").get_account).get("cloudwatchRoleArn")
        if not role:
            raise Blocker("API Gateway has no CloudWatch logging role: run `make bootstrap`")
        return f"role {role}"

    def tables() -> str:
        plan = deploy.table_plan(stage)
        if plan.problem:
            raise Blocker(plan.problem)
        return plan.describe()

    return [
        ("tools", tools),
        ("parameters file", params),
        ("credentials", credentials),
        ("region", region),
        ("certificate", certificate),
        ("SES identity", ses_identity),
        ("SES sending", ses_production),
        ("SSM parameters", secrets),
        ("bootstrap stack", bootstrap),
        ("API Gateway logging", api_gateway_logging),
        ("retained tables", tables),
    ]


def run(stage: str, params_path: Path | None = None) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    for what, check in checks(stage, params_path):
        try:
            detail = check()
        except NotEmulated as e:
            detail = f"not emulated by the rehearsal ({e})"
        except Blocker as e:
            print(f"BLOCK {what}: {e}", flush=True)
            return 1
        except (ClientError, BotoCoreError) as e:  # e.g. no such certificate, AccessDenied
            print(f"BLOCK {what}: {e}", flush=True)
            return 1
        print(f"ok    {what}: {detail}", flush=True)
    print(f"preflight {stage}: ready to deploy")
    return 0
