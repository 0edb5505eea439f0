"""moto's server with each request handled atomically, over persistent connections.

`python -m moto.server` handles requests on many threads without a lock around the backend
calls, so two concurrent conditional writes to the same DynamoDB item can both succeed —
something real DynamoDB never allows (conditional writes on one item are serialised). Our
idempotency and outbox leases rely on that guarantee, so the local stack and the tests run
moto behind one lock: still threaded for connections, one backend call at a time.

Connections are kept alive (HTTP/1.1), as real AWS endpoints do. werkzeug's development
server answers every response with `Connection: close` (it cannot drain a request body it
did not read before the next request line), so every SDK call would pay a new TCP
connection — about half the client-side CPU of a DynamoDB call. Here the wrapper app reads
each request body completely before moto sees it (`wsgi.input` becomes a BytesIO), and
`KeepAliveHandler` writes the whole buffered answer with an exact Content-Length, then
waits for the next request on the same connection. A client that asks for
`Connection: close` (or speaks HTTP/1.0) still gets its connection closed.

TransactWriteItems rolls back item by item. moto's `transact_write_items` backs up every
table it touches with `copy.deepcopy(table)` - the whole table, once per transaction item -
so a transaction cost more the bigger the table (and every copy stayed in moto's instance
tracker, growing /moto-api/data.json until a reset); real DynamoDB's does not. Inside this
app's lock (no other backend call can run) `transact_write_items` instead snapshots only the
items the transaction names (a deep copy of each, or "absent") and the touched tables'
stream records, then runs moto's own code with its table backups made free
(`Table.__deepcopy__` returns the table itself while it runs; at any other time it is a
normal deep copy, so CreateBackup etc. are unchanged). If moto raises anything
(TransactionCanceledException, a validation error, ...) every snapshot is put back before
the error goes out. The guarantee is real DynamoDB's: a transaction is applied all or
nothing, and no other request sees it half done (the lock). Outside this app (moto used
in-process elsewhere) moto runs as shipped. bench/moto_transact.py, 200 order-sized items,
a Put + an Update: p50 60-85 ms before (p95 200-280 ms, garbage collection), 13 ms now;
cancelled by a failing ConditionCheck: 100-130 ms before, 14 ms now; either way now the
same at 20 or 200 items.

Fast paths. Inside this app's lock (and only there: moto used in-process elsewhere runs as
shipped) a few of moto's per-request costs that depend only on something fixed are paid
once instead of on every request; each is a small function below, documented where it is
installed, and each leaves every answer, error and side effect as moto's own code gives:

- the backend per host (`get_backend_for_host` listed moto's package directory, ~200
  isdir calls, on every request);
- UpdateExpressions parsed once per string; the Validator's copy of the tree comes from a
  pickle (`pickle.loads` 0.08 ms against `copy.deepcopy` 0.53 ms for the app's 9-action
  expression, parsing it 0.56 ms, twice per UpdateItem);
- the Validator's ten passes over that tree build their processing map once per pass, not
  twice per node;
- ConditionExpressions lexed once per string (the tokens are immutable);
- the handler class's method names listed once per class (`inspect.getmembers`);
- DynamoDB AttributeValues serialised without asking for the nine members they do not
  have (each through up to 12 alias spellings) - most of what a read answer cost.

They are checked against moto 5.2.5 (FAST_MOTO_VERSIONS): with any other moto version, or
with DEVSTACK_MOTO_FAST=0 (what bench/moto_ops.py uses as the "before"), none of them is
installed. tests/unit/test_moto_fast.py sends the same raw requests to a server with and
one without them and compares the answers byte for byte. bench/moto_ops.py, client round
trips on loopback, medians of 3 alternating runs (60 rounds each), without -> with:
UpdateItem (6 SETs, ADD, REMOVE, condition) p50 16.5 -> 10.8 ms, p95 25.2 -> 15.0;
TransactWriteItems (Put + 4 Updates) p50 20.3 -> 14.1, p95 33.0 -> 23.4; BatchGetItem (10
keys, 3 tables, 4 order items) p50 27.6 -> 11.5, p95 45.8 -> 15.4; SESv2 SendEmail (6 kB)
p50 7.1 -> 5.1, p95 11.6 -> 9.1.

    python -m devstack.moto_server --port 4566
"""

from __future__ import annotations

import argparse
import copy
import io
import os
import pickle
import sys
import threading
import traceback
from collections import deque
from collections.abc import Callable
from typing import Any

from werkzeug.serving import WSGIRequestHandler

from devstack.servers import serve_forever_until_interrupted

BODY_READ = "devstack.body_read"  # environ flag: the request body has been consumed


def read_body(environ: dict[str, Any]) -> bytes:
    """Read the whole request body (Content-Length or chunked) and put it back as a BytesIO,
    so the connection's stream is at the next request whatever the app reads."""
    stream = environ["wsgi.input"]
    if environ.get("wsgi.input_terminated"):  # chunked: werkzeug's DechunkedInput ends at EOF
        body = stream.read()
    else:
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        parts, left = [], max(length, 0)
        while left:
            chunk = stream.read(left)
            if not chunk:
                break
            parts.append(chunk)
            left -= len(chunk)
        body = b"".join(parts)
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    environ.pop("wsgi.input_terminated", None)
    environ[BODY_READ] = True
    return body


# Per thread: `exclusive` while this app's lock is held (the item-level rollback applies),
# `share_tables` while moto's transact_write_items runs (its table backups are free).
_state = threading.local()


def _exclusive() -> bool:
    return bool(getattr(_state, "exclusive", False))


class _Snapshot:
    """The items a transaction names, as they were before it ran, and the touched tables'
    stream records.

    moto's Table keeps its items in `table.items`: {hash: Item} for a hash-key table,
    {hash: {range: Item}} for a hash+range table (GSIs, LSIs, scans and ItemCount are all
    computed from it on demand). A table with a stream appends a record per write to
    `table.stream_shard.items`.
    """

    def __init__(self, backend: Any, transact_items: list[dict[str, Any]]) -> None:
        # (id(table), hash, range) -> (table, hash, range, Item copy or None, hash was stored)
        self.items: dict[tuple[int, Any, Any], tuple[Any, Any, Any, Any, bool]] = {}
        self.streams: dict[int, tuple[Any, list[Any], int]] = {}  # id(shard) -> (shard, list, n)
        for entry in transact_items:
            for op_type, op in entry.items() if isinstance(entry, dict) else ():
                if isinstance(op, dict):
                    self._add(backend, op_type, op)

    def _add(self, backend: Any, op_type: str, op: dict[str, Any]) -> None:
        try:
            table = backend.get_table(op.get("TableName"))
            # the same key moto computes for the op; if it cannot, moto rejects the op first
            h, r = backend.get_keys_value(table, op["Item"] if op_type == "Put" else op["Key"])
        except Exception:  # noqa: BLE001 - moto fails this op before writing anything
            return
        ident = (id(table), h, r)
        if ident not in self.items:
            if table.has_range_key:
                stored = h in table.items
                current = table.items[h].get(r) if stored else None
            else:
                stored = False
                current = table.items.get(h)
            before = None if current is None else copy.deepcopy(current)
            self.items[ident] = (table, h, r, before, stored)
        shard = table.stream_shard
        if shard is not None and id(shard) not in self.streams:
            self.streams[id(shard)] = (shard, shard.items, len(shard.items))

    def restore(self) -> None:
        for table, h, r, before, stored in self.items.values():
            if not table.has_range_key:
                if before is None:
                    table.items.pop(h, None)
                else:
                    table.items[h] = before
            elif before is not None:
                table.items[h][r] = before
            elif h in table.items:
                table.items[h].pop(r, None)
                if not stored and not table.items[h]:
                    del table.items[h]
        for shard, records, n in self.streams.values():
            del records[n:]
            shard.items = records


def install_item_rollback() -> None:
    """Make moto's TransactWriteItems roll back item by item inside this app's lock (see
    the module docstring). Idempotent; outside the lock moto runs as shipped."""
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table

    if getattr(DynamoDBBackend.transact_write_items, "_devstack_item_rollback", False):
        return
    original = DynamoDBBackend.transact_write_items
    previous_deepcopy = Table.__dict__.get("__deepcopy__")

    def table_deepcopy(self: Any, memo: dict[int, Any]) -> Any:
        if getattr(_state, "share_tables", False):
            return self  # moto's transaction backup: the item snapshots replace it
        if previous_deepcopy is not None:
            return previous_deepcopy(self, memo)
        # what copy.deepcopy does for a plain object: a new instance, its __dict__ deep-copied
        new = self.__class__.__new__(self.__class__)
        memo[id(self)] = new
        new.__dict__.update(copy.deepcopy(self.__dict__, memo))
        return new

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        if not _exclusive():
            return original(self, transact_items)
        snapshot = _Snapshot(self, transact_items)
        _state.share_tables = True
        try:
            return original(self, transact_items)
        except BaseException:
            snapshot.restore()
            raise
        finally:
            _state.share_tables = False

    transact_write_items._devstack_item_rollback = True  # type: ignore[attr-defined]
    Table.__deepcopy__ = table_deepcopy  # type: ignore[attr-defined]
    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]


# --------------------------------------------------------------------------------------------
# fast paths (see the module docstring); DEVSTACK_MOTO_FAST=0 turns them all off

FAST_ENV = "DEVSTACK_MOTO_FAST"
# the moto versions whose code the fast paths below were read against: any other version
# runs moto's own code for all of them (and says so on stderr)
FAST_MOTO_VERSIONS = ("5.2.5",)
_CACHE_LIMIT = 2048  # per cache: entries are only added until then, never evicted


def fast_paths_wanted() -> bool:
    """False when DEVSTACK_MOTO_FAST=0 or moto is not a version the fast paths know."""
    if os.environ.get(FAST_ENV, "1") == "0":
        return False
    import moto

    if moto.__version__ not in FAST_MOTO_VERSIONS:
        print(
            f"devstack.moto_server: moto {moto.__version__} is not one of "
            f"{FAST_MOTO_VERSIONS}: fast paths off, moto runs as shipped",
            file=sys.stderr,
            flush=True,
        )
        return False
    return True


def memoise_backend_for_host(dispatcher: Any) -> None:
    """moto's `get_backend_for_host(host)` lists moto's package directory (an isdir per
    entry, ~200) on every request before matching the host against the URL patterns. Its
    answer depends only on the host string (the directory and the patterns do not change
    while the server runs), so a found backend is remembered per host; a host with no
    backend (None) is asked again every time, so moto's own message for it still shows."""
    original = dispatcher.get_backend_for_host
    found: dict[str, Any] = {}

    def get_backend_for_host(host: str | None) -> Any:
        if type(host) is not str:
            return original(host)
        backend = found.get(host)
        if backend is None:
            backend = original(host)
            if backend and len(found) < _CACHE_LIMIT:
                found[host] = backend
        return backend

    dispatcher.get_backend_for_host = get_backend_for_host


def install_update_expression_cache() -> bool:
    """Parse each UpdateExpression once and give the Validator a cheap copy of it.

    An UpdateItem parses its expression twice (the handler, then the backend) and moto's
    Validator deep-copies the parsed tree before rewriting it; a TransactWriteItems does
    that per Update. `UpdateExpressionParser.make` now keeps the tree per expression string
    (with its pickle) and answers the same tree again; the callers only read it
    (`find_clauses`) or hand it to the Validator, whose copy is now `pickle.loads` of the
    kept pickle (what deepcopy does for these plain objects - __reduce_ex__, a new __dict__
    per node, shared references and the parent links kept - at ~1/7 of the cost). A parse
    that fails is not kept: the same expression fails again the same way."""
    from moto.dynamodb.parsing import expressions, validators

    parser: Any = getattr(expressions, "UpdateExpressionParser", None)
    make = None if parser is None else parser.__dict__.get("make")
    init = validators.Validator.__dict__.get("__init__")
    if not isinstance(make, classmethod) or init is None:
        return False
    if getattr(make.__func__, "_devstack_fast", False):
        return True
    make_fn = make.__func__
    trees: dict[str, Any] = {}
    pickles: dict[int, tuple[Any, bytes]] = {}  # id(kept tree) -> (tree, its pickle)

    def fast_make(cls: Any, expression_str: Any) -> Any:
        if cls is not parser or type(expression_str) is not str or not _exclusive():
            return make_fn(cls, expression_str)
        tree = trees.get(expression_str)
        if tree is not None:
            return tree
        tree = make_fn(cls, expression_str)
        if len(trees) < _CACHE_LIMIT:
            try:
                blob = pickle.dumps(tree, pickle.HIGHEST_PROTOCOL)
            except Exception:  # noqa: BLE001 - e.g. too deep to pickle: not kept
                return tree
            trees[expression_str] = tree
            pickles[id(tree)] = (tree, blob)
        return tree

    def fast_init(
        self: Any,
        expression: Any,
        expression_attribute_names: Any,
        expression_attribute_values: Any,
        item: Any,
        table: Any,
    ) -> None:
        kept = pickles.get(id(expression)) if _exclusive() else None
        if kept is None or kept[0] is not expression:
            init(
                self,
                expression,
                expression_attribute_names,
                expression_attribute_values,
                item,
                table,
            )
            return
        # moto's __init__, with the deep copy of the tree made from its pickle
        self.expression_attribute_names = expression_attribute_names
        self.expression_attribute_values = expression_attribute_values
        self.item = item
        self.table = table
        self.processors = self.get_ast_processors()
        self.node_to_validate = pickle.loads(kept[1])  # noqa: S301 - our own pickle

    fast_make._devstack_fast = True  # type: ignore[attr-defined]
    parser.make = classmethod(fast_make)
    validators.Validator.__init__ = fast_init  # type: ignore[method-assign]
    return True


def install_attribute_value_fast_path() -> bool:
    """Serialise DynamoDB's AttributeValues without asking for the nine absent members.

    moto's JSON serialiser writes a structure by asking the value for every member of its
    shape, each through up to 12 alias spellings (ShapeNameAlias, NoAlias, ..., each also
    xform_name'd); an AttributeValue ({"S": ...}, {"M": {...}}, ...) has 10 members, so a
    returned order item costs ~1,500 look-ups - most of BatchGetItem's time. When the value
    is a plain dict with a single key that is a member name no other member's alias
    spellings can reach (worked out once per shape with moto's own alias providers), the
    answer is known: only that member has a value. It is then serialised with moto's own
    `_serialize` (nested M and L come back here); anything else goes through moto's code."""
    from moto.core import serialize as ser

    base = ser.BaseJSONSerializer
    original = base.__dict__.get("_serialize_type_structure")
    picker_cls = getattr(ser, "XFormedAttributePicker", None)
    if original is None or picker_cls is None or not hasattr(ser, "AttributePickerContext"):
        return False
    if getattr(original, "_devstack_fast", False):
        return True
    providers = tuple(ser.DEFAULT_ALIAS_PROVIDERS)
    reachable: dict[tuple[Any, ...], frozenset[str]] = {}

    def lone_members(self: Any, shape: Any) -> frozenset[str]:
        """The member names a one-key dict may use for the fast path, for this shape."""
        members = shape.members
        sig = (self.service_model.service_name, shape.name, tuple(members))
        names = reachable.get(sig)
        if names is None:
            spellings: dict[str, set[str]] = {}
            for member_key, member_shape in members.items():
                member_shape.parent = shape
                context = ser.AttributePickerContext(
                    obj={},
                    key=member_key,
                    shape=member_shape,
                    operation_model=self.operation_model,
                    service_model=self.service_model,
                    key_path="",
                )
                spellings[member_key] = set(self._value_picker.get_possible_keys(context))
            names = frozenset(
                k
                for k in members
                if "." not in k and all(k not in v for o, v in spellings.items() if o != k)
            )
            if len(reachable) < _CACHE_LIMIT:
                reachable[sig] = names
        return names

    def _serialize_type_structure(
        self: Any, serialized: Any, value: Any, shape: Any, key: str
    ) -> None:
        picker = self._value_picker
        if (
            _exclusive()
            and type(value) is dict
            and len(value) == 1
            and shape.name == "AttributeValue"
            and type(picker) is picker_cls
            and not picker.response_transformers
            and tuple(picker.alias_providers) == providers
            and not shape.is_document_type
            and self.service_model.service_name == "dynamodb"
        ):
            ((name, member_value),) = value.items()
            if name in lone_members(self, shape):
                members = shape.members
                for member_shape in members.values():
                    member_shape.parent = shape
                wrapper: Any = self.MAP_TYPE() if key else serialized
                if member_value is not None:
                    self._serialize(wrapper, member_value, members[name], name)
                if key:
                    self._default_serialize(serialized, wrapper, shape, key)
                return
        original(self, serialized, value, shape, key)

    _serialize_type_structure._devstack_fast = True  # type: ignore[attr-defined]
    base._serialize_type_structure = _serialize_type_structure  # type: ignore[method-assign]
    return True


def install_fast_traversal() -> bool:
    """Run the UpdateExpression Validator's ten tree passes without re-deriving, per node,
    what the pass looks for.

    moto's `DepthFirstTraverser.traverse_node_recursively` asks, at every node of the tree,
    `isinstance(node, Node)` (an ABC: a Python-level check), then
    `self.nodes_to_be_processed()` (which rebuilds the pass's `_processing_map()` dict and a
    tuple of it) and `process(node)` (builds it again, then isinstance per entry). For the
    validators moto ships - whose maps are fixed: node classes to bound methods - `traverse`
    now builds the map once per pass and remembers per node class whether it is a Node and
    which entry of the map (the first matching, as `process` picks) handles it; the walk
    itself is moto's: children first, left to right, `pre_processing_of_child` before each
    child, the processed node put back in its parent's children with the old parent. A
    traverser of any other class (or one overriding the walk) runs moto's code."""
    from moto.dynamodb.parsing import ast_nodes, validators

    base: Any = getattr(ast_nodes, "DepthFirstTraverser", None)
    node_cls: Any = getattr(ast_nodes, "Node", None)
    original = None if base is None else base.__dict__.get("traverse")
    if original is None or node_cls is None or not hasattr(base, "traverse_node_recursively"):
        return False
    if getattr(original, "_devstack_fast", False):
        return True
    walk_parts = ("traverse_node_recursively", "nodes_to_be_processed", "process", "traverse")
    known = {
        cls
        for cls in vars(validators).values()
        if isinstance(cls, type)
        and issubclass(cls, base)
        and cls.__module__ == validators.__name__
        and not any(part in cls.__dict__ for part in walk_parts)
    }
    no_pre = base.__dict__["pre_processing_of_child"]
    is_node: dict[type, bool] = {}
    handler_index: dict[tuple[type, type], int] = {}  # (pass, node class) -> map entry or -1

    def fast_traverse(self: Any, node: Any) -> Any:
        kind = type(self)
        if kind not in known or not _exclusive():
            return original(self, node)
        entries = tuple(self._processing_map().items())
        classes = tuple(c for c, _ in entries)
        pre = None if kind.pre_processing_of_child is no_pre else self.pre_processing_of_child

        def handler(node_type: type, node: Any) -> int:
            key = (kind, node_type)
            k = handler_index.get(key)
            if k is None:
                k = -1
                if isinstance(node, classes):
                    k = next(i for i, c in enumerate(classes) if isinstance(node, c))
                if len(handler_index) < _CACHE_LIMIT:
                    handler_index[key] = k
            return k

        def visit(node: Any, child_id: int = -1) -> Any:
            node_type = type(node)
            known_node = is_node.get(node_type)
            if known_node is None:
                known_node = isinstance(node, node_cls)
                if len(is_node) < _CACHE_LIMIT:
                    is_node[node_type] = known_node
            if known_node:
                parent_node = node.parent
                if node.children is not None:
                    for i, child_node in enumerate(node.children):
                        if pre is not None:
                            pre(node, i)
                        visit(child_node, i)
                k = handler(node_type, node)
                if k >= 0:
                    node = entries[k][1](node)
                    node.parent = parent_node
                    if parent_node:
                        parent_node.children[child_id] = node
            return node

        return visit(node)

    fast_traverse._devstack_fast = True  # type: ignore[attr-defined]
    base.traverse = fast_traverse
    return True


def install_method_names_memo() -> bool:
    """moto's `BaseResponse.call_action` lists the handler class's functions
    (`inspect.getmembers`: dir() and a getattr per name, ~200 for DynamoDB) on every request
    to see whether the action is one of them. The answer depends only on the class, and no
    handler class changes while this server runs, so it is listed once per class (a fresh
    list each time, as moto's function returns)."""
    from moto.core import responses

    original = getattr(responses, "method_names_from_class", None)
    if original is None or not callable(original):
        return False
    if getattr(original, "_devstack_fast", False):
        return True
    listed: dict[type, list[str]] = {}

    def method_names_from_class(clazz: Any) -> list[str]:
        if not _exclusive() or not isinstance(clazz, type):
            return list(original(clazz))
        names = listed.get(clazz)
        if names is None:
            names = original(clazz)
            if len(listed) < _CACHE_LIMIT:
                listed[clazz] = names
        return list(names)

    method_names_from_class._devstack_fast = True  # type: ignore[attr-defined]
    responses.method_names_from_class = method_names_from_class
    return True


def install_condition_lexer_cache() -> bool:
    """Lex each ConditionExpression once. moto's `ConditionExpressionParser` splits the
    expression into tokens with six regexes per token on every parse (an UpdateItem parses
    its condition twice, a transaction once more per item); the tokens (immutable
    namedtuples whose `children` lists moto's parser never changes) depend only on the
    string, so the parser now gets a new deque of the tokens lexed the first time. An
    expression that does not lex raises again, every time."""
    from moto.dynamodb import comparisons

    parser: Any = getattr(comparisons, "ConditionExpressionParser", None)
    original = None if parser is None else parser.__dict__.get("_lex_condition_expression")
    if original is None:
        return False
    if getattr(original, "_devstack_fast", False):
        return True
    lexed: dict[str, tuple[Any, ...]] = {}

    def _lex_condition_expression(self: Any) -> Any:
        expression = self.condition_expression
        if type(self) is not parser or type(expression) is not str or not _exclusive():
            return original(self)
        tokens = lexed.get(expression)
        if tokens is None:
            nodes = original(self)
            if len(lexed) < _CACHE_LIMIT:
                lexed[expression] = tuple(nodes)
            return nodes
        return deque(tokens)

    _lex_condition_expression._devstack_fast = True  # type: ignore[attr-defined]
    parser._lex_condition_expression = _lex_condition_expression
    return True


def install_fast_paths(dispatcher: Any) -> list[str]:
    """Install every fast path this moto allows; the names of those installed."""
    if not fast_paths_wanted():
        return []
    memoise_backend_for_host(dispatcher)
    installed = ["backend_for_host"]
    if install_update_expression_cache():
        installed.append("update_expression_cache")
    if install_attribute_value_fast_path():
        installed.append("attribute_value")
    if install_fast_traversal():
        installed.append("traversal")
    if install_method_names_memo():
        installed.append("method_names")
    if install_condition_lexer_cache():
        installed.append("condition_lexer")
    return installed


def make_app() -> Any:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    install_item_rollback()
    inner = DomainDispatcherApplication(create_backend_app)
    install_fast_paths(inner)
    lock = threading.Lock()

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        read_body(environ)  # outside the lock: a slow upload does not stall other requests
        with lock:
            _state.exclusive = True
            try:
                # materialise the body inside the lock: the backend call happens while iterating
                return list(inner(environ, start_response))
            finally:
                _state.exclusive = False

    return app


_NO_BODY = {204, 304}
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length"}


class KeepAliveHandler(WSGIRequestHandler):
    """werkzeug's request handler without the forced `Connection: close`.

    The answer is buffered and sent with an exact Content-Length in one write. The
    connection stays open unless the client asked to close it, the app did not read the
    request body (the stream would not be at the next request line) or the app failed.
    """

    protocol_version = "HTTP/1.1"
    _headers_buffer: list[bytes]  # http.server's, not in its stubs

    def run_wsgi(self) -> None:
        if self.headers.get("Expect", "").lower().strip(" \t") == "100-continue":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        self.environ = environ = self.make_environ()
        started: list[Any] = []

        chunks: list[bytes] = []

        def start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Callable[[bytes], None]:
            if started and not exc_info:
                raise AssertionError("Headers already set")
            started[:] = [status, headers]
            return chunks.append  # the legacy write(): buffered too

        try:
            result = self.server.app(environ, start_response)
            try:
                chunks.extend(result)
            finally:
                if hasattr(result, "close"):
                    result.close()
            if not started:
                raise RuntimeError("the app returned without start_response")
        except (ConnectionError, TimeoutError) as e:
            self.connection_dropped(e, environ)
            self.close_connection = True
            return
        except Exception:  # noqa: BLE001 - answer 500 and log, like werkzeug does
            self.server.log("error", f"Error on request:\n{traceback.format_exc()}")
            started[:] = ["500 Internal Server Error", [("Content-Type", "text/plain")]]
            chunks = [b"Internal Server Error"]
            self.close_connection = True
        if not environ.get(BODY_READ):
            self.close_connection = True
        status, headers = started
        code_str, _, msg = status.partition(" ")
        code = int(code_str)
        body = b"".join(chunks)
        head = environ["REQUEST_METHOD"] == "HEAD" or code in _NO_BODY or 100 <= code < 200
        declared = next((v for k, v in headers if k.lower() == "content-length"), None)
        self.send_response(code, msg)
        for key, value in headers:
            if key.lower() not in _HOP_BY_HOP:
                self.send_header(key, value)
        if head:
            # a HEAD answer may declare the GET's length (S3 HeadObject does); no body follows
            if declared is not None and code not in _NO_BODY:
                self.send_header("Content-Length", declared)
            body = b""
        else:
            self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        # one write for the headers (buffered by http.server) and the body: two small writes
        # could wait on Nagle + the client's delayed ACK
        self._headers_buffer.append(b"\r\n")
        self.wfile.write(b"".join(self._headers_buffer) + body)
        self._headers_buffer = []


def serve(host: str, port: int) -> None:
    """Serve moto on host:port until interrupted (threaded, persistent connections)."""
    from werkzeug.serving import make_server

    server = make_server(host, port, make_app(), threaded=True, request_handler=KeepAliveHandler)
    print(f" * moto on http://{host}:{server.server_port}", file=sys.stderr, flush=True)
    serve_forever_until_interrupted(server)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("-H", "--host", default="127.0.0.1")
    p.add_argument("-p", "--port", type=int, default=4566)
    a = p.parse_args()
    serve(a.host, a.port)


if __name__ == "__main__":
    main()
