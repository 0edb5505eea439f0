"""The local moto server's fast paths change no answer.

devstack.moto_server remembers the backend per host, keeps parsed UpdateExpressions (the
Validator gets a copy from a pickle) and serialises DynamoDB AttributeValues without
asking for their absent members. These tests run two real servers over HTTP - one as
shipped, one with DEVSTACK_MOTO_FAST=0 (moto's own code) - and send both the same raw
requests: status, body and error type must be byte for byte the same, and the items must
hold what the requests asked for.
"""

from __future__ import annotations

import http.client
import json
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlparse

import pytest

from devstack import moto_server
from tests.servers import MotoServer


def _start(monkeypatch: pytest.MonkeyPatch, fast: bool) -> MotoServer:
    with monkeypatch.context() as m:
        m.setenv(moto_server.FAST_ENV, "1" if fast else "0")
        return MotoServer().start()


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, MotoServer]]:
    mp = pytest.MonkeyPatch()
    started: dict[str, MotoServer] = {}
    try:
        started["fast"] = _start(mp, True)
        started["plain"] = _start(mp, False)
        yield started
    finally:
        for s in started.values():
            s.stop()
        mp.undo()


def _auth(service: str, region: str = "us-east-1") -> str:
    return (
        f"AWS4-HMAC-SHA256 Credential=testing/20240101/{region}/{service}/aws4_request, "
        "SignedHeaders=host, Signature=0"
    )


class Raw:
    """Raw requests to one server (one keep-alive connection)."""

    def __init__(self, server: MotoServer) -> None:
        u = urlparse(server.url)
        self.conn = http.client.HTTPConnection(u.hostname or "127.0.0.1", u.port, timeout=30)

    def request(
        self, method: str, path: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, bytes, dict[str, str]]:
        self.conn.request(method, path, body=body, headers=headers)
        r = self.conn.getresponse()
        data = r.read()
        kept = {k.lower(): v for k, v in r.getheaders()}
        return r.status, data, kept

    def ddb(self, op: str, body: dict[str, Any], region: str = "us-east-1") -> Answer:
        status, data, headers = self.request(
            "POST",
            "/",
            json.dumps(body).encode(),
            {
                "X-Amz-Target": f"DynamoDB_20120810.{op}",
                "Content-Type": "application/x-amz-json-1.0",
                "Authorization": _auth("dynamodb", region),
            },
        )
        return Answer(status, data, headers)

    def sesv2(self, path: str, body: dict[str, Any] | None, region: str = "us-east-1") -> Answer:
        method = "GET" if body is None else "POST"
        status, data, headers = self.request(
            method,
            path,
            b"" if body is None else json.dumps(body).encode(),
            {"Content-Type": "application/json", "Authorization": _auth("ses", region)},
        )
        return Answer(status, data, headers)


class Answer:
    def __init__(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.status = status
        self.body = body
        self.headers = headers

    @property
    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def same_as(self) -> tuple[int, bytes, str | None, str | None]:
        """What must not differ between the servers (not the request id, not the date)."""
        return (
            self.status,
            self.body,
            self.headers.get("content-type"),
            self.headers.get("x-amzn-errortype"),
        )


@pytest.fixture()
def pair(servers: dict[str, MotoServer]) -> Iterator[dict[str, Raw]]:
    raws = {name: Raw(s) for name, s in servers.items()}
    yield raws
    for r in raws.values():
        r.conn.close()


def both(pair: dict[str, Raw], op: str, body: dict[str, Any], **kw: Any) -> Answer:
    """Send the same DynamoDB request to both servers; their answers must be identical."""
    fast, plain = pair["fast"].ddb(op, body, **kw), pair["plain"].ddb(op, body, **kw)
    assert fast.same_as() == plain.same_as(), (op, fast.body[:600], plain.body[:600])
    return fast


def new_table(pair: dict[str, Raw], range_key: bool = False) -> str:
    name = f"fast-{uuid.uuid4().hex[:8]}"
    schema = [{"AttributeName": "pk", "KeyType": "HASH"}]
    attrs = [{"AttributeName": "pk", "AttributeType": "S"}]
    if range_key:
        schema.append({"AttributeName": "sk", "KeyType": "RANGE"})
        attrs.append({"AttributeName": "sk", "AttributeType": "N"})
    for raw in pair.values():
        a = raw.ddb(
            "CreateTable",
            {
                "TableName": name,
                "KeySchema": schema,
                "AttributeDefinitions": attrs,
                "BillingMode": "PAY_PER_REQUEST",
            },
        )
        assert a.status == 200, a.body
    return name


EVERY_TYPE: dict[str, Any] = {
    "s": {"S": "text é ✓"},
    "empty_s": {"S": ""},
    "n": {"N": "-12.5000"},
    "b": {"B": "AAEC/w=="},
    "ss": {"SS": ["b", "a"]},
    "ns": {"NS": ["3", "1.50"]},
    "bs": {"BS": ["AA==", "AQ=="]},
    "null": {"NULL": True},
    "t": {"BOOL": True},
    "f": {"BOOL": False},
    "empty_m": {"M": {}},
    "empty_l": {"L": []},
    # member names as attribute names: an attribute called "S" is not an AttributeValue
    "S": {"M": {"S": {"S": "x"}, "N": {"N": "1"}, "L": {"L": [{"S": "y"}, {"NULL": True}]}}},
    "emails": {
        "M": {
            "merchant": {"M": {"status": {"S": "queued"}, "attempts": {"N": "0"}}},
            "customer": {"M": {"status": {"S": "queued"}, "tags": {"SS": ["x"]}}},
        }
    },
    "lines": {"L": [{"M": {"sku": {"S": f"sku-{j}"}, "qty": {"N": str(j)}}} for j in range(3)]},
    "nested": {"L": [{"L": [{"L": [{"N": "1"}]}, {"M": {"m": {"M": {}}}}]}]},
}

UPDATE = (
    "SET #e.merchant.#s = :st, #e.merchant.message_id = :m, #e.customer.#s = :st2, "
    "outbox = :ob, due_at = :due, #l[1].qty = :q ADD #e.merchant.attempts :one "
    "REMOVE lease, #l[2]"
)


def update_args(table: str, pk: str, st: str, m: str, due: int) -> dict[str, Any]:
    return {
        "TableName": table,
        "Key": {"pk": {"S": pk}},
        "UpdateExpression": UPDATE,
        "ConditionExpression": "attribute_exists(pk) AND #e.merchant.#s <> :bounced",
        "ExpressionAttributeNames": {"#e": "emails", "#s": "status", "#l": "lines"},
        "ExpressionAttributeValues": {
            ":st": {"S": st},
            ":st2": {"S": st + "-c"},
            ":m": {"S": m},
            ":ob": {"S": "pending"},
            ":due": {"N": str(due)},
            ":q": {"N": str(due % 7)},
            ":one": {"N": "1"},
            ":bounced": {"S": "bounced"},
        },
        "ReturnValues": "ALL_NEW",
    }


def test_fast_paths_install_for_this_moto_and_not_when_turned_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the version pin: a moto upgrade must be re-read against the fast paths (or they go off)
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    monkeypatch.setenv(moto_server.FAST_ENV, "0")
    assert moto_server.install_fast_paths(DomainDispatcherApplication(create_backend_app)) == []
    monkeypatch.setenv(moto_server.FAST_ENV, "1")
    installed = moto_server.install_fast_paths(DomainDispatcherApplication(create_backend_app))
    assert installed == [
        "backend_for_host",
        "update_expression_cache",
        "attribute_value",
        "traversal",
        "method_names",
        "condition_lexer",
    ]


def test_same_update_expression_twice_different_values_different_items(
    pair: dict[str, Raw],
) -> None:
    table = new_table(pair)
    for pk in ("a", "b", "c"):
        both(pair, "PutItem", {"TableName": table, "Item": {"pk": {"S": pk}, **EVERY_TYPE}})
    seen = []
    for pk, st, m, due in (("a", "sent", "m-a", 100), ("b", "held", "m-b", 222), ("a", "x", "", 3)):
        answer = both(pair, "UpdateItem", update_args(table, pk, st, m, due))
        assert answer.status == 200, answer.body
        got = answer.json["Attributes"]
        merchant = got["emails"]["M"]["merchant"]["M"]
        assert got["pk"] == {"S": pk}
        assert merchant["status"] == {"S": st} and merchant["message_id"] == {"S": m}
        assert got["emails"]["M"]["customer"]["M"]["status"] == {"S": st + "-c"}
        assert got["due_at"] == {"N": str(due)} and got["outbox"] == {"S": "pending"}
        assert got["lines"]["L"][1]["M"]["qty"] == {"N": str(due % 7)}
        assert len(got["lines"]["L"]) == 2 and "lease" not in got
        seen.append(merchant["attempts"])
    assert seen == [{"N": "1"}, {"N": "1"}, {"N": "2"}]
    untouched = both(pair, "GetItem", {"TableName": table, "Key": {"pk": {"S": "c"}}}).json
    assert untouched["Item"] == {"pk": {"S": "c"}, **EVERY_TYPE}


def test_update_expression_creating_an_item_twice(pair: dict[str, Raw]) -> None:
    # an absent item is validated twice by moto (once before it is created)
    table = new_table(pair, range_key=True)
    expr = "SET a = if_not_exists(a, :zero) + :inc, l = list_append(if_not_exists(l, :e), :v)"
    for sk, inc in ((1, "5"), (2, "7"), (1, "1")):
        got = both(
            pair,
            "UpdateItem",
            {
                "TableName": table,
                "Key": {"pk": {"S": "p"}, "sk": {"N": str(sk)}},
                "UpdateExpression": expr,
                "ExpressionAttributeValues": {
                    ":zero": {"N": "0"},
                    ":inc": {"N": inc},
                    ":e": {"L": []},
                    ":v": {"L": [{"N": inc}]},
                },
                "ReturnValues": "ALL_NEW",
            },
        ).json["Attributes"]
        assert got["sk"] == {"N": str(sk)}
    items = both(pair, "Scan", {"TableName": table}).json["Items"]
    by_sk = {i["sk"]["N"]: i for i in items}
    assert by_sk["1"]["a"] == {"N": "6"} and by_sk["1"]["l"] == {"L": [{"N": "5"}, {"N": "1"}]}
    assert by_sk["2"]["a"] == {"N": "7"} and by_sk["2"]["l"] == {"L": [{"N": "7"}]}


BAD_UPDATES: list[dict[str, Any]] = [
    {"UpdateExpression": "SET a = "},  # syntax
    {"UpdateExpression": "SET a = :v,"},
    {"UpdateExpression": "SET a = :nope"},  # undefined value
    {"UpdateExpression": "SET #nope = :v"},  # undefined name
    {"UpdateExpression": "SET status = :v"},  # reserved keyword
    {"UpdateExpression": "SET a = :v, a.b = :v"},  # overlapping paths
    {"UpdateExpression": "SET a = :v REMOVE a"},
    {"UpdateExpression": "SET pk = :v"},  # the key
    {"UpdateExpression": "ADD s :v"},  # wrong operand type for ADD on a string
    {"UpdateExpression": "SET m.x.y = :v"},  # invalid document path
    {"UpdateExpression": "SET a = :v SET b = :v"},  # two SET clauses
    {"UpdateExpression": "   "},
    {"UpdateExpression": "SET a = :v", "ConditionExpression": "a = "},
    {"UpdateExpression": "SET a = :v", "ConditionExpression": "a = $x"},  # does not lex
    {"UpdateExpression": "SET a = :v", "ConditionExpression": "(a = :v"},
    {"UpdateExpression": "SET a = :v", "ConditionExpression": "attribute_exists(zz)"},
]


@pytest.mark.parametrize("bad", BAD_UPDATES, ids=[str(b) for b in BAD_UPDATES])
def test_invalid_update_fails_the_same_way_every_time(
    pair: dict[str, Raw], bad: dict[str, Any]
) -> None:
    table = new_table(pair)
    both(pair, "PutItem", {"TableName": table, "Item": {"pk": {"S": "k"}, "s": {"S": "t"}}})
    body = {
        "TableName": table,
        "Key": {"pk": {"S": "k"}},
        "ExpressionAttributeValues": {":v": {"N": "1"}},
        **bad,
    }
    first = both(pair, "UpdateItem", body)
    assert first.status >= 400, first.body  # moto answers some of these with a 500
    again = both(pair, "UpdateItem", body)  # a failed parse is not kept
    assert again.body == first.body
    item = both(pair, "GetItem", {"TableName": table, "Key": {"pk": {"S": "k"}}}).json["Item"]
    assert item == {"pk": {"S": "k"}, "s": {"S": "t"}}


def test_conditional_failure_still_fails(pair: dict[str, Raw]) -> None:
    table = new_table(pair)
    both(pair, "PutItem", {"TableName": table, "Item": {"pk": {"S": "k"}, **EVERY_TYPE}})
    args = update_args(table, "k", "sent", "m", 1)
    args["ExpressionAttributeValues"][":bounced"] = {"S": "queued"}  # the current status
    args["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
    failed = both(pair, "UpdateItem", args)
    assert failed.status == 400
    assert failed.json["__type"].endswith("ConditionalCheckFailedException")
    assert failed.json["Item"] == {"pk": {"S": "k"}, **EVERY_TYPE}
    missing = both(pair, "UpdateItem", update_args(table, "absent", "sent", "m", 1))
    assert missing.json["__type"].endswith("ConditionalCheckFailedException")
    assert both(pair, "GetItem", {"TableName": table, "Key": {"pk": {"S": "absent"}}}).json == {}


def test_transaction_with_the_same_update_cancelled_then_applied(pair: dict[str, Raw]) -> None:
    table = new_table(pair)
    both(pair, "PutItem", {"TableName": table, "Item": {"pk": {"S": "old"}, "n": {"N": "1"}}})

    def tx(pk: str, cap: str) -> Answer:
        upd = [
            {
                "Update": {
                    "TableName": table,
                    "Key": {"pk": {"S": f"c{i}"}},
                    "UpdateExpression": "ADD #n :one SET exp = :exp",
                    "ConditionExpression": "attribute_not_exists(#n) OR #n < :cap",
                    "ExpressionAttributeNames": {"#n": "n"},
                    "ExpressionAttributeValues": {
                        ":one": {"N": "1"},
                        ":cap": {"N": cap},
                        ":exp": {"N": str(i)},
                    },
                }
            }
            for i in range(4)
        ]
        put = {
            "Put": {
                "TableName": table,
                "Item": {"pk": {"S": pk}, **EVERY_TYPE},
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }
        return both(
            pair,
            "TransactWriteItems",
            {"TransactItems": [put, *upd], "ReturnValuesOnConditionCheckFailure": "ALL_OLD"},
        )

    assert tx("new1", "5").status == 200
    assert tx("new2", "5").status == 200
    cancelled = tx("old", "5")  # the Put's condition fails
    assert cancelled.status == 400 and "TransactionCanceled" in cancelled.json["__type"]
    capped = tx("new3", "2")  # the counters are at 2: every Update's condition fails
    assert capped.status == 400
    items = both(pair, "Scan", {"TableName": table, "ConsistentRead": True}).json["Items"]
    counters = {i["pk"]["S"]: i["n"]["N"] for i in items if i["pk"]["S"].startswith("c")}
    assert counters == {f"c{i}": "2" for i in range(4)}
    assert {i["pk"]["S"] for i in items} == {"old", "new1", "new2", "c0", "c1", "c2", "c3"}


def test_batch_get_and_query_answers_are_identical(pair: dict[str, Raw]) -> None:
    tables = [new_table(pair) for _ in range(3)]
    for t in tables:
        for i in range(4):
            item = {"pk": {"S": f"k{i}"}, "i": {"N": str(i)}, **EVERY_TYPE}
            both(pair, "PutItem", {"TableName": t, "Item": item})
    got = both(
        pair,
        "BatchGetItem",
        {
            "RequestItems": {
                t: {"Keys": [{"pk": {"S": f"k{i}"}} for i in range(5)]}  # k4 is absent
                for t in tables
            }
        },
    ).json
    for t in tables:
        assert sorted(i["i"]["N"] for i in got["Responses"][t]) == ["0", "1", "2", "3"]
        assert all(
            {k: v for k, v in i.items() if k not in ("pk", "i")} == EVERY_TYPE
            for i in got["Responses"][t]
        )
    projected = both(
        pair,
        "BatchGetItem",
        {
            "RequestItems": {
                tables[0]: {
                    "Keys": [{"pk": {"S": "k1"}}],
                    "ProjectionExpression": "#s.S, emails.merchant, lines[0]",
                    "ExpressionAttributeNames": {"#s": "S"},
                }
            }
        },
    ).json
    assert projected["Responses"][tables[0]][0]["S"] == {"M": {"S": {"S": "x"}}}
    both(
        pair,
        "Query",
        {
            "TableName": tables[1],
            "KeyConditionExpression": "pk = :k",
            "ExpressionAttributeValues": {":k": {"S": "k2"}},
        },
    )
    both(pair, "Scan", {"TableName": tables[2], "Limit": 2})
    for low in ("1", "3"):  # the same filter, other values
        scanned = both(
            pair,
            "Scan",
            {
                "TableName": tables[2],
                "FilterExpression": "i >= :low AND #s.#s = :x",
                "ExpressionAttributeNames": {"#s": "S"},
                "ExpressionAttributeValues": {":low": {"N": low}, ":x": {"S": "x"}},
            },
        ).json
        assert sorted(i["i"]["N"] for i in scanned["Items"]) == [str(n) for n in range(int(low), 4)]


def test_two_services_and_two_regions_on_one_host(pair: dict[str, Raw]) -> None:
    table = new_table(pair)
    sender = f"{uuid.uuid4().hex[:8]}@fast.example.com"
    for raw in pair.values():
        for _ in range(2):  # the second time from the remembered backend
            listed = raw.ddb("ListTables", {}).json["TableNames"]
            assert table in listed
            assert table not in raw.ddb("ListTables", {}, region="eu-west-1").json["TableNames"]
        made = raw.sesv2("/v2/email/identities", {"EmailIdentity": sender})
        assert made.status == 200, made.body
        for _ in range(2):
            ids = raw.sesv2("/v2/email/list-identities", {}).json["EmailIdentities"]
            assert sender in {i["IdentityName"] for i in ids}
            other = raw.sesv2("/v2/email/list-identities", {}, region="eu-west-1").json
            assert sender not in {i["IdentityName"] for i in other["EmailIdentities"]}
        sent = raw.sesv2(
            "/v2/email/outbound-emails",
            {
                "FromEmailAddress": sender,
                "Destination": {"ToAddresses": ["someone@example.test"]},
                "Content": {
                    "Simple": {
                        "Subject": {"Data": "s"},
                        "Body": {"Html": {"Data": "<p>h</p>"}, "Text": {"Data": "t"}},
                    }
                },
            },
        )
        assert sent.status == 200 and sent.json["MessageId"], sent.body
        # a third service (query protocol, SNS) on the same connection
        status, body, _ = raw.request(
            "POST",
            "/",
            b"Action=ListTopics&Version=2010-03-31",
            {
                "Content-Type": "application/x-www-form-urlencoded",
                "Authorization": _auth("sns"),
            },
        )
        assert status == 200 and b"ListTopicsResponse" in body
    # the same unknown-operation error from both
    assert both(pair, "NoSuchOperation", {}).status >= 400


def test_moto_api_still_answers(servers: dict[str, MotoServer], pair: dict[str, Raw]) -> None:
    for name, raw in pair.items():
        status, body, _ = raw.request("GET", "/moto-api/data.json", b"", {})
        assert status == 200 and "dynamodb" in json.loads(body), name
        status, body, _ = raw.request("GET", "/moto-api/", b"", {})
        assert status == 200, name
    # a reset empties both (other tests' tables go too: this test runs last in the module)
    for raw in pair.values():
        status, _, _ = raw.request("POST", "/moto-api/reset", b"", {})
        assert status == 200
    assert both(pair, "ListTables", {}).json == {"TableNames": []}
