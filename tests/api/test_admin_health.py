"""Email health (last 7 / 30 days against SES's thresholds) and the suppression list with
"remove from suppression" (audited)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.api.adminkit import JSON, body, sign_in
from tests.api.test_admin_csv import seed, seeded_order
from tests.helpers import CUSTOMER_EMAIL, order_body, post_order
from tests.plugins.feedback import bounce_message, email_tags, ses_event


@pytest.fixture()
def signed(client: Any, aws: Any) -> dict[str, str]:
    return sign_in(client, aws)


def health(client: Any, signed: dict[str, str]) -> dict[str, Any]:
    r = client.http.get("/admin/email-health", headers={"Cookie": signed["Cookie"]})
    assert r.status_code == 200, r.body
    return dict(body(r))


def test_counts_rates_and_suppression_list(client: Any, ddb: Any, signed: dict[str, str]) -> None:
    from chalicelib.services import services

    oids = [json.loads(post_order(client, order_body()).body)["order_id"] for _ in range(2)]
    order = services().store.get_order(oids[0])
    assert order is not None
    receipt = order["emails"]["customer"]["message_id"]
    tags = email_tags(oids[0], "customer")
    client.lambda_.invoke(
        "handle_ses_feedback",
        ses_event(bounce_message(CUSTOMER_EMAIL, message_id=receipt, tags=tags)),
    )
    from datetime import datetime
    from zoneinfo import ZoneInfo

    ten_days_ago = int(time.time()) - 10 * 86400
    old_day = datetime.fromtimestamp(ten_days_ago, ZoneInfo("America/New_York")).date()
    seed(ddb, [seeded_order(1, day=old_day.isoformat(), created_at=ten_days_ago)])
    data = health(client, signed)
    week, month = data["windows"]
    assert (week["days"], month["days"]) == (7, 30)
    assert week["sent"] == 4 and week["bounced"] == 1 and week["delivered"] == 0
    assert week["bounce_rate"] == 0.25 and week["bounce_ok"] is False
    assert month["sent"] == 6 and month["delivered"] == 1  # the seeded order's receipt
    assert month["complaint_rate"] == 0 and month["complaint_ok"] is True
    assert data["thresholds"] == {"bounce_rate": 0.05, "complaint_rate": 0.001}
    [row] = data["suppressed"]
    assert row["email"] == "s***@deliverable.test" and row["reason"] == "bounce"
    assert row["since"] and CUSTOMER_EMAIL not in json.dumps(data["suppressed"])


def test_remove_from_suppression(
    client: Any, signed: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    client.lambda_.invoke("handle_ses_feedback", ses_event(bounce_message(CUSTOMER_EMAIL)))
    assert post_order(client, order_body()).status_code == 422
    [row] = health(client, signed)["suppressed"]
    h = {**signed, **JSON}
    bad = client.http.post("/admin/suppression/remove", headers=h, body='{"id":"x"}')
    assert bad.status_code == 422
    gone = client.http.post(
        "/admin/suppression/remove", headers=h, body='{"id":"' + "0" * 24 + '"}'
    )
    assert gone.status_code == 404
    capsys.readouterr()
    r = client.http.post("/admin/suppression/remove", headers=h, body=json.dumps({"id": row["id"]}))
    assert r.status_code == 200 and body(r)["removed"] is True
    out = capsys.readouterr().out
    [audit] = [json.loads(x) for x in out.splitlines() if '"admin_audit"' in x]
    assert audit["what"] == "suppression_remove" and audit["email"] == "s***@deliverable.test"
    assert CUSTOMER_EMAIL not in out
    assert health(client, signed)["suppressed"] == []
    assert post_order(client, order_body()).status_code == 201
