"""`make rehearse` end to end, plus the pure parts of preflight/deploy it relies on.

The rehearsal runs as a subprocess, exactly as `make rehearse` does, on a fresh package of
the prod stage: deploy on moto, smoke, teardown, deploy again (retained tables adopted),
smoke again. Its network guard refuses anything but loopback; the test asserts nothing was
refused and both smoke runs passed.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from infra import deploy, package, preflight

ROOT = Path(__file__).resolve().parents[2]
SCAN_PYTHON = ROOT / "build" / ".venv-scan" / "bin" / "python"


@pytest.fixture(scope="module")
def rehearsal(tmp_path_factory: pytest.TempPathFactory) -> subprocess.CompletedProcess[str]:
    if not SCAN_PYTHON.exists():
        pytest.skip("aws-sam-translator missing: run `make scan-venv` (creates build/.venv-scan)")
    out = tmp_path_factory.mktemp("rehearse-pkg")
    package.package("prod", out)
    return subprocess.run(
        [sys.executable, str(ROOT / "infra" / "rehearse.py"), "--stage", "prod",
         "--package-dir", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
    )  # fmt: skip


@pytest.mark.timeout(900)
def test_rehearsal_deploys_smokes_tears_down_and_deploys_again(
    rehearsal: subprocess.CompletedProcess[str],
) -> None:
    out = rehearsal.stdout
    assert rehearsal.returncode == 0, out[-6000:] + rehearsal.stderr[-3000:]
    assert "REHEARSAL PASSED" in out
    assert "smoke: ['ok', 'ok']" in out
    assert out.count("ok   bounce reached the suppression table") == 2
    assert out.count("ok   execute-api URL without X-Origin-Verify is 403") == 2
    assert "preflight prod: ready to deploy" in out
    # the second deploy found the retained tables and used them instead of failing
    adopted = [line.split()[-1] for line in out.splitlines() if "TablesAdopted" in line]
    assert adopted == ["false", "true"], adopted
    assert "retained tables" in out and "exist outside the stack" in out


@pytest.mark.timeout(900)
def test_rehearsal_a_bounce_during_an_outage_is_not_lost(
    rehearsal: subprocess.CompletedProcess[str],
) -> None:
    """Issue 16 row 5: SNS -> Lambda is asynchronous; a handler that raises on an
    infrastructure error is retried twice, then dead-lettered, and the replay suppresses."""
    (line,) = [x for x in rehearsal.stdout.splitlines() if x.startswith("feedback with AWS")]
    assert line.endswith("raised 3 times, dead-lettered, replayed: suppressed"), line


@pytest.mark.timeout(900)
def test_rehearsal_never_left_loopback(rehearsal: subprocess.CompletedProcess[str]) -> None:
    (network,) = [line for line in rehearsal.stdout.splitlines() if "network:" in line]
    assert "(hosts: 127.0.0.1)" in network or "(hosts: 127.0.0.1, localhost)" in network, network
    assert "; 0 refused" in network, network


def test_netguard_refuses_everything_but_loopback() -> None:
    code = textwrap.dedent(
        """
        import socket, sys
        sys.path.insert(0, ROOT)
        from infra import netguard
        netguard.install()
        server = socket.socket(); server.bind(("127.0.0.1", 0)); server.listen()
        socket.create_connection(server.getsockname(), timeout=1).close()
        for target in (("10.1.2.3", 443), ("8.8.8.8", 53)):
            s = socket.socket()
            try:
                s.connect(target)
            except netguard.NetworkRefused:
                print("refused", target[0])
        try:
            socket.getaddrinfo("example.com", 443)
        except netguard.NetworkRefused:
            print("refused example.com")
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            u.sendto(b"x", ("1.1.1.1", 53))
        except netguard.NetworkRefused:
            print("refused 1.1.1.1")
        print(netguard.summary())
        """
    )
    code = f"ROOT = {str(ROOT)!r}\n" + code
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[:4] == [
        "refused 10.1.2.3",
        "refused 8.8.8.8",
        "refused example.com",
        "refused 1.1.1.1",
    ]
    assert "4 refused" in lines[-1] and "hosts: 127.0.0.1" in lines[-1]


def test_table_plan_after_teardown_adopts_and_refuses_half_states() -> None:
    names = deploy.retained_table_names("prod")
    orders, suppression = names["OrdersTable"], names["SuppressionTable"]
    first = deploy.plan_tables("prod", set(), {})
    assert (first.adopt, first.problem) == (False, "")
    owned = deploy.plan_tables("prod", {orders, suppression}, dict(names.items()))
    assert (owned.adopt, owned.owned, owned.problem) == (False, (orders, suppression), "")
    after_teardown = deploy.plan_tables("prod", {orders, suppression, "other"}, {})
    assert after_teardown.adopt and after_teardown.outside == (orders, suppression)
    assert not after_teardown.problem
    only_one = deploy.plan_tables("prod", {orders}, {})
    assert only_one.problem and suppression in only_one.problem
    mixed = deploy.plan_tables("prod", {orders, suppression}, {"OrdersTable": orders})
    assert mixed.problem and "import-tables" in mixed.problem
    assert deploy.parameter_overrides({}, "s" * 40, True)[0] == "AdoptRetainedTables=true"


def test_preflight_name_checks() -> None:
    assert preflight.covers("*.example.com", "shop.example.com")
    assert not preflight.covers("*.example.com", "a.shop.example.com")
    assert preflight.covers("shop.example.com", "SHOP.example.com.")
    assert not preflight.covers("example.com", "shop.example.com")
    assert preflight.sender_in_identity("orders@example.com", "example.com")
    assert preflight.sender_in_identity("orders@mail.example.com", "example.com")
    assert not preflight.sender_in_identity("orders@example.org", "example.com")
    assert preflight.sender_in_identity("orders@example.com", "orders@example.com")
    assert not preflight.sender_in_identity("other@example.com", "orders@example.com")


def test_import_plan_names_the_retained_tables(tmp_path: Path) -> None:
    template = {"Resources": {"OrdersTable": {}, "SuppressionTable": {}, "RateLimitTable": {}}}
    plan = deploy.import_plan("prod", template)["ResourcesToImport"]
    assert plan == [
        {
            "ResourceType": "AWS::DynamoDB::Table",
            "LogicalResourceId": "OrdersTable",
            "ResourceIdentifier": {"TableName": "juice-orders-prod-orders"},
        },
        {
            "ResourceType": "AWS::DynamoDB::Table",
            "LogicalResourceId": "SuppressionTable",
            "ResourceIdentifier": {"TableName": "juice-orders-prod-suppression"},
        },
    ]


def test_preflight_stops_at_the_first_blocker(
    aws: object, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Against a bare account (moto): read-only checks until the certificate, which is missing."""
    import json

    example = json.loads((ROOT / "infra" / "params-example.json").read_text())
    params = tmp_path / "params-prod.json"
    params.write_text(json.dumps(example))
    assert preflight.run("prod", params) == 1
    out = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in out] == [
        "ok    tools",
        "ok    parameters file",
        "ok    credentials",
        "ok    region",
        "BLOCK certificate",
    ]
    assert "not found" in out[-1]  # the example certificate does not exist


def test_preflight_blocks_a_missing_params_file(tmp_path: Path) -> None:
    assert preflight.run("prod", tmp_path / "nope.json") == 1
