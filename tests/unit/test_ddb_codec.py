"""chalicelib.ddb's codec: its own fast path writes exactly what boto3's TypeSerializer does,
and refuses what it refuses."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from boto3.dynamodb.types import TypeSerializer

from chalicelib import ddb

ITEM: dict[str, Any] = {
    "pk": "order#X",
    "n": 5,
    "neg": -3,
    "zero": 0,
    "yes": True,
    "no": False,
    "none": None,
    "empty": "",
    "nested": {"a": [1, "x", {"y": None, "z": [True]}], "t": (1, 2), "m": {}},
    "list": [],
    "big": 10**37,
    "decimal": Decimal("1.5"),
    "strings": {"a", "b"},
    "numbers": {1, 2},
    "binary": b"xy",
}


def test_dump_is_what_type_serializer_writes() -> None:
    ser = TypeSerializer()
    assert ddb.dump(ITEM) == {k: ser.serialize(v) for k, v in ITEM.items()}


@pytest.mark.parametrize("bad", [1.5, 10**40, float("nan"), object()], ids=repr)
def test_what_type_serializer_refuses_is_refused(bad: Any) -> None:
    with pytest.raises(Exception) as ours:
        ddb.dump({"a": bad})
    with pytest.raises(Exception) as theirs:
        TypeSerializer().serialize(bad)
    assert type(ours.value) is type(theirs.value)


def test_a_round_trip_gives_plain_values_back() -> None:
    item = {k: v for k, v in ITEM.items() if k not in ("decimal", "binary")}
    back = ddb.load(ddb.dump(item))
    assert back["nested"] == {"a": [1, "x", {"y": None, "z": [True]}], "t": [1, 2], "m": {}}
    assert back["big"] == 10**37 and back["strings"] == ["a", "b"] and back["none"] is None
