"""`make rehearse`: the deploy, offline, against moto on loopback only; then again.

    python infra/rehearse.py [--stage prod] [--package-dir build/prod]

Runs the real deploy code of infra/deploy.py (bootstrap, init-secrets, preflight, deploy,
publish-site, smoke, teardown) against an embedded moto server (AWS_ENDPOINT_URL), in this
order:

 1. start moto, a DNS server and the fake Turnstile siteverify on 127.0.0.1;
 2. expand the packaged SAM template locally (aws-sam-translator, what CloudFormation's
    transform does; moto has none);
 3. bootstrap, secrets, an imported certificate and a verified SES identity; preflight;
 4. deploy: moto's CloudFormation gets what it implements; what it skips (CloudFront, WAF,
    SES, alarms, the API stage, SNS subscriptions, ...) is created through moto's service APIs
    from the same template, intrinsics resolved (`MotoAdapter`). What moto has no API for at
    all (CloudFront cache/origin-request/response-headers policies, SES event destinations)
    is applied by the emulators below straight from the template;
 5. assert on the template the properties moto drops (arm64, DLQ, TTL, PITR, encryption,
    public access block, deletion protection) and on moto what it keeps;
 6. publish the site, then serve the rehearsal's endpoints on loopback (`infra/emulators.py`):
    an edge (CloudFront: behaviours, origin request policies, response headers, the 404
    page, the CloudFront WAF's own rules), the API stage (regional WAF, gateway responses,
    Lambda proxy events with the deployed functions' environment and timeouts), SNS -> Lambda
    (async: retries, then the DLQ) and SES's mailbox simulator (bounce/delivery events);
 7. smoke (infra/smoke.py) against those endpoints, teardown, deploy again (the retained
    tables are adopted), smoke again; a bounce while AWS is unreachable (raise, 2 retries,
    DLQ, replay); final teardown; print a summary with timings.

Never contacts anything but loopback: every endpoint is 127.0.0.1/localhost, and
`infra/netguard.py` refuses any other connection or name lookup in this process and in the
SAM-expansion subprocess (the summary lists what was allowed and refused). Packaging itself
(`make package`, which may fetch wheels for the Lambda zip like any build) runs before.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from infra import deploy, netguard  # noqa: E402

ACCOUNT = "123456789012"
REGION = deploy.REGION
DOMAIN = "shop.rehearsal.test"
SENDER_DOMAIN = "rehearsal.test"
# Cloudflare's documented always-pass test secret (its test token passes with it)
TURNSTILE_TEST_SECRET = "1x0000000000000000000000000000000AA"  # nosec B105  # public test key
SCAN_PYTHON = ROOT / "build" / ".venv-scan" / "bin" / "python"
SIMULATOR_ZONE = """
$ORIGIN amazonses.com.
@               IN SOA  ns1.test. hostmaster.amazonses.com. 1 3600 600 86400 60
@               IN NS   ns1.test.
$ORIGIN simulator.amazonses.com.
@               IN MX   10 inbound-smtp.us-east-1.amazonaws.com.
"""


class Step:
    """Timed, printed steps for the summary."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, float]] = []
        self.started = time.perf_counter()

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        print(f"\n== {name}", flush=True)
        t = time.perf_counter()
        yield
        self.rows.append((name, time.perf_counter() - t))

    def table(self) -> str:
        lines = [f"  {name:52} {secs:6.1f} s" for name, secs in self.rows]
        lines.append(f"  {'total':52} {time.perf_counter() - self.started:6.1f} s")
        return "\n".join(lines)


# --------------------------------------------------------------------------- local servers
class Moto:
    """moto (behind devstack's one-request-at-a-time lock) in a thread on 127.0.0.1."""

    def __init__(self) -> None:
        from werkzeug.serving import WSGIRequestHandler, make_server

        from devstack.moto_server import make_app

        class Quiet(WSGIRequestHandler):
            def log_request(self, *args: Any, **kwargs: Any) -> None:
                return

        self.server = make_server("127.0.0.1", 0, make_app(), threaded=True, request_handler=Quiet)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> Moto:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()


def expand_sam(template_path: Path, out: Path) -> dict[str, Any]:
    """Run infra/sam_transform.py in the scan venv, under the network guard too."""
    if not SCAN_PYTHON.exists():
        raise SystemExit("aws-sam-translator missing: run `make scan-venv` first")
    guard_dir = out.parent / "guard"
    guard_dir.mkdir(parents=True, exist_ok=True)
    (guard_dir / "sitecustomize.py").write_text(
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('netguard', {str(ROOT / 'infra' / 'netguard.py')!r})\n"  # noqa: E501
        "mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod); mod.install()\n"
    )
    env = {**os.environ, "PYTHONPATH": str(guard_dir)}
    proc = subprocess.run(
        [str(SCAN_PYTHON), str(ROOT / "infra" / "sam_transform.py"), str(template_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    if proc.returncode != 0:
        raise SystemExit(f"SAM expansion failed:\n{proc.stderr[-3000:]}")
    out.write_text(proc.stdout)
    return dict(json.loads(proc.stdout))


def self_signed_certificate(domain: str) -> tuple[bytes, bytes]:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, domain)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(domain)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return (
        cert.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )


# --------------------------------------------------------------------------- the rehearsal
class Rehearsal:
    def __init__(self, stage: str, package_dir: Path, work: Path) -> None:
        self.stage = stage
        self.package_dir = package_dir
        self.work = work
        self.step = Step()
        self.notes: list[str] = []
        self.smokes: list[int] = []
        self.outputs: dict[str, str] = {}
        self.feedback_outcome = "not run"

    def run(self) -> int:
        from devstack.dns_server import DnsServer
        from devstack.siteverify import SiteverifyServer
        from infra import emulators, preflight
        from infra.moto_adapter import MotoAdapter, check_dropped_properties

        netguard.install()
        self.work.mkdir(parents=True, exist_ok=True)
        with self.step("start moto, DNS and siteverify on 127.0.0.1"):
            moto = Moto().start()
            zone = self.work / "zone.txt"
            from devstack.dns_server import DEFAULT_ZONE

            zone.write_text(DEFAULT_ZONE.read_text() + SIMULATOR_ZONE)
            dns = DnsServer(zone_path=zone).start()
            siteverify = SiteverifyServer().start()
            os.environ.update(
                {
                    "AWS_ENDPOINT_URL": moto.url,
                    "AWS_ACCESS_KEY_ID": "testing",
                    "AWS_SECRET_ACCESS_KEY": "testing",
                    "AWS_REGION": REGION,
                    "AWS_DEFAULT_REGION": REGION,
                    "TURNSTILE_SECRET": TURNSTILE_TEST_SECRET,
                }
            )
            os.environ.pop("AWS_PROFILE", None)
            print(f"moto {moto.url}, dns {dns.nameserver}, siteverify {siteverify.url}")
        try:
            with self.step("expand the SAM transform locally"):
                template = expand_sam(
                    self.package_dir / "template.json", self.work / "expanded.json"
                )
                for res in template["Resources"].values():  # the local zip, as packaged
                    if res["Type"] == "AWS::Lambda::Function":
                        res["Properties"]["Code"] = "deployment.zip"
                print(f"{len(template['Resources'])} resources after the transform")
            with self.step("bootstrap stack, secrets, certificate, SES identity"):
                adapter = MotoAdapter(ACCOUNT, REGION, self.notes)
                boot = deploy.load_yaml_template(ROOT / "infra" / "bootstrap.yaml")
                boot_moto = adapter.split(deploy.BOOTSTRAP_STACK, boot)
                print(f"{deploy.BOOTSTRAP_STACK}: {deploy.bootstrap(boot_moto, delay=1)}")
                adapter.emulate(deploy.BOOTSTRAP_STACK, {})
                deploy.cmd_init_secrets(argparse.Namespace(stage=self.stage, rotate_origin=False))
                cert_pem, key_pem = self_signed_certificate(DOMAIN)
                cert_arn = adapter.boto("acm").import_certificate(
                    Certificate=cert_pem, PrivateKey=key_pem
                )["CertificateArn"]
                adapter.boto("sesv2").create_email_identity(
                    EmailIdentity=SENDER_DOMAIN,
                    DkimSigningAttributes={"NextSigningKeyLength": "RSA_2048_BIT"},
                )
                params_path = self.work / f"params-{self.stage}.json"
                params_path.write_text(json.dumps(self.params_file(cert_arn), indent=1))
            with self.step(f"preflight STAGE={self.stage}"):
                if preflight.run(self.stage, params_path) != 0:
                    raise SystemExit("preflight refused the rehearsal's account")
            servers = emulators.Servers(
                stage=self.stage,
                template=template,
                adapter=adapter,
                dns=dns.nameserver,
                siteverify=siteverify.url,
                moto_url=moto.url,
            )
            for round_no in (1, 2):
                self.deploy_round(round_no, template, adapter, servers, params_path)
                if round_no == 1:
                    with self.step("teardown (tables retained)"):
                        self.teardown(adapter)
                        tables = deploy.existing_tables()
                        kept = set(deploy.retained_table_names(self.stage).values())
                        assert kept <= tables, f"retained tables gone: {kept - tables}"
                        orders = adapter.boto("dynamodb").scan(
                            TableName=f"juice-orders-{self.stage}-orders", Select="COUNT"
                        )["Count"]
                        assert orders > 0, "the first round's orders should still be there"
                        print(f"kept {sorted(kept)} ({orders} items in orders)")
                        plan = deploy.table_plan(self.stage)
                        assert plan.adopt and not plan.problem, plan
                        print(f"next deploy: {plan.describe()}")
            with self.step("feedback while AWS is unreachable: retries, DLQ, replay"):
                self.feedback_when_unreachable(servers)
            with self.step("check the dropped properties on the template and on moto"):
                for line in check_dropped_properties(template, adapter, self.stage):
                    print(line)
            with self.step("final teardown"):
                self.teardown(adapter)
                servers.stop()
        finally:
            siteverify.stop()
            dns.stop()
            moto.stop()
        print("\n== summary")
        print(self.step.table())
        print(f"smoke: {['ok' if rc == 0 else 'FAILED' for rc in self.smokes]}")
        print(f"feedback with AWS unreachable: {self.feedback_outcome}")
        for note in self.notes:
            print(f"  note: {note}")
        print(f"  network: {netguard.summary()}")
        failed = any(self.smokes) or netguard.refused
        print("REHEARSAL " + ("FAILED" if failed else "PASSED"))
        return 1 if failed else 0

    def params_file(self, cert_arn: str) -> dict[str, Any]:
        example = json.loads((ROOT / "infra" / "params-example.json").read_text())
        params = dict(example["Parameters"])
        params.update(
            DomainName=DOMAIN,
            CertificateArn=cert_arn,
            SenderIdentity=SENDER_DOMAIN,
            SenderEmail=f"orders@{SENDER_DOMAIN}",
            MerchantEmail="success@simulator.amazonses.com",
            AlarmEmail="",
        )
        return {"Parameters": params, "Site": {"turnstileSitekey": "1x00000000000000000000AA"}}

    def deploy_round(
        self,
        n: int,
        template: dict[str, Any],
        adapter: Any,
        servers: Any,
        params_path: Path,
    ) -> None:
        name = deploy.stack_name(self.stage)
        params = deploy.load_params(self.stage, params_path)
        with self.step(f"deploy #{n} (change set on moto + emulated resources)"):
            moto_template = adapter.split(name, template)
            status = deploy.deploy(
                self.stage, moto_template, params["Parameters"], self.package_dir, delay=1
            )
            print(f"{name}: {status}")
            outputs = adapter.emulate(name, self.parameters(params["Parameters"]))
            self.outputs = outputs
            for k in ("DistributionId", "SiteBucketName", "ApiWebAclArn", "TablesAdopted"):
                print(f"  {k:20} {outputs.get(k)}")
        with self.step(f"publish the site #{n}"):
            lines = deploy.publish_site(
                self.stage, params["Site"], outputs["SiteBucketName"], outputs["DistributionId"]
            )
            print(f"{len(lines)} operations ({lines[-1]})")
        with self.step(f"smoke #{n} against the rehearsal's endpoints"):
            site, api = servers.start(outputs)
            # the same command line as `make smoke SMOKE_ARGS=...` against a real stage
            argv = ["smoke", "--stage", self.stage, "--site-url", site, "--api-url", api,
                    "--suppression-table", outputs["SuppressionTableName"]]  # fmt: skip
            print("+ infra/deploy.py " + " ".join(argv))
            try:
                self.smokes.append(deploy.main(argv))
            finally:
                servers.stop()

    def feedback_when_unreachable(self, servers: Any) -> None:
        """Issue 16 row 5: a bounce while DynamoDB can't be reached must not be lost.

        SNS invokes the feedback function asynchronously: if the handler raises, Lambda
        retries it twice, then the event goes to the DLQ; replayed after the outage, the
        bounce lands in the suppression table. A handler that swallows the error loses it.
        """
        import uuid

        from infra import emulators, smoke

        email = f"bounce+outage-{uuid.uuid4().hex[:8]}@simulator.amazonses.com"
        message = {
            "eventType": "Bounce",
            "mail": {"timestamp": "2026-01-01T00:00:00.000Z", "messageId": "outage-1",
                     "destination": [email]},
            "bounce": {"bounceType": "Permanent", "bounceSubType": "General",
                       "feedbackId": "outage-1", "timestamp": "2026-01-01T00:00:01.000Z",
                       "bouncedRecipients": [{"emailAddress": email, "status": "5.1.1"}]},
        }  # fmt: skip
        event = {
            "Records": [
                {
                    "EventSource": "aws:sns",
                    "EventVersion": "1.0",
                    "Sns": {
                        "Type": "Notification",
                        "MessageId": f"outage-{uuid.uuid4().hex[:8]}",
                        "TopicArn": self.outputs["SesFeedbackTopicArn"],
                        "Subject": None,
                        "Message": json.dumps(message),
                        "Timestamp": "2026-01-01T00:00:02.000Z",
                        "MessageAttributes": {},
                    },
                }
            ]
        }
        # port 9 on loopback: nothing listens, every AWS call is refused at once
        down = {**servers.overrides, "AWS_ENDPOINT_URL": "http://127.0.0.1:9"}
        runtime = emulators.LambdaRuntime(servers.template, down, self.notes)
        runtime.invoke_async("HandleSesFeedback", event)
        runtime.drain(120)
        runtime.stop()
        failures = runtime.failures["HandleSesFeedback"]
        sqs = deploy._boto("sqs")
        url = sqs.get_queue_url(QueueName=f"juice-orders-{self.stage}-feedback-dlq")["QueueUrl"]
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if failures == 0:
            self.feedback_outcome = (
                "LOST: the handler returned instead of raising, nothing reached the DLQ "
                "(chalicelib side of issue 16 row 5)"
            )
            print(self.feedback_outcome)
            return
        assert runtime.invocations["HandleSesFeedback"] == 3, runtime.invocations
        assert len(got) == 1, f"{len(got)} messages in the DLQ"
        up = emulators.LambdaRuntime(servers.template, servers.overrides, self.notes)
        try:
            up.invoke("HandleSesFeedback", json.loads(got[0]["Body"]))
        finally:
            up.stop()
        sqs.delete_message(QueueUrl=url, ReceiptHandle=got[0]["ReceiptHandle"])
        assert smoke.suppressed(self.outputs["SuppressionTableName"], email), "not suppressed"
        self.feedback_outcome = "raised 3 times, dead-lettered, replayed: suppressed"
        print(self.feedback_outcome)

    def parameters(self, params: dict[str, str]) -> dict[str, str]:
        ssm = deploy._boto("ssm")
        secret = ssm.get_parameter(Name=deploy.origin_verify_param(self.stage), WithDecryption=True)
        cfn = deploy._boto("cloudformation")
        stack = cfn.describe_stacks(StackName=deploy.stack_name(self.stage))["Stacks"][0]
        given = {
            p["ParameterKey"]: p.get("ParameterValue", "") for p in stack.get("Parameters", [])
        }
        # the values as given (moto echoes a CommaDelimitedList back as "['']")
        return {**given, **params, "OriginVerifySecret": secret["Parameter"]["Value"]}

    def teardown(self, adapter: Any) -> None:
        adapter.delete_emulated(deploy.stack_name(self.stage))
        for line in deploy.teardown(self.stage, delay=1):
            print(line)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stage", default="prod", choices=("dev", "prod"))
    ap.add_argument("--package-dir", type=Path, help="default build/<stage> (make package)")
    ap.add_argument("--work", type=Path, help="scratch directory (default: a temp dir)")
    args = ap.parse_args(argv)
    package_dir = (args.package_dir or ROOT / "build" / args.stage).resolve()
    if not (package_dir / "template.json").exists():
        raise SystemExit(f"{package_dir}/template.json missing: run `make package` first")
    with tempfile.TemporaryDirectory(prefix="rehearsal-") as tmp:
        work = args.work or Path(tmp)
        return Rehearsal(args.stage, package_dir, work).run()


_: Callable[..., Any] = main
if __name__ == "__main__":
    sys.exit(main())
