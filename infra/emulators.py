"""The rehearsal's stand-ins for what moto can't run, driven by the deployed template.

* `EdgeServer` (CloudFront): the distribution's behaviours in order, the CloudFront web
  ACL's own rules (managed rule groups are AWS's and are not emulated), origin request
  policies (only the listed headers/cookies reach the API, plus CloudFront's
  X-Origin-Verify, CloudFront-Viewer-Address and X-Forwarded-For), the response headers
  policy, the S3 origin (403 vs 404 decided by the bucket policy, as S3 does) and the
  custom error responses.
* `ApiServer` (API Gateway REST, stage `api`): the regional web ACL first, then the paths
  of the API definition, its gateway responses, and a Lambda proxy event to the function.
* `LambdaRuntime`: runs a deployed function in this process with the environment moto holds
  for it (plus the rehearsal's loopback endpoints) and a context whose
  get_remaining_time_in_millis() counts down from the function's Timeout. SNS deliveries
  are asynchronous, retried MaximumRetryAttempts times, then sent to the dead-letter queue.
* `SesSimulator`: SES's mailbox simulator. After a SendEmail to bounce@/success@
  simulator.amazonses.com it publishes the Bounce/Delivery event to the topic of the
  configuration set's event destination (from the template), as SES does.
"""

from __future__ import annotations

import base64
import fnmatch
import http.server
import json
import os
import queue
import re
import threading
import time
import urllib.error
import urllib.request
from collections import defaultdict
from typing import Any

from infra import deploy


class Request:
    def __init__(self, method: str, path: str, headers: dict[str, str], body: bytes, ip: str):
        self.method, self.path, self.body, self.ip = method, path, body, ip
        self.headers = {k.lower(): v for k, v in headers.items()}


Response = tuple[int, dict[str, str], bytes]


class WebAcl:
    """The subset of WAFv2 statements our templates use; anything else fails loudly."""

    def __init__(self, props: dict[str, Any], notes: list[str]) -> None:
        self.props = props
        self.notes = notes
        self.hits: dict[str, list[float]] = defaultdict(list)
        self.lock = threading.Lock()

    def _field(self, field: dict[str, Any], req: Request) -> str | None:
        if "UriPath" in field:
            return req.path.split("?", 1)[0]
        if "SingleHeader" in field:
            return req.headers.get(field["SingleHeader"]["Name"].lower())
        raise NotImplementedError(f"rehearsal WAF: field {field}")

    def match(self, st: dict[str, Any], req: Request) -> bool:
        if "NotStatement" in st:
            return not self.match(st["NotStatement"]["Statement"], req)
        if "AndStatement" in st:
            return all(self.match(s, req) for s in st["AndStatement"]["Statements"])
        if "OrStatement" in st:
            return any(self.match(s, req) for s in st["OrStatement"]["Statements"])
        if "ByteMatchStatement" in st:
            b = st["ByteMatchStatement"]
            value = self._field(b["FieldToMatch"], req)
            if value is None:
                return False
            want, how = str(b["SearchString"]), b["PositionalConstraint"]
            return {
                "EXACTLY": value == want,
                "STARTS_WITH": value.startswith(want),
                "ENDS_WITH": value.endswith(want),
                "CONTAINS": want in value,
            }[how]
        if "SizeConstraintStatement" in st:
            s = st["SizeConstraintStatement"]
            if "Body" not in s["FieldToMatch"]:
                raise NotImplementedError(f"rehearsal WAF: size of {s['FieldToMatch']}")
            size, limit = len(req.body), int(s["Size"])
            return {"GT": size > limit, "GE": size >= limit, "LT": size < limit,
                    "LE": size <= limit, "EQ": size == limit, "NE": size != limit}[
                s["ComparisonOperator"]]  # fmt: skip
        if "GeoMatchStatement" in st:
            return False  # loopback has no country
        raise NotImplementedError(f"rehearsal WAF: statement {sorted(st)}")

    def evaluate(self, req: Request) -> Response | None:
        for rule in sorted(self.props.get("Rules", []), key=lambda r: r["Priority"]):
            st = rule["Statement"]
            if "ManagedRuleGroupStatement" in st:
                note = "WAF managed rule groups are AWS's own: not emulated"
                if note not in self.notes:
                    self.notes.append(note)
                continue
            if "RateBasedStatement" in st:
                rb = st["RateBasedStatement"]
                scope = rb.get("ScopeDownStatement")
                if scope and not self.match(scope, req):
                    continue
                window = int(rb.get("EvaluationWindowSec", 300))
                now = time.monotonic()
                with self.lock:
                    hits = [t for t in self.hits[rule["Name"] + req.ip] if now - t < window]
                    hits.append(now)
                    self.hits[rule["Name"] + req.ip] = hits
                hit = len(hits) > int(rb["Limit"])
            else:
                hit = self.match(st, req)
            if not hit:
                continue
            action = rule.get("Action", {})
            if "Allow" in action:
                return None
            if "Block" in action:
                custom = action["Block"].get("CustomResponse")
                rule_header = {"X-Rehearsal-Waf-Rule": rule["Name"]}
                if not custom:
                    return 403, {"Content-Type": "text/html", **rule_header}, b"<h1>403</h1>"
                body = self.props["CustomResponseBodies"][custom["CustomResponseBodyKey"]]
                ctype = {"APPLICATION_JSON": "application/json", "TEXT_HTML": "text/html"}.get(
                    body["ContentType"], "text/plain"
                )
                headers = {"Content-Type": ctype, **rule_header}
                return int(custom["ResponseCode"]), headers, body["Content"].encode()
        return None


class _Handler(http.server.BaseHTTPRequestHandler):
    server_version = "rehearsal"
    app: Any = None

    def log_message(self, *args: Any) -> None:  # quiet
        return

    def _any(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        req = Request(self.command, self.path, dict(self.headers.items()), body,
                      self.client_address[0])  # fmt: skip
        req.port = self.client_address[1]  # type: ignore[attr-defined]
        try:
            status, headers, out = self.app(req)
        except Exception as e:  # noqa: BLE001 - the rehearsal shows it, as a 500
            status, headers, out = 500, {"Content-Type": "text/plain"}, repr(e).encode()
        self.send_response(status)
        for k, v in headers.items():
            if k.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(out)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = _any


class Server:
    def __init__(self, app: Any) -> None:
        handler = type("H", (_Handler,), {"app": staticmethod(app)})
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _Context:
    def __init__(self, name: str, timeout: int) -> None:
        self.function_name = name
        self.memory_limit_in_mb = 512
        self.aws_request_id = f"rehearsal-{time.time_ns()}"
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{name}"
        self._deadline = time.monotonic() + timeout

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class LambdaRuntime:
    def __init__(self, template: dict[str, Any], overrides: dict[str, str], notes: list[str]):
        self.template = template
        self.overrides = overrides
        self.notes = notes
        self.lock = threading.Lock()  # one invocation at a time: they share os.environ
        self.queue: queue.Queue[tuple[str, dict[str, Any]] | None] = queue.Queue()
        self.worker = threading.Thread(target=self._work, daemon=True)
        self.worker.start()
        self.invocations: dict[str, int] = defaultdict(int)
        self.failures: dict[str, int] = defaultdict(int)

    def _props(self, logical: str) -> dict[str, Any]:
        return dict(self.template["Resources"][logical]["Properties"])

    def invoke(self, logical: str, event: dict[str, Any]) -> Any:
        import importlib

        props = self._props(logical)
        name = props["FunctionName"]
        config = deploy._boto("lambda").get_function_configuration(FunctionName=name)
        env = {**config.get("Environment", {}).get("Variables", {}), **self.overrides}
        module, attr = props["Handler"].rsplit(".", 1)
        with self.lock:
            saved = dict(os.environ)
            os.environ.update(env)
            try:
                from chalicelib import aws as app_aws

                app_aws.reset_clients()
                handler = getattr(importlib.import_module(module), attr)
                self.invocations[logical] += 1
                return handler(event, _Context(name, int(config["Timeout"])))
            finally:
                os.environ.clear()
                os.environ.update(saved)

    def invoke_async(self, logical: str, event: dict[str, Any]) -> None:
        self.queue.put((logical, event))

    def _work(self) -> None:
        while True:
            item = self.queue.get()
            if item is None:
                return
            logical, event = item
            retries = 2
            for res in self.template["Resources"].values():
                if res["Type"] == "AWS::Lambda::EventInvokeConfig" and res["Properties"][
                    "FunctionName"
                ] == {"Ref": logical}:
                    retries = int(res["Properties"].get("MaximumRetryAttempts", 2))
            for _attempt in range(1 + retries):
                try:
                    self.invoke(logical, event)
                    break
                except Exception as e:  # noqa: BLE001 - Lambda's async retry
                    self.failures[logical] += 1
                    last = e
            else:
                self._dead_letter(logical, event, last)
            self.queue.task_done()

    def _dead_letter(self, logical: str, event: dict[str, Any], error: Exception) -> None:
        target = self._props(logical).get("DeadLetterConfig", {}).get("TargetArn")
        self.notes.append(f"{logical} raised on every attempt ({error!r}): event to its DLQ")
        if not target:
            return
        sqs = deploy._boto("sqs")
        url = sqs.get_queue_url(QueueName=str(target).rsplit(":", 1)[-1])["QueueUrl"]
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps(event))

    def drain(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while self.queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.05)

    def stop(self) -> None:
        self.queue.put(None)


class ApiServer:
    """execute-api for the stage: regional WAF, routes of the definition, Lambda proxy."""

    def __init__(self, template: dict[str, Any], stage: dict[str, Any], web_acl: WebAcl,
                 runtime: LambdaRuntime) -> None:  # fmt: skip
        api = template["Resources"]["RestAPI"]["Properties"]["Body"]
        self.stage_name = stage["StageName"]
        self.responses = api.get("x-amazon-apigateway-gateway-responses", {})
        self.routes = []
        for path, methods in api["paths"].items():
            rx = re.compile(
                "^" + re.sub(r"\\\{([^}]+)\\\}", r"(?P<\1>[^/]+)", re.escape(path)) + "$"
            )
            self.routes.append((path, rx, {m.upper() for m in methods if not m.startswith("x-")}))
        self.web_acl = web_acl
        self.runtime = runtime
        self.server = Server(self)

    def gateway_response(self, kind: str, status: int) -> Response:
        r = self.responses.get(kind) or self.responses.get(
            "DEFAULT_5XX" if status >= 500 else "DEFAULT_4XX", {}
        )
        headers = {
            k.split(".")[-1]: v.strip("'") for k, v in r.get("responseParameters", {}).items()
        }
        body = r.get("responseTemplates", {}).get("application/json", '{"message":"error"}')
        return int(r.get("statusCode", status)), {"Content-Type": "application/json", **headers}, \
            body.encode()  # fmt: skip

    def __call__(self, req: Request) -> Response:
        blocked = self.web_acl.evaluate(req)
        if blocked:
            return blocked
        path = req.path.split("?", 1)[0]
        prefix = f"/{self.stage_name}"
        if not path.startswith(prefix + "/"):
            return self.gateway_response("MISSING_AUTHENTICATION_TOKEN", 403)
        resource_path = path[len(prefix) :]
        for template_path, rx, methods in self.routes:
            m = rx.match(resource_path)
            if m and req.method in methods:
                return self._invoke(req, template_path, resource_path, m.groupdict())
        return self.gateway_response("MISSING_AUTHENTICATION_TOKEN", 403)

    def _invoke(self, req: Request, resource: str, path: str, params: dict[str, str]) -> Response:
        try:
            text = req.body.decode("utf-8")
            body, b64 = text, False
        except UnicodeDecodeError:
            body, b64 = base64.b64encode(req.body).decode(), True
        event = {
            "resource": resource,
            "path": path,
            "httpMethod": req.method,
            "headers": dict(req.headers),
            "multiValueHeaders": {k: [v] for k, v in req.headers.items()},
            "queryStringParameters": None,
            "multiValueQueryStringParameters": None,
            "pathParameters": params or None,
            "stageVariables": None,
            "requestContext": {
                "resourcePath": resource,
                "httpMethod": req.method,
                "path": f"/{self.stage_name}{path}",
                "stage": self.stage_name,
                "identity": {"sourceIp": req.ip},
                "requestId": f"rehearsal-{time.time_ns()}",
            },
            "body": body or None,
            "isBase64Encoded": b64,
        }
        try:
            out = self.runtime.invoke("APIHandler", event)
        except Exception:  # noqa: BLE001 - API Gateway answers 502 for a failed Lambda
            return self.gateway_response("DEFAULT_5XX", 502)
        headers = dict(out.get("headers") or {})
        for k, vs in (out.get("multiValueHeaders") or {}).items():
            headers[k] = ", ".join(vs)
        raw = out.get("body") or ""
        data = base64.b64decode(raw) if out.get("isBase64Encoded") else raw.encode()
        return int(out["statusCode"]), headers, data


class EdgeServer:
    def __init__(self, config: dict[str, Any], template: dict[str, Any], resolve: Any,
                 web_acl: WebAcl, api_url: str, bucket: str, notes: list[str]) -> None:  # fmt: skip
        self.config = config
        self.web_acl = web_acl
        self.api_url = api_url
        self.bucket = bucket
        self.notes = notes
        self.template = template
        res = template["Resources"]

        def policy(logical_or_id: Any, kind: str) -> dict[str, Any] | None:
            # template-only policies resolve to their logical id (infra/moto_adapter.py)
            name = logical_or_id.get("Ref") if isinstance(logical_or_id, dict) else logical_or_id
            if name and res.get(name, {}).get("Type") == kind:
                return dict(resolve(res[name]["Properties"]))
            return None

        self.policy = policy
        headers_policy = res["SecurityHeadersPolicy"]["Properties"]["ResponseHeadersPolicyConfig"]
        self.response_headers = self._response_headers(headers_policy)
        self.server = Server(self)

    @staticmethod
    def _response_headers(cfg: dict[str, Any]) -> dict[str, str]:
        h = cfg.get("SecurityHeadersConfig", {})
        out: dict[str, str] = {}
        if "ContentSecurityPolicy" in h:
            out["Content-Security-Policy"] = h["ContentSecurityPolicy"]["ContentSecurityPolicy"]
        if "StrictTransportSecurity" in h:
            s = h["StrictTransportSecurity"]
            out["Strict-Transport-Security"] = (
                f"max-age={s['AccessControlMaxAgeSec']}"
                + ("; includeSubDomains" if s.get("IncludeSubdomains") else "")
                + ("; preload" if s.get("Preload") else "")
            )
        if "ContentTypeOptions" in h:
            out["X-Content-Type-Options"] = "nosniff"
        if "FrameOptions" in h:
            out["X-Frame-Options"] = h["FrameOptions"]["FrameOption"]
        if "ReferrerPolicy" in h:
            out["Referrer-Policy"] = h["ReferrerPolicy"]["ReferrerPolicy"]
        for item in cfg.get("CustomHeadersConfig", {}).get("Items", []):
            out[item["Header"]] = item["Value"]
        return out

    def behaviour(self, path: str) -> dict[str, Any]:
        for b in self.config.get("CacheBehaviors", []):
            if fnmatch.fnmatchcase(path, b["PathPattern"]):
                return dict(b)
        return dict(self.config["DefaultCacheBehavior"])

    def __call__(self, req: Request) -> Response:
        blocked = self.web_acl.evaluate(req)
        if blocked:
            status, headers, body = blocked
        else:
            status, headers, body = self._origin(req)
            for err in self.config.get("CustomErrorResponses", []):
                if status == int(err["ErrorCode"]) and "ResponsePagePath" in err:
                    page = Request("GET", err["ResponsePagePath"], {}, b"", req.ip)
                    _, headers, body = self._origin(page)
                    status = int(err.get("ResponseCode", status))
        headers = {k: v for k, v in headers.items()
                   if k.lower() not in {h.lower() for h in self.response_headers}}  # fmt: skip
        return status, {**headers, **self.response_headers}, body

    def viewer_request(self, b: dict[str, Any], path: str) -> str:
        """A behaviour's CloudFront Function (viewer-request), as far as ours go: a fixed
        `request.uri = '...'` rewrite (the template test pins the code to that shape)."""
        for fa in b.get("FunctionAssociations", []):
            if fa.get("EventType") != "viewer-request":
                continue
            logical = str(fa["FunctionARN"]).rsplit("/", 1)[-1]
            code = self.template["Resources"][logical]["Properties"]["FunctionCode"]
            m = re.search(r"request\.uri = '([^']+)'", code)
            if not m:
                raise ValueError(f"rehearsal: can't emulate CloudFront Function {logical}")
            path = m.group(1)
        return path

    def _origin(self, req: Request) -> Response:
        path = req.path.split("?", 1)[0]
        b = self.behaviour(path)
        path = self.viewer_request(b, path)
        if req.method not in b.get("AllowedMethods", ["GET", "HEAD"]):
            return 403, {"Content-Type": "text/plain"}, b"method not allowed by this behaviour"
        origin = next(o for o in self.config["Origins"] if o["Id"] == b["TargetOriginId"])
        if "S3OriginConfig" in origin:
            return self._s3(path)
        return self._api(req, origin, b)

    def _s3(self, path: str) -> Response:
        from botocore.exceptions import ClientError

        key = path.lstrip("/") or self.config.get("DefaultRootObject", "index.html")
        s3 = deploy._boto("s3")
        try:
            got = s3.get_object(Bucket=self.bucket, Key=key)
        except ClientError as e:
            if e.response["Error"]["Code"] not in ("NoSuchKey", "404"):
                raise
            # S3 says 404 only to a reader allowed to list the bucket, else 403 AccessDenied
            policy = json.loads(s3.get_bucket_policy(Bucket=self.bucket)["Policy"])
            lists = any(
                s["Effect"] == "Allow" and "s3:ListBucket" in json.dumps(s["Action"])
                for s in policy["Statement"]
            )
            status = 404 if lists else 403
            code = "NoSuchKey" if lists else "AccessDenied"
            return (
                status,
                {"Content-Type": "application/xml"},
                f"<Error><Code>{code}</Code></Error>".encode(),
            )  # noqa: E501
        headers = {"Content-Type": got.get("ContentType", "application/octet-stream")}
        if got.get("CacheControl"):
            headers["Cache-Control"] = got["CacheControl"]
        return 200, headers, got["Body"].read()

    def _api(self, req: Request, origin: dict[str, Any], b: dict[str, Any]) -> Response:
        policy = self.policy(b.get("OriginRequestPolicyId"), "AWS::CloudFront::OriginRequestPolicy")
        if policy is None:
            raise NotImplementedError(
                f"rehearsal edge: origin request policy {b.get('OriginRequestPolicyId')}"
            )  # noqa: E501
        cfg = policy["OriginRequestPolicyConfig"]
        wanted = {h.lower() for h in cfg["HeadersConfig"].get("Headers", [])}
        headers = {k: v for k, v in req.headers.items() if k in wanted}
        if "cloudfront-viewer-address" in wanted:
            headers["cloudfront-viewer-address"] = f"{req.ip}:{getattr(req, 'port', 0)}"
        cookies = cfg["CookiesConfig"]
        if cookies["CookieBehavior"] == "whitelist" and "cookie" in req.headers:
            keep = set(cookies.get("Cookies", []))
            parts = [c.strip() for c in req.headers["cookie"].split(";")]
            kept = [c for c in parts if c.split("=", 1)[0] in keep]
            if kept:
                headers["cookie"] = "; ".join(kept)
        elif cookies["CookieBehavior"] == "all" and "cookie" in req.headers:
            headers["cookie"] = req.headers["cookie"]
        headers["x-forwarded-for"] = req.ip
        for h in origin.get("OriginCustomHeaders", []):
            headers[h["HeaderName"]] = h["HeaderValue"]
        url = self.api_url + req.path.split("?", 1)[0]
        r = urllib.request.Request(url, data=req.body or None, method=req.method, headers=headers)  # noqa: S310
        try:
            with urllib.request.urlopen(r, timeout=60) as resp:  # noqa: S310  # nosec B310 - loopback
                return resp.status, dict(resp.headers.items()), resp.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers.items()), e.read()


class SesSimulator:
    """SES's mailbox simulator: bounce/delivery events for the simulator addresses."""

    def __init__(self, destinations: list[dict[str, Any]]) -> None:
        self.destinations = destinations  # resolved SesFeedbackEventDestination properties
        self.published: list[tuple[str, str]] = []

    @staticmethod
    def before_send(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["rehearsal_request"] = params.get("body")

    def after_send(self, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        body = context.get("rehearsal_request")
        request = json.loads(body) if body else {}
        message_id = parsed.get("MessageId")
        if not message_id:
            return
        for to in request.get("Destination", {}).get("ToAddresses", []):
            local = to.split("@", 1)[0].split("+", 1)[0].lower()
            if not to.lower().endswith("@simulator.amazonses.com"):
                continue
            kind = {"bounce": "Bounce", "success": "Delivery", "complaint": "Complaint"}.get(local)
            if kind:
                threading.Timer(
                    0.1, self._publish, (kind, to, message_id, request.get("ConfigurationSetName"))
                ).start()

    def _publish(self, kind: str, to: str, message_id: str, config_set: str | None) -> None:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
        event: dict[str, Any] = {
            "eventType": kind,
            "mail": {"timestamp": stamp, "messageId": message_id, "destination": [to],
                     "source": "rehearsal"},
        }  # fmt: skip
        if kind == "Bounce":
            event["bounce"] = {
                "bounceType": "Permanent",
                "bounceSubType": "General",
                "feedbackId": f"sim-{message_id}",
                "timestamp": stamp,
                "bouncedRecipients": [{"emailAddress": to, "action": "failed",
                                       "status": "5.1.1",
                                       "diagnosticCode": "smtp; 550 5.1.1 user unknown"}],
            }  # fmt: skip
        elif kind == "Delivery":
            event["delivery"] = {"timestamp": stamp, "recipients": [to], "smtpResponse": "250 OK"}
        else:
            event["complaint"] = {
                "complainedRecipients": [{"emailAddress": to}],
                "timestamp": stamp,
                "feedbackId": f"sim-{message_id}",
            }
        sns = deploy._boto("sns")
        for d in self.destinations:
            ed = d["EventDestination"]
            if config_set and d["ConfigurationSetName"] != config_set:
                continue
            if ed.get("Enabled") and kind.lower() in ed["MatchingEventTypes"]:
                topic = ed["SnsDestination"]["TopicARN"]
                sns.publish(TopicArn=topic, Message=json.dumps(event))
                self.published.append((kind, to))


class Servers:
    """Everything the smoke test talks to, per deploy round."""

    def __init__(self, stage: str, template: dict[str, Any], adapter: Any, dns: str,
                 siteverify: str, moto_url: str) -> None:  # fmt: skip
        self.stage = stage
        # a copy: start() resolves function names and DLQ targets in it for the runtime
        self.template = json.loads(json.dumps(template))
        self.adapter = adapter
        self.overrides = {
            "AWS_ENDPOINT_URL": moto_url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "TURNSTILE_VERIFY_URL": siteverify,
            "TURNSTILE_HOSTNAMES": "",  # Cloudflare's test secret reports example.com
            "DNS_NAMESERVERS": dns,
            "BUSINESS_HOURS": "always",
        }
        self.running: list[Any] = []
        self.subscriptions: list[str] = []
        self._hooked = False
        self.ses: SesSimulator | None = None
        self.runtime: LambdaRuntime | None = None

    def _hook_ses(self) -> None:
        import botocore.session

        if self._hooked:
            return
        self._hooked = True
        original = botocore.session.Session.create_client
        servers = self

        def create_client(self: Any, *args: Any, **kwargs: Any) -> Any:
            client = original(self, *args, **kwargs)
            client.meta.events.register("before-call.sesv2.SendEmail", SesSimulator.before_send)
            client.meta.events.register(
                "after-call.sesv2.SendEmail",
                lambda **kw: servers.ses.after_send(**kw) if servers.ses else None,
            )
            return client

        botocore.session.Session.create_client = create_client

    def start(self, outputs: dict[str, str]) -> tuple[str, str]:
        stack = deploy.stack_name(self.stage)
        emulated = self.adapter.emulated[stack]
        resolve = self.adapter.resolver(stack, {})
        notes = self.adapter.notes
        runtime = LambdaRuntime(self.template, self.overrides, notes)
        # the template's functions with their names resolved
        for res in self.template["Resources"].values():
            if res["Type"] == "AWS::Lambda::Function":
                props = res["Properties"]
                props["FunctionName"] = resolve(props["FunctionName"])
                if "DeadLetterConfig" in props:
                    props["DeadLetterConfig"] = resolve(props["DeadLetterConfig"])
        api = ApiServer(
            self.template,
            emulated["RestAPIapiStage"],
            WebAcl(emulated["ApiWebAcl"]["Properties"], notes),
            runtime,
        )
        edge_config = dict(emulated["Distribution"]["Config"])
        edge = EdgeServer(
            edge_config,
            self.template,
            resolve,
            WebAcl(emulated["WebAcl"]["Properties"], notes),
            api.server.url,
            outputs["SiteBucketName"],
            notes,
        )
        sns_server = Server(lambda req: self._sns(req, runtime))
        sns = deploy._boto("sns")
        for logical, info in emulated.items():
            if self.template["Resources"][logical]["Type"] != "AWS::SNS::Subscription":
                continue
            if info.get("Protocol") != "lambda":
                continue
            function = info["Endpoint"].rsplit(":", 1)[-1]
            target = next(k for k, r in self.template["Resources"].items()
                          if r["Type"] == "AWS::Lambda::Function"
                          and r["Properties"]["FunctionName"] == function)  # fmt: skip
            arn = sns.subscribe(
                TopicArn=info["TopicArn"], Protocol="http", Endpoint=f"{sns_server.url}/{target}"
            )["SubscriptionArn"]
            self.subscriptions.append(arn)
        destinations = [
            resolve(r["Properties"])
            for r in self.template["Resources"].values()
            if r["Type"] == "AWS::SES::ConfigurationSetEventDestination"
        ]
        self.ses = SesSimulator(destinations)
        self._hook_ses()
        from chalicelib import aws as app_aws

        app_aws.reset_clients()
        self.runtime = runtime
        self.running = [api.server, edge.server, sns_server]
        stage = emulated["RestAPIapiStage"]["StageName"]
        return edge.server.url + "/", f"{api.server.url}/{stage}/"

    def _sns(self, req: Request, runtime: LambdaRuntime) -> Response:
        envelope = json.loads(req.body or b"{}")
        if envelope.get("Type") == "Notification":
            record = {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": "rehearsal",
                "Sns": {k: envelope.get(k) for k in (
                    "Type", "MessageId", "TopicArn", "Subject", "Message", "Timestamp",
                    "SignatureVersion", "Signature", "SigningCertUrl", "UnsubscribeUrl")}
                | {"MessageAttributes": envelope.get("MessageAttributes") or {}},
            }  # fmt: skip
            runtime.invoke_async(req.path.strip("/"), {"Records": [record]})
        return 200, {"Content-Type": "text/plain"}, b"ok"

    def stop(self) -> None:
        sns = deploy._boto("sns")
        for arn in self.subscriptions:
            sns.unsubscribe(SubscriptionArn=arn)
        self.subscriptions = []
        if self.runtime is not None:
            self.runtime.drain()
            self.runtime.stop()
            self.runtime = None
        for s in self.running:
            s.stop()
        self.running = []
