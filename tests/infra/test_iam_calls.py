"""Each function's IAM policy grants exactly the AWS calls that function makes.

The calls are not listed by hand: every handler runs against the real moto server with a
botocore `before-call` hook on every client created in this process, which records
(IAM action, resource ARN) per call. Then, per function:

* every recorded call is allowed by that function's `.chalice/policy-<stage>-<fn>.json`
  (action and resource), so a new boto3 call without its grant fails here;
* every granted action was used, except the listed `RUNTIME_GRANTS` that AWS itself uses on
  the function's behalf (log delivery, X-Ray segments, the DLQ write).

`TransactWriteItems` / `TransactGetItems` are authorised per item by IAM (PutItem,
UpdateItem, DeleteItem, ConditionCheckItem, GetItem), so they are recorded that way.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import os
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import boto3
import botocore.session
import pytest

from devstack.bootstrap import bootstrap
from tests.conftest import ROOT
from tests.helpers import JSON, order_body

STAGE = "prod"
ACCOUNT = "123456789012"
REGION = "us-east-1"
SECRET = "rehearsal-origin-secret-0123456789abcdef"
SENDER = "orders@juice.example.com"
CONFIG = json.loads((ROOT / ".chalice" / "config.json").read_text())
FUNCTIONS = {  # Chalice function name -> policy role
    "api_handler": "api",
    "handle_ses_feedback": "feedback",
    "sweep_outbox": "sweeper",
    "sweep_retention": "retention",
}
# Granted on purpose although no application code calls them: the Lambda service uses the
# role for these (log delivery, X-Ray with Tracing Active, the async-invoke DLQ).
RUNTIME_GRANTS = {
    "api": {"logs:CreateLogStream", "logs:PutLogEvents", "xray:PutTraceSegments",
            "xray:PutTelemetryRecords"},
    "feedback": {"logs:CreateLogStream", "logs:PutLogEvents", "xray:PutTraceSegments",
                 "xray:PutTelemetryRecords", "sqs:SendMessage"},
    "sweeper": {"logs:CreateLogStream", "logs:PutLogEvents", "xray:PutTraceSegments",
                "xray:PutTelemetryRecords"},
    "retention": {"logs:CreateLogStream", "logs:PutLogEvents", "xray:PutTraceSegments",
                  "xray:PutTelemetryRecords"},
}  # fmt: skip
_TRANSACT = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
    "Get": "GetItem",
}

Call = tuple[str, str]  # (iam action, resource arn)


def stage_env() -> dict[str, str]:
    return dict(CONFIG["stages"][STAGE]["environment_variables"])


def policy(stage: str, role: str) -> dict[str, Any]:
    fn = next(k for k, v in FUNCTIONS.items() if v == role)
    name = CONFIG["stages"][stage]["lambda_functions"][fn]["iam_policy_file"]
    return json.loads((ROOT / ".chalice" / name).read_text())


def _arns(call_params: dict[str, Any], service: str, op: str) -> list[tuple[str, str]]:
    """(action, resource) pairs IAM evaluates for one API call."""
    acct = f"arn:aws:{{}}:{REGION}:{ACCOUNT}:"
    if service == "dynamodb":
        table = acct.format("dynamodb") + "table/"
        if op in ("TransactWriteItems", "TransactGetItems"):
            out = []
            for item in call_params["TransactItems"]:
                ((kind, body),) = item.items()
                out.append((f"dynamodb:{_TRANSACT[kind]}", table + body["TableName"]))
            return out
        if op in ("BatchWriteItem", "BatchGetItem"):
            return [(f"dynamodb:{op}", table + name) for name in call_params["RequestItems"]]
        arn = table + call_params["TableName"]
        if call_params.get("IndexName"):
            arn += "/index/" + call_params["IndexName"]
        return [(f"dynamodb:{op}", arn)]
    if service == "ssm":
        return [(f"ssm:{op}", acct.format("ssm") + "parameter" + call_params["Name"])]
    if service == "ses":
        cs = call_params.get("ConfigurationSetName")
        arn = acct.format("ses") + (f"configuration-set/{cs}" if cs else "identity/*")
        return [(f"ses:{op}", arn)]
    return [(f"{service}:{op}", "*")]


class Recorder:
    """Records every AWS call made through any botocore client created while installed,
    under the name of the function that is running (`with recorder.running("api"):`)."""

    def __init__(self) -> None:
        self.calls: dict[str, set[Call]] = {}
        self.current = "setup"
        # operation name -> handler returning a short-circuit response (an injected fault)
        self.faults: dict[str, Callable[..., Any]] = {}

    @contextlib.contextmanager
    def running(self, role: str) -> Iterator[None]:
        previous, self.current = self.current, role
        try:
            yield
        finally:
            self.current = previous

    def __call__(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        service = model.service_model.signing_name  # sesv2 signs (and authorises) as "ses"
        body = params.get("body")
        call_params = json.loads(body) if isinstance(body, (bytes, str)) and body else {}
        self.calls.setdefault(self.current, set()).update(_arns(call_params, service, model.name))
        fault = self.faults.get(model.name)
        return fault() if fault else None


@pytest.fixture()
def recorder(monkeypatch: pytest.MonkeyPatch) -> Iterator[Recorder]:
    from chalicelib import aws as app_aws
    from chalicelib import edge, services

    rec = Recorder()
    original = botocore.session.Session.create_client

    def create_client(self: Any, *args: Any, **kwargs: Any) -> Any:
        client = original(self, *args, **kwargs)
        client.meta.events.register("before-call.*.*", rec)
        return client

    app_aws.reset_clients()
    edge.clear_cache()
    services.reset()  # each function starts in a fresh container (its own secrets, clients)
    monkeypatch.setattr(botocore.session.Session, "create_client", create_client)
    yield rec
    app_aws.reset_clients()
    edge.clear_cache()


@pytest.fixture()
def cloud_app(
    aws: Any, guard_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., Any]]:
    """The prod stage's configuration against the local servers; yields a chalice test Client
    factory. The bootstrap runs before the recorder starts (it is not the app's code)."""
    from chalice.test import Client

    from app import app

    ssm = boto3.client("ssm", endpoint_url=aws.url, region_name=REGION)
    ssm.put_parameter(
        Name=f"/juice-orders/{STAGE}/origin-verify", Value=SECRET, Type="SecureString"
    )
    ssm.put_parameter(
        Name=f"/juice-orders/{STAGE}/turnstile-secret",
        Value=guard_env["TURNSTILE_SECRET"],
        Type="SecureString",
    )
    ssm.put_parameter(
        Name=f"/juice-orders/{STAGE}/link-secret", Value="iam-test-link-key", Type="SecureString"
    )
    ssm.put_parameter(
        Name=f"/juice-orders/{STAGE}/admin-secret", Value="iam-test-admin-key", Type="SecureString"
    )
    monkeypatch.delenv("TURNSTILE_SECRET", raising=False)
    topic = f"arn:aws:sns:{REGION}:{ACCOUNT}:juice-orders-{STAGE}-ses-feedback"
    for k, v in {
        "SES_FEEDBACK_TOPIC_ARN": topic,
        "SENDER_EMAIL": SENDER,
        "BUSINESS_HOURS": "always",
        "OUTBOX_GRACE_SECONDS": "0",
        "OUTBOX_BACKOFF_BASE_SECONDS": "0",
    }.items():
        monkeypatch.setenv(k, v)
    env = stage_env()
    bootstrap(aws.url, {**os.environ, **env})
    clients: list[Any] = []

    def make() -> Any:
        c = Client(app, stage_name=STAGE, project_dir=str(ROOT))
        clients.append(c)
        return c.__enter__()

    yield make
    for c in clients:
        c.__exit__(None, None, None)


def _edge_headers(**extra: str) -> dict[str, str]:
    return {**JSON, "X-Origin-Verify": SECRET, "CloudFront-Viewer-Address": "203.0.113.9:5"} | extra


def run_api(make: Callable[[], Any], aws: Any, rec: Recorder, mp: pytest.MonkeyPatch) -> None:
    c = make()
    with rec.running("api"):
        _api_requests(c, aws, rec, mp)


def _api_requests(c: Any, aws: Any, rec: Recorder, mp: pytest.MonkeyPatch) -> None:
    mp.setenv("RATE_LIMIT_EMAIL", "2/86400")  # the third counted order is refused
    assert c.http.get("/catalog", headers={"X-Origin-Verify": SECRET}).status_code == 200
    assert c.http.get("/catalog").status_code == 403
    body = json.dumps(order_body())
    headers = _edge_headers(**{"Idempotency-Key": "iam-test-key-0001"})
    first = c.http.post("/orders", headers=headers, body=body)
    assert first.status_code == 201, first.body
    replay = c.http.post("/orders", headers=headers, body=body)
    assert replay.status_code == 201 and replay.body == first.body
    honeypot = json.dumps(order_body(website="spam"))
    assert c.http.post("/orders", headers=_edge_headers(), body=honeypot).status_code == 201
    plain = c.http.post("/orders", headers=_edge_headers(), body=json.dumps(order_body()))
    assert plain.status_code == 201, plain.body
    assert len(aws.sent_mail()) == 4
    # over the per-email limit with a new key: 429, and the submission marker is released
    limited = c.http.post(
        "/orders",
        headers=_edge_headers(**{"Idempotency-Key": "iam-test-key-0002"}),
        body=json.dumps(order_body()),
    )
    assert limited.status_code == 429, limited.body
    # the merchant's one-click link: the confirm page (GET), then the transition (POST),
    # which emails the customer (suppression checked first)
    from chalicelib import links

    oid = json.loads(first.body)["order_id"]
    token = links.action_token(oid, "confirm", "iam-test-link-key", int(time.time()), 14)
    assert c.http.get(f"/o/{token}").status_code == 200
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    assert c.http.post(f"/o/{token}", headers=form, body="action=confirm").status_code == 200
    _admin_requests(c, aws, rec, oid)


def _admin_requests(c: Any, aws: Any, rec: Recorder, oid: str) -> None:
    """The back office: sign in by the mailed link, then every admin route once."""
    import html
    import re
    from urllib.parse import urlparse

    from chalicelib.settings import load
    from chalicelib.suppression import SuppressionStore

    merchant = load().merchant_emails[0]
    with rec.running("setup"):  # two suppressed addresses: one to remove, one to erase
        store = SuppressionStore(aws.client("dynamodb"), stage_env()["SUPPRESSION_TABLE"])
        for address in ("gone@deliverable.test", "shopper@deliverable.test"):
            assert store.suppress(address, "bounce", {}, "iam-test-msg", time.time())
    edge = {"X-Origin-Verify": SECRET, "CloudFront-Viewer-Address": "203.0.113.9:5"}
    asked = c.http.post(
        "/admin/login", headers=_edge_headers(), body=json.dumps({"email": merchant})
    )
    assert asked.status_code == 202, asked.body
    (mail,) = [m for m in aws.sent_mail() if "/api/admin/login/" in m["body"]]
    url = re.findall(r'href="([^"]+/api/admin/login/[^"]+)"', mail["body"])[0]
    path = urlparse(html.unescape(url)).path.removeprefix("/api")
    assert c.http.get(path, headers=edge).status_code == 200
    form = {**edge, "Content-Type": "application/x-www-form-urlencoded"}
    used = c.http.post(path, headers=form, body="")
    assert used.status_code == 200, used.body
    cookie = used.headers["Set-Cookie"].split(";", 1)[0]
    get = {**edge, "Cookie": cookie}
    post = {**_edge_headers(), "Cookie": cookie, "X-Requested-With": "admin"}
    assert c.http.get("/admin/session", headers=get).status_code == 200
    day = json.loads(c.http.get(f"/admin/orders/{oid}", headers=get).body)["day"]
    listing = c.http.get(f"/admin/orders?day={day}", headers=get)
    assert listing.status_code == 200 and json.loads(listing.body)["orders"], listing.body
    assert c.http.get("/admin/orders?status=confirmed", headers=get).status_code == 200
    found = c.http.get("/admin/orders?q=shopper%40deliverable.test", headers=get)
    assert found.status_code == 200, found.body
    assert c.http.get(f"/admin/orders?q={oid}", headers=get).status_code == 200
    assert c.http.get(f"/admin/orders/{oid}", headers=get).status_code == 200
    acted = c.http.post(
        f"/admin/orders/{oid}/actions", headers=post, body=json.dumps({"action": "dispatch"})
    )
    assert acted.status_code == 200, acted.body
    csv = c.http.get(f"/admin/orders.csv?from={day}&to={day}", headers=get)
    assert csv.status_code == 200, csv.body
    health = c.http.get("/admin/email-health", headers=get)
    assert health.status_code == 200, health.body
    suppressed = json.loads(health.body)["suppressed"]
    assert len(suppressed) == 2, suppressed
    (gone,) = [r for r in suppressed if r["email"].startswith("g")]
    removed = c.http.post(
        "/admin/suppression/remove", headers=post, body=json.dumps({"id": gone["id"]})
    )
    assert removed.status_code == 200, removed.body
    erased = c.http.post(
        "/admin/erase",
        headers=post,
        body=json.dumps({"email": "shopper@deliverable.test", "confirm": True}),
    )
    assert erased.status_code == 200, erased.body
    assert json.loads(erased.body)["suppression_hash_kept"] is True
    assert c.http.post("/admin/logout", headers=post, body="").status_code == 200


def run_feedback(make: Callable[[], Any], aws: Any, rec: Recorder, mp: pytest.MonkeyPatch) -> None:
    from tests.plugins.feedback import bounce_message, complaint_message, email_tags, ses_event

    topic = os.environ["SES_FEEDBACK_TOPIC_ARN"]

    c = make()
    # a real order first, so the delivery/bounce reference a real SES message id
    r = c.http.post("/orders", headers=_edge_headers(), body=json.dumps(order_body()))
    assert r.status_code == 201
    receipt = [m for m in aws.sent_mail() if "shopper@deliverable.test" in
               m["destinations"]["ToAddresses"]][-1]  # fmt: skip
    message_id = receipt["id"]
    tags = {k: [v] for k, v in email_tags(json.loads(r.body)["order_id"], "customer").items()}
    # the delivery carries the message's tags (found without a lookup); the bounce doesn't
    # (mail sent before the tags: the message-id index is read)
    delivery = {
        "notificationType": "Delivery",
        "mail": {"timestamp": "2026-11-20T14:03:11.512Z", "messageId": message_id,
                 "destination": ["shopper@deliverable.test"], "tags": tags},
        "delivery": {"timestamp": "2026-11-20T14:03:12.904Z",
                     "recipients": ["shopper@deliverable.test"]},
    }  # fmt: skip
    return_events = [
        delivery,
        bounce_message("gone@deliverable.test", message_id=message_id),
        bounce_message("soft@deliverable.test", bounce_type="Transient"),
        complaint_message("angry@deliverable.test"),
    ]
    for message in return_events:
        with rec.running("feedback"):
            result = c.lambda_.invoke("handle_ses_feedback", ses_event(message, topic=topic))
        assert result.payload.get("error", 0) == 0, result.payload
    ddb = aws.client("dynamodb")
    table = stage_env()["SUPPRESSION_TABLE"]
    assert ddb.get_item(TableName=table, Key={"pk": {"S": "sup#gone@deliverable.test"}}).get("Item")


def _ses_throttles(**kwargs: Any) -> tuple[Any, dict[str, Any]]:
    """Injected fault: SES answers 429 TooManyRequests (botocore short-circuits the call)."""
    from botocore.awsrequest import AWSResponse

    error = {"Code": "TooManyRequestsException", "Message": "injected: throttled"}
    raw = AWSResponse("https://email.invalid", 429, {}, None)
    return raw, {"Error": error, "ResponseMetadata": {"HTTPStatusCode": 429}}


def run_sweeper(make: Callable[[], Any], aws: Any, rec: Recorder, mp: pytest.MonkeyPatch) -> None:
    from chalicelib import edge, services

    rec.faults["SendEmail"] = _ses_throttles  # both sends fail retryably: the outbox keeps them
    c = make()
    r = c.http.post("/orders", headers=_edge_headers(), body=json.dumps(order_body()))
    assert r.status_code == 201, r.body
    assert aws.sent_mail() == []
    del rec.faults["SendEmail"]
    services.reset()  # the sweeper runs in its own container: its own secrets and clients
    edge.clear_cache()
    with rec.running("sweeper"):
        event = c.events.generate_cw_event(
            source="aws.events", detail_type="Scheduled Event", detail={}, resources=[]
        )
        return_value = c.lambda_.invoke("sweep_outbox", event).payload
    assert return_value["sent"] == 2, return_value
    assert len(aws.sent_mail()) == 2


def run_retention(make: Callable[[], Any], aws: Any, rec: Recorder, mp: pytest.MonkeyPatch) -> None:
    from chalicelib import clock, edge, services

    c = make()
    r = c.http.post("/orders", headers=_edge_headers(), body=json.dumps(order_body()))
    assert r.status_code == 201, r.body
    oid = json.loads(r.body)["order_id"]
    services.reset()  # its own container
    edge.clear_cache()
    later = clock.now() + timedelta(days=367)
    mp.setattr(clock, "now", lambda: later)  # a year on: the order is past retention
    with rec.running("retention"):
        event = c.events.generate_cw_event(
            source="aws.events", detail_type="Scheduled Event", detail={}, resources=[]
        )
        result = c.lambda_.invoke("sweep_retention", event).payload
    assert result == {"erased": 1}, result
    from chalicelib import ddb

    item = aws.client("dynamodb").get_item(
        TableName=stage_env()["ORDERS_TABLE"], Key={"pk": {"S": f"order#{oid}"}}
    )["Item"]
    order = ddb.load(item)
    assert order["customer"]["email"] == "" and order["total_cents"] > 0


SCENARIOS = {
    "api": run_api,
    "feedback": run_feedback,
    "sweeper": run_sweeper,
    "retention": run_retention,
}


def _granted(doc: dict[str, Any]) -> list[tuple[set[str], list[str]]]:
    """(actions, resource patterns) per statement, intrinsics resolved for the test account."""
    out = []
    for s in doc["Statement"]:
        assert s["Effect"] == "Allow"
        resources = []
        for r in s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]]:
            text = r["Fn::Sub"] if isinstance(r, dict) else r
            for k, v in {
                "${AWS::Partition}": "aws",
                "${AWS::Region}": REGION,
                "${AWS::AccountId}": ACCOUNT,
                "${SenderIdentity}": "*",
            }.items():
                text = text.replace(k, v)
            resources.append(text)
        actions = s["Action"] if isinstance(s["Action"], list) else [s["Action"]]
        out.append((set(actions), resources))
    return out


def _allowed(call: Call, grants: list[tuple[set[str], list[str]]]) -> bool:
    action, arn = call
    return any(
        action in actions and any(fnmatch.fnmatchcase(arn, r) for r in resources)
        for actions, resources in grants
    )


@pytest.mark.parametrize("role", sorted(SCENARIOS))
def test_policy_grants_exactly_the_calls_the_function_makes(
    role: str,
    cloud_app: Callable[[], Any],
    aws: Any,
    recorder: Recorder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    SCENARIOS[role](cloud_app, aws, recorder, monkeypatch)
    calls = recorder.calls.get(role, set())
    assert calls, f"{role}: the hook recorded no AWS call"
    grants = _granted(policy(STAGE, role))
    missing = sorted(c for c in calls if not _allowed(c, grants))
    assert missing == [], f"{role} makes calls its policy does not grant: {missing}"
    unused = sorted(
        (action, resources)
        for actions, resources in grants
        for action in actions - RUNTIME_GRANTS[role]
        if not any(_allowed(c, [({action}, resources)]) for c in calls)
    )
    assert unused == [], f"{role}: granted but never called (drop them): {unused}"
    runtime = set().union(*(a for a, _ in grants)) & RUNTIME_GRANTS[role]
    assert runtime == RUNTIME_GRANTS[role], f"{role}: runtime grants missing"


@pytest.mark.parametrize("role", sorted(SCENARIOS))
def test_dev_policy_is_prod_with_the_stage_renamed(role: str) -> None:
    dev = json.dumps(policy("dev", role))
    prod = json.dumps(policy("prod", role))
    assert dev == prod.replace("juice-orders-prod", "juice-orders-dev").replace(
        "/juice-orders/prod/", "/juice-orders/dev/"
    )


def test_every_function_has_its_own_policy_file() -> None:
    for stage in ("dev", "prod"):
        files = {
            fn: CONFIG["stages"][stage]["lambda_functions"][fn]["iam_policy_file"]
            for fn in FUNCTIONS
        }
        assert len(set(files.values())) == len(FUNCTIONS), files
        assert set(FUNCTIONS) == set(CONFIG["stages"][stage]["lambda_functions"])
