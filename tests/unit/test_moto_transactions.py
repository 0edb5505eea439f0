"""The local moto server's TransactWriteItems is all or nothing, rolled back item by item.

devstack.moto_server replaces moto's whole-table backup (a deep copy of every touched table,
once per transaction item) with a snapshot of the items the transaction names. These tests
run real transactions over HTTP against the shared moto server (a child process) and check
that a cancelled or rejected transaction leaves every item, index and stream exactly as it
was; the last ones run the same app in this process to count the deep copies it makes.
"""

from __future__ import annotations

import copy
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from devstack import inspect
from tests.servers import MotoServer

GSI = "by_status"


def _create(client: Any, name: str, range_key: bool) -> None:
    schema = [{"AttributeName": "pk", "KeyType": "HASH"}]
    attrs = [
        {"AttributeName": "pk", "AttributeType": "S"},
        {"AttributeName": "status", "AttributeType": "S"},
    ]
    if range_key:
        schema.append({"AttributeName": "sk", "KeyType": "RANGE"})
        attrs.append({"AttributeName": "sk", "AttributeType": "S"})
    client.create_table(
        TableName=name,
        KeySchema=schema,
        AttributeDefinitions=attrs,
        BillingMode="PAY_PER_REQUEST",
        GlobalSecondaryIndexes=[
            {
                "IndexName": GSI,
                "KeySchema": [{"AttributeName": "status", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )


class Table:
    """A fresh table (hash-only or hash+range) with a GSI on `status` and a stream."""

    def __init__(self, client: Any, range_key: bool) -> None:
        self.client = client
        self.range_key = range_key
        self.name = f"tx-{'hr' if range_key else 'h'}-{uuid.uuid4().hex[:8]}"
        _create(client, self.name, range_key)

    def key(self, pk: str) -> dict[str, Any]:
        k = {"pk": {"S": pk}}
        if self.range_key:
            k["sk"] = {"S": "v1"}
        return k

    def item(self, pk: str, **attrs: Any) -> dict[str, Any]:
        return {**self.key(pk), **attrs}

    def get(self, pk: str) -> dict[str, Any] | None:
        got = self.client.get_item(TableName=self.name, Key=self.key(pk), ConsistentRead=True)
        item: dict[str, Any] | None = got.get("Item")
        return item

    def scan(self) -> list[dict[str, Any]]:
        items = self.client.scan(TableName=self.name, ConsistentRead=True)["Items"]
        return sorted(items, key=lambda i: i["pk"]["S"])

    def by_status(self, status: str) -> list[str]:
        got = self.client.query(
            TableName=self.name,
            IndexName=GSI,
            KeyConditionExpression="#s = :s",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":s": {"S": status}},
        )
        return sorted(i["pk"]["S"] for i in got["Items"])

    def count(self) -> int:
        return int(self.client.describe_table(TableName=self.name)["Table"]["ItemCount"])

    def stream_records(self, streams: Any) -> list[dict[str, Any]]:
        arn = self.client.describe_table(TableName=self.name)["Table"]["LatestStreamArn"]
        shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]
        it = streams.get_shard_iterator(
            StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        records: list[dict[str, Any]] = streams.get_records(ShardIterator=it)["Records"]
        return records

    def state(self) -> dict[str, Any]:
        return {"items": self.scan(), "count": self.count(), "paid": self.by_status("paid")}


EXISTING: dict[str, Any] = {
    "status": {"S": "paid"},
    "n": {"N": "5"},
    "emails": {
        "M": {
            "merchant": {"M": {"s": {"S": "sent"}, "id": {"S": "m-1"}}},
            "customer": {"M": {"s": {"S": "queued"}}},
        }
    },
    "tags": {"SS": ["a", "b"]},
}


def seed(t: Table) -> None:
    t.client.put_item(TableName=t.name, Item=t.item("a", **EXISTING))
    t.client.put_item(TableName=t.name, Item=t.item("b", status={"S": "paid"}))


def writes(t: Table) -> list[dict[str, Any]]:
    """A Put of a new item and an Update of an existing one (nested map path, counter)."""
    return [
        {
            "Put": {
                "TableName": t.name,
                "Item": t.item("c", status={"S": "paid"}, n={"N": "1"}),
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        },
        {
            "Update": {
                "TableName": t.name,
                "Key": t.key("a"),
                "UpdateExpression": "SET emails.merchant.#s = :v, #st = :st ADD n :one",
                "ExpressionAttributeNames": {"#s": "s", "#st": "status"},
                "ExpressionAttributeValues": {
                    ":v": {"S": "bounced"},
                    ":st": {"S": "shipped"},
                    ":one": {"N": "1"},
                },
            }
        },
    ]


def failing_check(t: Table) -> dict[str, Any]:
    return {
        "ConditionCheck": {
            "TableName": t.name,
            "Key": t.key("b"),
            "ConditionExpression": "attribute_not_exists(pk)",
        }
    }


def invalid_key_check(t: Table) -> dict[str, Any]:
    """An op moto rejects with a ValidationException (no key attribute) after the writes."""
    return {
        "ConditionCheck": {
            "TableName": t.name,
            "Key": {"nope": {"S": "x"}},
            "ConditionExpression": "attribute_exists(pk)",
        }
    }


@pytest.fixture(scope="module")
def server(moto_server: MotoServer) -> MotoServer:
    return moto_server


@pytest.fixture()
def clients(server: MotoServer) -> tuple[Any, Any]:
    return inspect.client("dynamodb", server.url), inspect.client("dynamodbstreams", server.url)


@pytest.fixture(params=[False, True], ids=["hash", "hash+range"])
def table(request: pytest.FixtureRequest, clients: tuple[Any, Any]) -> Iterator[Table]:
    t = Table(clients[0], range_key=request.param)
    seed(t)
    yield t
    t.client.delete_table(TableName=t.name)


def _codes(e: ClientError) -> list[str]:
    return [r["Code"] for r in e.response.get("CancellationReasons", [])]


@pytest.mark.parametrize("failure", ["condition", "validation"])
def test_failed_transaction_leaves_every_item_as_it_was(
    table: Table, clients: tuple[Any, Any], failure: str
) -> None:
    streams = clients[1]
    before, records = table.state(), table.stream_records(streams)
    a_before = table.get("a")
    assert a_before is not None and a_before["emails"]["M"]["merchant"]["M"]["s"] == {"S": "sent"}
    last = failing_check(table) if failure == "condition" else invalid_key_check(table)
    with pytest.raises(ClientError) as e:
        table.client.transact_write_items(TransactItems=[*writes(table), last])
    if failure == "condition":
        assert e.value.response["Error"]["Code"] == "TransactionCanceledException"
        assert _codes(e.value) == ["None", "None", "ConditionalCheckFailed"]
    else:
        assert e.value.response["Error"]["Code"] == "ValidationException"
    assert table.get("c") is None
    assert table.get("a") == a_before  # nested map, counter, set: all unchanged
    assert table.state() == before
    assert table.stream_records(streams) == records  # no record of the undone writes
    # the same writes without the failing op do apply (the rollback undid real writes)
    table.client.transact_write_items(TransactItems=writes(table))
    a = table.get("a")
    assert a is not None and a["n"] == {"N": "6"}
    assert a["emails"]["M"]["merchant"]["M"]["s"] == {"S": "bounced"}
    assert table.get("c") is not None and table.count() == 3
    assert len(table.stream_records(streams)) == len(records) + 2


def test_successful_transaction_applies_every_item(table: Table) -> None:
    items = [
        *writes(table),
        {"Delete": {"TableName": table.name, "Key": table.key("b")}},
    ]
    table.client.transact_write_items(TransactItems=items)
    a = table.get("a")
    assert a is not None
    assert a["n"] == {"N": "6"} and a["status"] == {"S": "shipped"}
    assert a["emails"]["M"]["merchant"]["M"] == {"s": {"S": "bounced"}, "id": {"S": "m-1"}}
    assert a["emails"]["M"]["customer"] == EXISTING["emails"]["M"]["customer"]
    assert table.get("b") is None
    assert table.get("c") == table.item("c", status={"S": "paid"}, n={"N": "1"})
    assert table.count() == 2
    assert table.by_status("paid") == ["c"] and table.by_status("shipped") == ["a"]


def test_all_old_is_returned_and_nothing_is_written(table: Table) -> None:
    before = table.state()
    put_a = {
        "Put": {
            "TableName": table.name,
            "Item": table.item("a", status={"S": "paid"}),
            "ConditionExpression": "attribute_not_exists(pk)",
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
    }
    with pytest.raises(ClientError) as e:
        table.client.transact_write_items(TransactItems=[writes(table)[0], put_a])
    reasons = e.value.response["CancellationReasons"]
    assert [r["Code"] for r in reasons] == ["None", "ConditionalCheckFailed"]
    assert reasons[1]["Item"] == table.item("a", **EXISTING)
    assert table.state() == before


def test_gsi_query_does_not_see_a_rolled_back_item(table: Table) -> None:
    assert table.by_status("paid") == ["a", "b"]
    with pytest.raises(ClientError):
        table.client.transact_write_items(TransactItems=[*writes(table), failing_check(table)])
    assert table.by_status("paid") == ["a", "b"]  # neither "c" (put) nor "a" moved away
    assert table.by_status("shipped") == []


def test_rejected_duplicate_keys_change_nothing(table: Table) -> None:
    before = table.state()
    again = {
        "Update": {
            "TableName": table.name,
            "Key": table.key("c"),
            "UpdateExpression": "SET x = :x",
            "ExpressionAttributeValues": {":x": {"S": "y"}},
        }
    }
    with pytest.raises(ClientError) as e:
        table.client.transact_write_items(TransactItems=[*writes(table), again])
    assert e.value.response["Error"]["Code"] == "ValidationException"
    assert table.state() == before and table.get("c") is None


# --------------------------------------------------------------- the same app in this process


@pytest.fixture(scope="module")
def local_moto() -> Iterator[str]:
    """devstack.moto_server's app on a free port in this process (so its copies can be
    counted); its tables are deleted afterwards (moto's state is per process)."""
    from werkzeug.serving import make_server

    from devstack.moto_server import KeepAliveHandler, make_app

    class Quiet(KeepAliveHandler):
        def log_request(self, *args: Any, **kwargs: Any) -> None:
            return

    server = make_server("127.0.0.1", 0, make_app(), threaded=True, request_handler=Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture()
def copies(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Counts deep copies made in this process: "table" for a `copy.deepcopy(table)` that
    made a new object, "item" for every Item copied (also inside a table's copy)."""
    from moto.dynamodb.models.dynamo_type import Item
    from moto.dynamodb.models.table import Table as MotoTable

    real, real_item = copy.deepcopy, Item.__deepcopy__
    counts: Counter[str] = Counter()

    def counting(x: Any, memo: Any = None, *rest: Any) -> Any:
        y = real(x, memo, *rest)
        if isinstance(x, MotoTable) and y is not x:
            counts["table"] += 1
        return y

    def counting_item(self: Any, memo: dict[int, Any]) -> Any:
        counts["item"] += 1
        return real_item(self, memo)

    monkeypatch.setattr(copy, "deepcopy", counting)  # moto calls copy.deepcopy(table)
    monkeypatch.setattr(Item, "__deepcopy__", counting_item)
    return counts


def _filled(url: str, size: int) -> Table:
    t = Table(inspect.client("dynamodb", url), range_key=False)
    seed(t)
    for i in range(size):
        t.client.put_item(TableName=t.name, Item=t.item(f"z{i:04d}", **EXISTING))
    return t


def test_transaction_cost_does_not_grow_with_the_table(
    local_moto: str, copies: Counter[str]
) -> None:
    per_size: dict[int, Counter[str]] = {}
    for size in (5, 200):
        t = _filled(local_moto, size)
        try:
            copies.clear()
            with pytest.raises(ClientError):
                t.client.transact_write_items(TransactItems=[*writes(t), failing_check(t)])
            t.client.transact_write_items(TransactItems=writes(t))
            per_size[size] = Counter(copies)
            assert t.count() == size + 3
        finally:
            t.client.delete_table(TableName=t.name)
    # moto as shipped deep-copies the whole table once per transaction item (5 table and
    # over 1,000 item copies here at 200 items); now no table is copied and the item copies
    # (the snapshots, moto's own copy of an updated item) do not depend on the table's size
    assert per_size[200]["table"] == per_size[5]["table"] == 0
    assert per_size[200]["item"] == per_size[5]["item"] <= 2 * 5


def test_table_backups_are_still_full_copies(local_moto: str, copies: Counter[str]) -> None:
    t = _filled(local_moto, 3)
    restored = t.name + "-restored"
    try:
        arn = t.client.create_backup(TableName=t.name, BackupName="before-tx")["BackupDetails"][
            "BackupArn"
        ]
        assert copies["table"] >= 1  # the backup copied the table (outside a transaction)
        t.client.transact_write_items(TransactItems=writes(t))
        t.client.restore_table_from_backup(TargetTableName=restored, BackupArn=arn)
        got = t.client.get_item(TableName=restored, Key=t.key("a"), ConsistentRead=True)
        assert got["Item"] == t.item("a", **EXISTING)  # as it was when backed up
        assert t.count() == 6
        assert int(t.client.describe_table(TableName=restored)["Table"]["ItemCount"]) == 5
    finally:
        t.client.delete_table(TableName=t.name)
        try:
            t.client.delete_table(TableName=restored)
        except ClientError:
            pass
