"""What moto's CloudFormation skips, created through moto's service APIs (rehearsal only).

moto implements CloudFormation for part of the resource types and silently skips the rest
(CloudFront, WAF, SES, alarms, SNS subscriptions and topic policies, bucket policies, API
Gateway stages, Lambda event-invoke configs, the API Gateway account). `MotoAdapter.split`
hands moto the types it implements; `emulate` then creates the others from the same
template through the service APIs, with Ref/GetAtt/Sub/If/Join resolved against the stack,
and returns the stack outputs. Types moto has no API for at all are recorded as notes and
applied by infra/emulators.py straight from the template.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

NO_VALUE = object()
# moto's CloudFormation implements these but they can't work there as-is
DROP_FROM_MOTO = {"AWS::ApiGateway::Deployment"}  # needs the API's methods (not in moto's CFN)
# no moto API: the rehearsal's emulators apply them from the template
TEMPLATE_ONLY = {
    "AWS::CloudFront::CachePolicy",
    "AWS::CloudFront::OriginRequestPolicy",
    "AWS::CloudFront::ResponseHeadersPolicy",
    "AWS::SES::ConfigurationSetEventDestination",
    "AWS::CloudFront::Function",  # the edge emulator applies its uri rewrite
}


def moto_types() -> set[str]:
    from moto.cloudformation.parsing import get_model_map

    return set(get_model_map()) - DROP_FROM_MOTO


def refs(node: Any) -> set[str]:
    """Logical ids a template fragment refers to."""
    out: set[str] = set()
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "Ref" and isinstance(v, str):
                out.add(v)
            elif k == "Fn::GetAtt":
                out.add(v[0] if isinstance(v, list) else str(v).split(".")[0])
            elif k == "Fn::Sub":
                text = v if isinstance(v, str) else v[0]
                out |= {m.split(".")[0] for m in re.findall(r"\$\{([^}!]+)\}", text)}
                if not isinstance(v, str):
                    out |= refs(v[1])
            else:
                out |= refs(v)
    elif isinstance(node, list):
        for v in node:
            out |= refs(v)
    return out


def _coerce(shape: Any, value: Any) -> Any:
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        return {
            k: _coerce(shape.members[k], v) if k in shape.members else v for k, v in value.items()
        }
    if kind == "list" and isinstance(value, list):
        return [_coerce(shape.member, v) for v in value]
    if kind == "map" and isinstance(value, dict):
        return {k: _coerce(shape.value, v) for k, v in value.items()}
    if kind in ("integer", "long") and isinstance(value, str):
        return int(value)
    if kind in ("float", "double") and isinstance(value, str):
        return float(value)
    if kind == "boolean" and isinstance(value, str):
        return value.lower() == "true"
    return value


def _coerce_params(params: dict[str, Any], model: Any, **_: Any) -> dict[str, Any]:
    return dict(_coerce(model.input_shape, params)) if model.input_shape else params


class MotoAdapter:
    def __init__(self, account: str, region: str, notes: list[str]) -> None:
        self.account = account
        self.region = region
        self.notes = notes
        self.templates: dict[str, dict[str, Any]] = {}
        self.created: dict[str, list[tuple[str, Callable[[], Any]]]] = {}
        self.emulated: dict[str, dict[str, dict[str, Any]]] = {}  # stack -> logical -> info
        self.outputs: dict[str, dict[str, str]] = {}

    def boto(self, service: str) -> Any:
        """A client whose calls coerce template strings ("3000", "true") to the API's types,
        as CloudFormation does."""
        from infra import deploy

        client = deploy._boto(service)
        client.meta.events.register("provide-client-params.*.*", _coerce_params)
        return client

    # ------------------------------------------------------------------ split
    def split(self, stack: str, template: dict[str, Any]) -> dict[str, Any]:
        supported = moto_types()
        self.templates[stack] = template
        keep = {k: v for k, v in template["Resources"].items() if v["Type"] in supported}
        gone = set(template["Resources"]) - set(keep)
        out = json.loads(json.dumps(template))
        out.pop("Transform", None)
        out["Resources"] = json.loads(json.dumps(keep))
        for res in out["Resources"].values():
            dep = res.get("DependsOn")
            if dep:
                deps = [d for d in ([dep] if isinstance(dep, str) else dep) if d not in gone]
                if deps:
                    res["DependsOn"] = deps
                else:
                    res.pop("DependsOn")
        out["Outputs"] = {
            k: v for k, v in template.get("Outputs", {}).items() if not refs(v) & gone
        }
        return out

    # ------------------------------------------------------------------ resolve
    def _physical(self, stack: str) -> dict[str, str]:
        from infra import deploy

        return deploy.stack_resources(stack)

    def resolver(self, stack: str, params: dict[str, str]) -> Callable[[Any], Any]:
        template = self.templates[stack]
        physical = self._physical(stack)
        emulated = self.emulated.setdefault(stack, {})
        pseudo = {
            "AWS::Region": self.region,
            "AWS::AccountId": self.account,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": stack,
        }
        declared = {k: v.get("Default") for k, v in template.get("Parameters", {}).items()}
        values = {**{k: v for k, v in declared.items() if v is not None}, **params}

        def ref(name: str) -> Any:
            if name == "AWS::NoValue":
                return NO_VALUE
            if name in pseudo:
                return pseudo[name]
            if name in values:
                v = values[name]
                kind = template["Parameters"][name].get("Type", "")
                return [p for p in str(v).split(",") if p] if "List" in kind else v
            if name in emulated:
                return emulated[name]["Ref"]
            if name in physical:
                return physical[name]
            raise KeyError(f"rehearsal: can't resolve Ref {name}")

        def getatt(name: str, attr: str) -> str:
            if name in emulated:
                return str(emulated[name][attr])
            pid = physical[name]
            kind = template["Resources"][name]["Type"]
            arn = f"arn:aws:{{}}:{self.region}:{self.account}:"
            table: dict[tuple[str, str], Callable[[], str]] = {
                ("AWS::S3::Bucket", "Arn"): lambda: f"arn:aws:s3:::{pid}",
                ("AWS::S3::Bucket", "RegionalDomainName"): lambda: (
                    f"{pid}.s3.{self.region}.amazonaws.com"
                ),
                ("AWS::SQS::Queue", "QueueName"): lambda: pid.rsplit("/", 1)[-1],
                ("AWS::SQS::Queue", "Arn"): lambda: arn.format("sqs") + pid.rsplit("/", 1)[-1],
                ("AWS::Lambda::Function", "Arn"): lambda: arn.format("lambda") + f"function:{pid}",
                ("AWS::Logs::LogGroup", "Arn"): lambda: arn.format("logs") + f"log-group:{pid}:*",
                ("AWS::SNS::Topic", "TopicArn"): lambda: pid,
                ("AWS::KMS::Key", "Arn"): lambda: arn.format("kms") + f"key/{pid}",
                ("AWS::IAM::Role", "Arn"): lambda: f"arn:aws:iam::{self.account}:role/{pid}",
            }
            if (kind, attr) not in table:
                raise KeyError(f"rehearsal: can't resolve GetAtt {name}.{attr} ({kind})")
            return table[(kind, attr)]()

        conditions: dict[str, bool] = {}

        def condition(name: str) -> bool:
            if name not in conditions:
                conditions[name] = bool(resolve(template["Conditions"][name]))
            return conditions[name]

        def resolve(node: Any) -> Any:
            if isinstance(node, list):
                return [x for x in (resolve(v) for v in node) if x is not NO_VALUE]
            if not isinstance(node, dict):
                return node
            if len(node) == 1:
                ((k, v),) = node.items()
                if k == "Ref":
                    return ref(v)
                if k == "Fn::GetAtt":
                    name, attr = v if isinstance(v, list) else v.split(".", 1)
                    return getatt(name, attr)
                if k == "Fn::Sub":
                    text, extra = (v, {}) if isinstance(v, str) else (v[0], resolve(v[1]))

                    def one(m: re.Match[str]) -> str:
                        key = m.group(1)
                        if key in extra:
                            return str(extra[key])
                        if "." in key and not key.startswith("AWS::"):
                            return getatt(*key.split(".", 1))
                        return str(ref(key))

                    return re.sub(r"\$\{([^}!]+)\}", one, text)
                if k == "Fn::Join":
                    return str(v[0]).join(str(x) for x in resolve(v[1]))
                if k == "Fn::If":
                    return resolve(v[1] if condition(v[0]) else v[2])
                if k == "Fn::Equals":
                    a, b = resolve(v)
                    return a == b
                if k == "Fn::Not":
                    return not resolve(v[0])
                if k == "Condition":
                    return condition(v)
            return {
                k: r for k, r in ((k, resolve(v)) for k, v in node.items()) if r is not NO_VALUE
            }

        resolve.condition = condition  # type: ignore[attr-defined]
        return resolve

    # ------------------------------------------------------------------ emulate
    def emulate(self, stack: str, params: dict[str, str]) -> dict[str, str]:
        """Create every skipped resource through moto's APIs; return the resolved outputs."""
        template = self.templates[stack]
        supported = moto_types()
        skipped = {k: v for k, v in template["Resources"].items() if v["Type"] not in supported}
        self.emulated[stack] = {}
        resolve = self.resolver(stack, params)
        done: set[str] = set()
        todo = dict(skipped)
        while todo:
            ready = [k for k, v in todo.items() if not (refs(v) & set(todo)) - {k}]
            if not ready:
                raise RuntimeError(f"rehearsal: dependency cycle in {sorted(todo)}")
            for logical in sorted(ready):
                res = todo.pop(logical)
                cond = res.get("Condition")
                if cond and not resolve.condition(cond):  # type: ignore[attr-defined]
                    continue
                self._create(stack, logical, res, resolve)
                done.add(logical)
        outputs: dict[str, str] = {}
        for key, out in template.get("Outputs", {}).items():
            cond = out.get("Condition")
            if cond and not resolve.condition(cond):  # type: ignore[attr-defined]
                continue
            outputs[key] = str(resolve(out["Value"]))
        self.outputs[stack] = outputs
        return outputs

    def _record(self, stack: str, what: str, undo: Callable[[], Any]) -> None:
        self.created.setdefault(stack, []).append((what, undo))

    def delete_emulated(self, stack: str) -> None:
        for what, undo in reversed(self.created.pop(stack, [])):
            try:
                undo()
            except Exception as e:  # noqa: BLE001 - report, keep tearing down
                self.notes.append(f"teardown of emulated {what} failed: {e}")

    def _create(self, stack: str, logical: str, res: dict[str, Any], resolve: Any) -> None:
        kind = res["Type"]
        handler = getattr(self, "_" + kind.replace("::", "_").replace("AWS_", "", 1), None)
        info: dict[str, Any] = {"Ref": logical}
        if kind in TEMPLATE_ONLY or handler is None:
            note = f"{kind} has no moto API: applied by the rehearsal's emulators from the template"
            if kind not in TEMPLATE_ONLY:
                note = f"{kind} ({logical}) is neither in moto's CloudFormation nor emulated"
            if note not in self.notes:
                self.notes.append(note)
            if kind == "AWS::CloudFront::Function":
                arn = f"arn:aws:cloudfront::{self.account}:function/{logical}"
                info["FunctionMetadata.FunctionARN"] = arn
        else:
            info = handler(stack, logical, resolve(res.get("Properties", {}))) or info
        self.emulated[stack][logical] = info

    # one method per skipped type: _<Service>_<Type>(stack, logical, resolved properties)
    def _ApiGateway_Account(self, stack: str, logical: str, p: dict[str, Any]) -> dict[str, Any]:
        apigw = self.boto("apigateway")
        apigw.update_account(
            patchOperations=[
                {"op": "replace", "path": "/cloudwatchRoleArn", "value": p["CloudWatchRoleArn"]}
            ]
        )
        return {"Ref": "apigateway-account"}

    def _ApiGateway_Deployment(self, stack: str, logical: str, p: dict[str, Any]) -> None:
        """Made together with the stage (_ApiGateway_Stage): moto needs the methods first."""

    def _S3_BucketPolicy(self, stack: str, logical: str, p: dict[str, Any]) -> None:
        s3 = self.boto("s3")
        doc = dict(p["PolicyDocument"])
        # moto enforces bucket policies, and the rehearsal speaks plain HTTP on loopback
        tls_only = [s for s in doc["Statement"] if "aws:SecureTransport" in json.dumps(s)]
        if tls_only:
            doc["Statement"] = [s for s in doc["Statement"] if s not in tls_only]
            note = "bucket policies' TLS-only Deny not applied (plain HTTP on loopback)"
            if note not in self.notes:
                self.notes.append(note)
        s3.put_bucket_policy(Bucket=p["Bucket"], Policy=json.dumps(doc))
        self._record(stack, logical, lambda: s3.delete_bucket_policy(Bucket=p["Bucket"]))

    def _SNS_TopicPolicy(self, stack: str, logical: str, p: dict[str, Any]) -> None:
        sns = self.boto("sns")
        for topic in p["Topics"]:
            sns.set_topic_attributes(
                TopicArn=topic,
                AttributeName="Policy",
                AttributeValue=json.dumps(p["PolicyDocument"]),
            )

    def _SNS_Subscription(self, stack: str, logical: str, p: dict[str, Any]) -> dict[str, Any]:
        # moto can't run Lambda (no Docker): a lambda subscription becomes an HTTP one to the
        # rehearsal's Lambda emulator (infra/emulators.py), which invokes the function
        # asynchronously as SNS does. Emulators subscribe when they start (they know the URL).
        info = {"Ref": f"pending:{logical}", "Protocol": p["Protocol"], **p}
        return info

    def _Lambda_EventInvokeConfig(self, stack: str, logical: str, p: dict[str, Any]) -> None:
        lam = self.boto("lambda")
        kwargs = {k: v for k, v in p.items() if k in ("MaximumRetryAttempts",
                                                        "MaximumEventAgeInSeconds")}  # fmt: skip
        lam.put_function_event_invoke_config(
            FunctionName=p["FunctionName"], Qualifier=p.get("Qualifier", "$LATEST"), **kwargs
        )

    def _ApiGateway_Stage(self, stack: str, logical: str, p: dict[str, Any]) -> dict[str, Any]:
        """Import the API's paths as moto resources/methods, deploy, create the stage."""
        apigw = self.boto("apigateway")
        api_id = p["RestApiId"]
        body = resolve_body = self.templates[stack]["Resources"]["RestAPI"]["Properties"]["Body"]
        del resolve_body
        by_path = {r["path"]: r["id"] for r in apigw.get_resources(restApiId=api_id)["items"]}
        for path, methods in body["paths"].items():
            parent = by_path["/"]
            so_far = ""
            for part in [x for x in path.split("/") if x]:
                so_far += "/" + part
                if so_far not in by_path:
                    made = apigw.create_resource(restApiId=api_id, parentId=parent, pathPart=part)
                    by_path[so_far] = made["id"]
                parent = by_path[so_far]
            for method in methods:
                if method.startswith("x-"):
                    continue
                apigw.put_method(
                    restApiId=api_id,
                    resourceId=parent,
                    httpMethod=method.upper(),
                    authorizationType="NONE",
                )
                apigw.put_integration(
                    restApiId=api_id,
                    resourceId=parent,
                    httpMethod=method.upper(),
                    type="AWS_PROXY",
                    integrationHttpMethod="POST",
                    uri=f"arn:aws:apigateway:{self.region}:lambda:path/functions/rehearsal",
                )
        deployment = apigw.create_deployment(restApiId=api_id, description="rehearsal")
        apigw.create_stage(
            restApiId=api_id,
            stageName=p["StageName"],
            deploymentId=deployment["id"],
            tracingEnabled=bool(p.get("TracingEnabled")),
        )
        self._record(
            stack,
            logical,
            lambda: apigw.delete_stage(restApiId=api_id, stageName=p["StageName"]),
        )
        return {"Ref": p["StageName"], **p}

    def _CloudFront_OriginAccessControl(
        self, stack: str, logical: str, p: dict[str, Any]
    ) -> dict[str, Any]:
        cf = self.boto("cloudfront")
        made = cf.create_origin_access_control(
            OriginAccessControlConfig=p["OriginAccessControlConfig"]
        )
        oac_id = made["OriginAccessControl"]["Id"]
        self._record(
            stack,
            logical,
            lambda: cf.delete_origin_access_control(Id=oac_id, IfMatch=made["ETag"]),
        )
        return {"Ref": oac_id, "Id": oac_id}

    def _CloudFront_Distribution(
        self, stack: str, logical: str, p: dict[str, Any]
    ) -> dict[str, Any]:
        cf = self.boto("cloudfront")
        c = p["DistributionConfig"]

        def origin(o: dict[str, Any]) -> dict[str, Any]:
            out = {"Id": o["Id"], "DomainName": o["DomainName"]}
            if "S3OriginConfig" in o:
                out["S3OriginConfig"] = o["S3OriginConfig"]
            else:
                co = o["CustomOriginConfig"]
                out["CustomOriginConfig"] = {
                    "HTTPPort": 80,
                    "HTTPSPort": co.get("HTTPSPort", 443),
                    "OriginProtocolPolicy": co["OriginProtocolPolicy"],
                }
            return out

        default = c["DefaultCacheBehavior"]
        config = {
            "CallerReference": f"{stack}-{logical}",
            "Comment": c.get("Comment", ""),
            "Enabled": c["Enabled"],
            "Aliases": {"Quantity": len(c.get("Aliases", [])), "Items": c.get("Aliases", [])},
            "DefaultRootObject": c.get("DefaultRootObject", ""),
            "Origins": {"Quantity": len(c["Origins"]), "Items": [origin(o) for o in c["Origins"]]},
            "DefaultCacheBehavior": {
                "TargetOriginId": default["TargetOriginId"],
                "ViewerProtocolPolicy": default["ViewerProtocolPolicy"],
                "CachePolicyId": default["CachePolicyId"],
            },
            "WebACLId": c.get("WebACLId", ""),
            "PriceClass": c.get("PriceClass", "PriceClass_All"),
        }
        made = cf.create_distribution(DistributionConfig=config)["Distribution"]
        dist_id = made["Id"]

        def delete() -> None:
            etag = cf.get_distribution_config(Id=dist_id)["ETag"]
            cf.delete_distribution(Id=dist_id, IfMatch=etag)

        self._record(stack, logical, delete)
        return {"Ref": dist_id, "DomainName": made["DomainName"], "Config": c}

    def _WAFv2_WebACL(self, stack: str, logical: str, p: dict[str, Any]) -> dict[str, Any]:
        waf = self.boto("wafv2")
        wanted = ("Name", "Scope", "DefaultAction", "Rules", "VisibilityConfig")
        kwargs = {k: v for k, v in p.items() if k in (*wanted, "CustomResponseBodies")}
        made = waf.create_web_acl(**kwargs)["Summary"]

        def delete() -> None:
            got = waf.get_web_acl(Name=made["Name"], Scope=p["Scope"], Id=made["Id"])
            waf.delete_web_acl(
                Name=made["Name"], Scope=p["Scope"], Id=made["Id"], LockToken=got["LockToken"]
            )

        self._record(stack, logical, delete)
        return {"Ref": made["Id"], "Arn": made["ARN"], "Id": made["Id"], "Properties": p}

    def _WAFv2_WebACLAssociation(self, stack: str, logical: str, p: dict[str, Any]) -> None:
        waf = self.boto("wafv2")
        waf.associate_web_acl(WebACLArn=p["WebACLArn"], ResourceArn=p["ResourceArn"])
        self._record(stack, logical, lambda: waf.disassociate_web_acl(ResourceArn=p["ResourceArn"]))

    def _WAFv2_LoggingConfiguration(self, stack: str, logical: str, p: dict[str, Any]) -> None:
        waf = self.boto("wafv2")
        config = {k: v for k, v in p.items() if k in (
            "ResourceArn", "LogDestinationConfigs", "RedactedFields", "LoggingFilter")}  # fmt: skip
        waf.put_logging_configuration(LoggingConfiguration=config)
        self._record(
            stack, logical, lambda: waf.delete_logging_configuration(ResourceArn=p["ResourceArn"])
        )

    def _CloudWatch_Alarm(self, stack: str, logical: str, p: dict[str, Any]) -> None:
        cw = self.boto("cloudwatch")
        cw.put_metric_alarm(**p)
        self._record(stack, logical, lambda: cw.delete_alarms(AlarmNames=[p["AlarmName"]]))

    def _SES_ConfigurationSet(self, stack: str, logical: str, p: dict[str, Any]) -> dict[str, Any]:
        ses = self.boto("sesv2")
        name = p["Name"]
        wanted = ("DeliveryOptions", "ReputationOptions", "SendingOptions", "SuppressionOptions")
        kwargs = {k: v for k, v in p.items() if k in wanted}
        ses.create_configuration_set(ConfigurationSetName=name, **kwargs)
        self._record(
            stack, logical, lambda: ses.delete_configuration_set(ConfigurationSetName=name)
        )
        return {"Ref": name}


def check_dropped_properties(
    template: dict[str, Any], adapter: MotoAdapter, stage: str
) -> list[str]:
    """Properties moto accepts but doesn't keep (or can't show): asserted on the template
    that was deployed; where moto does keep them, on moto too. Raises AssertionError."""
    res = template["Resources"]
    lines = []

    def of(kind: str) -> dict[str, dict[str, Any]]:
        return {k: v["Properties"] for k, v in res.items() if v["Type"] == kind}

    fns = of("AWS::Lambda::Function")
    assert fns and all(p["Architectures"] == ["arm64"] for p in fns.values())
    tracing = sorted({p["TracingConfig"]["Mode"] for p in fns.values()})
    lines.append(f"template: {len(fns)} functions arm64, tracing {tracing}")
    feedback = fns["HandleSesFeedback"]
    assert "FeedbackDeadLetterQueue" in json.dumps(feedback["DeadLetterConfig"])
    lines.append("template: feedback function has its SQS dead-letter queue")
    for name, p in of("AWS::DynamoDB::Table").items():
        assert p["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
        assert p["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
        assert p["SSESpecification"]["SSEEnabled"] is True
        if res[name].get("DeletionPolicy") == "Retain":
            assert p["DeletionProtectionEnabled"] is True
    lines.append(
        "template: every table TTL expires_at, PITR, SSE; retained ones deletion-protected"
    )
    for name, p in of("AWS::S3::Bucket").items():
        pab = p["PublicAccessBlockConfiguration"]
        assert all(pab[k] for k in ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls",
                                    "RestrictPublicBuckets")), name  # fmt: skip
        assert p["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    lines.append("template: site bucket blocks public access, encrypted")
    # and what moto does keep, after the second deploy has adopted the retained tables
    lam = adapter.boto("lambda")

    def named(value: Any) -> str:
        text = value if isinstance(value, str) else value["Fn::Sub"]
        return str(text).replace("${Stage}", stage)

    timeouts = {}
    for p in fns.values():
        got = lam.get_function_configuration(FunctionName=named(p["FunctionName"]))
        assert got["Timeout"] == p["Timeout"], (p["FunctionName"], got["Timeout"])
        timeouts[named(p["FunctionName"]).rsplit("-", 2)[-2]] = p["Timeout"]
    lines.append(f"moto: function timeouts as in the template {timeouts}")
    ddb = adapter.boto("dynamodb")
    for p in of("AWS::DynamoDB::Table").values():
        name = named(p["TableName"])
        ttl = ddb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
        backups = ddb.describe_continuous_backups(TableName=name)["ContinuousBackupsDescription"]
        pitr = backups.get("PointInTimeRecoveryDescription", {})
        table = ddb.describe_table(TableName=name)["Table"]
        kept = {
            "TTL": ttl.get("AttributeName") == "expires_at"
            and ttl.get("TimeToLiveStatus") == "ENABLED",
            "PITR": pitr.get("PointInTimeRecoveryStatus") == "ENABLED",
            "SSE": table.get("SSEDescription", {}).get("Status") == "ENABLED",
            "deletion protection": bool(table.get("DeletionProtectionEnabled")),
        }
        shown = ", ".join(f"{k} {'kept' if v else 'dropped'}" for k, v in kept.items())
        lines.append(f"moto: {name}: {shown}")
    info = adapter.emulated[f"juice-orders-{stage}"]
    stage_info = info["RestAPIapiStage"]
    got = adapter.boto("apigateway").get_stage(
        restApiId=stage_info["RestApiId"], stageName=stage_info["Ref"]
    )
    assert got.get("webAclArn") == info["ApiWebAcl"]["Arn"], got.get("webAclArn")
    lines.append("moto: the API stage is associated with the regional web ACL")
    return lines
