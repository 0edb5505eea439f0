"""Property-based fuzzing of POST /orders (Hypothesis), in-process through chalice.test.Client.

Over 5,000 generated and mutated requests (counted; the last test asserts the total) go
through the real handler against the real moto server and the local siteverify/DNS servers
(the `client` fixture). For every single answer:

* the status is documented for POST /orders, never 5xx, and the body conforms to
  docs/openapi.yaml (tests/api/test_contract.py's checker: error envelope, codes per status,
  Retry-After where required);
* emails: SES SendEmail calls made while handling that request are counted in-process; a
  request that is not a fresh, real 201 order sends nothing, and a fresh order sends exactly
  two (merchant alert + receipt). A honeypot 201 or an idempotent replay sends none.

After each test the same is checked from moto's side: the mail moto recorded
(`/moto-api/data.json`) is exactly one alert and one receipt per accepted order, and the
orders table holds exactly the accepted orders.

Deterministic (derandomize=True, no example database), deadline=None. Rate limits are raised
for the test (they would otherwise turn most valid orders into 429s), and the honeypot's
random delay is set to zero so a bot-looking body costs no sleep.
"""

from __future__ import annotations

import json
import os
import string
import threading
import unicodedata
from collections import Counter
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from chalicelib.catalog import load_catalog
from chalicelib.orders import US_STATES
from devstack.bootstrap import bootstrap
from tests.api.test_contract import ORDERS, contract_errors
from tests.helpers import JSON

DUMMY_TOKEN = "XXXX.DUMMY.TOKEN.XXXX"
SKUS = [p.sku for p in load_catalog().products]
TOTAL_EXAMPLES = 5_000
EXAMPLES: Counter[str] = Counter()
# max_examples per fuzz test; their sum is the ≥ 5,000 the last test checks
QUOTA = {
    "random_json": 1500,
    "mutated_orders": 1500,
    "raw_bodies": 1100,
    "deep_nesting": 300,
    "idempotency": 400,
    "valid_orders": 200,
}
assert sum(QUOTA.values()) >= TOTAL_EXAMPLES

BASE: dict[str, Any] = {
    "name": "Keyed Shopper",
    "email": "keyed@deliverable.test",
    "phone": "(212) 555-0143",
    "shipping": {"line1": "1 Main St", "city": "New York", "state": "NY", "zip": "10001"},
    "items": [{"sku": "green-machine", "qty": 3}],
    "turnstile_token": DUMMY_TOKEN,
    "website": "",
}

FUZZ = settings(
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=False,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
        HealthCheck.large_base_example,
    ],
)


# --------------------------------------------------------------------------------------------
# Strategies

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=10), inner, max_size=5)
    ),
    max_leaves=20,
)

NASTY_STRINGS = [
    "",
    " ",
    "   \t  ",
    "\x00",
    "Jane\x00Doe",
    "Jane\r\nBcc: victim@example.org",
    "line\nbreak",
    "\x85next-line",
    "\x7fdel",
    "\u2028",
    "\u2029",
    "\u202eevil\u202c",
    "\u2066isolate\u2069",
    "zero\u200bwidth",
    "joiner\u200d\u200c",
    "\ufeffbom",
    "\ud800",
    "lone \udfff low",
    "\U0001f34d\U0001f96c\U0001f955" * 10,
    "مرحبا بالعالم",
    "שלום עולם",
    "e\u0301\u0301\u0301",
    "Z\u0351\u0353\u0355\u0357" * 10,
    "\u0958" * 60,  # NFC expands it: 60 chars in, 120 out
    "\ufdfa" * 40,
    "İstanbul",
    "ǅungla",
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "{{ 7*7 }}{% raw %}",
    "${jndi:ldap://x}",
    "' OR 1=1 --",
    "%s%n%x",
    "\\",
    '"',
    "A" * 100,
    "A" * 101,
    "B" * 4000,
    "Ω" * 61,
]
nasty_strings = st.one_of(
    st.sampled_from(NASTY_STRINGS),
    st.text(max_size=120),
    st.text(st.characters(categories=["Cs", "Cc", "Cf", "Zl", "Zp", "Mn"]), max_size=20),
    st.text(st.characters(min_codepoint=0x10000), max_size=20),
    st.builds(lambda a, b: a + b, st.sampled_from(NASTY_STRINGS), st.text(max_size=20)),
)

# Text a shopper could type: no invisible characters (issue 12: Cf is already outside these
# categories; these are the invisible L and M ones) and no link separators (`.`, `@`, `:`,
# `/` and what NFKC turns into them), so no generated name is a domain or an address.
INVISIBLE_LM = "\u115f\u1160\u3164\uffa0\u034f\u17b4\u17b5\u180e" + "".join(
    [chr(c) for c in range(0xFE00, 0xFE10)] + [chr(c) for c in range(0xE0100, 0xE01F0)]
)
NAME_CHARS = st.characters(
    categories=["L", "M", "N", "Zs", "Pd", "Po"], exclude_characters=INVISIBLE_LM
)
LINK_SEPARATORS = set(".@:/\\\u3002")


def _typeable(s: str) -> bool:
    nfkc = unicodedata.normalize("NFKC", s)
    return bool(s.strip()) and not LINK_SEPARATORS & set(nfkc)


def _has_letter(s: str) -> bool:
    return any(unicodedata.category(c)[0] == "L" for c in s)


safe_text = st.text(NAME_CHARS, min_size=1, max_size=30).filter(_typeable)
name_text = safe_text.filter(_has_letter)  # a name and a city need a letter
address_text = safe_text.filter(
    lambda s: _has_letter(s) or any(unicodedata.category(c) == "Nd" for c in s)
)
local_parts = st.text(string.ascii_lowercase + string.digits + "_+-", min_size=1, max_size=20)
domains = st.sampled_from(
    ["deliverable.test", "DELIVERABLE.test", "deliverable.test", "a-only.test", "aaaa-only.test"]
)
PHONE_FORMATS = ["({a}) {e}-{n}", "{a}-{e}-{n}", "+1 {a} {e} {n}", "1{a}{e}{n}", "{a}.{e}.{n}"]
phones = st.builds(
    lambda f, a, e, n: f.format(a=a, e=e, n=f"{n:04d}"),
    st.sampled_from(PHONE_FORMATS),
    st.integers(200, 999).filter(lambda a: a % 100 != 11),  # no N11 service codes
    st.integers(200, 999),
    st.integers(0, 9999),
)
zips = st.builds(
    lambda z, plus4: f"{z:05d}" + ("" if plus4 is None else f"-{plus4:04d}"),
    st.integers(0, 99999),
    st.none() | st.integers(0, 9999),
)
states = st.builds(
    lambda s, lower, pad: (s.lower() if lower else s).center(len(s) + pad),
    st.sampled_from(sorted(US_STATES)),
    st.booleans(),
    st.integers(0, 2),
)


@st.composite
def item_lists(draw: Any) -> list[dict[str, Any]]:
    skus = draw(st.lists(st.sampled_from(SKUS), min_size=1, max_size=len(SKUS), unique=True))
    qtys = [draw(st.integers(1, 50)) for _ in skus]
    qtys[0] = max(qtys[0], 3)
    return [{"sku": s, "qty": q} for s, q in zip(skus, qtys, strict=True)]


@st.composite
def valid_orders(draw: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": draw(name_text),
        "email": f"{draw(local_parts)}@{draw(domains)}",
        "phone": draw(phones),
        "shipping": {
            "line1": draw(address_text),
            "line2": draw(st.one_of(st.just(""), address_text)),
            "city": draw(name_text.map(lambda s: s[:20]).filter(_has_letter)),
            "state": draw(states),
            "zip": draw(zips),
        },
        "items": draw(item_lists()),
        "turnstile_token": DUMMY_TOKEN,
    }
    if draw(st.booleans()):
        body["website"] = ""
    if draw(st.booleans()):
        del body["shipping"]["line2"]
    return body


TEXT_PATHS = [
    ("name",),
    ("email",),
    ("phone",),
    ("shipping", "line1"),
    ("shipping", "line2"),
    ("shipping", "city"),
    ("shipping", "state"),
    ("shipping", "zip"),
    ("turnstile_token",),
]
TRICKY_EMAILS = [
    "Jane.Doe+juice@deliverable.test",
    "JANE@DELIVERABLE.TEST",
    '"jane doe"@deliverable.test',
    "jane@deliverable.test.",
    "jane..doe@deliverable.test",
    ".jane@deliverable.test",
    "jane@",
    "@deliverable.test",
    "jane",
    "jane@localhost",
    "jane@[127.0.0.1]",
    "ünïcode@deliverable.test",
    "jane@bücher.test",
    "jane@xn--bcher-kva.test",
    "jane@null-mx.test",
    "jane@example.com",
    "jane@throwaway.test",
    "jane@x.throwaway.test",
    "jane@no-mail.test",
    "jane@no-ns.test",
    "jane@servfail.test",
    "jane@nowhere-at-all.test",
    "jane@short-ttl.test",
    "a" * 64 + "@deliverable.test",
    "a" * 65 + "@deliverable.test",
    "j@" + "d" * 63 + ".deliverable.test",
    "j@" + ".".join(["d" * 60] * 4) + ".test",
    "jane@deliverable.test\r\nBcc: x@y.test",
    "jane@deliverable.test\x00",
    "jane\u200b@deliverable.test",
    "jane@deliverable\u2024test",
    "jane@deliverable。test",
]
QTY_EDGES = [0, -1, 1, 50, 51, 2**31, 2**63, 10**30, -(10**30), 1.0, 1.5, 1e308, True, False]
QTY_EDGES += ["3", None, [], {}]


def _paths(body: dict[str, Any]) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = [(k,) for k in body]
    if isinstance(body.get("shipping"), dict):
        out += [("shipping", k) for k in body["shipping"]]
    if isinstance(body.get("items"), list):
        for i, item in enumerate(body["items"]):
            out.append(("items", i))
            if isinstance(item, dict):
                out += [("items", i, k) for k in item]
    return out


def _set(body: dict[str, Any], path: tuple[Any, ...], value: Any) -> None:
    node: Any = body
    for p in path[:-1]:
        if isinstance(node, dict) and p not in node:
            node[p] = {}
        node = node[p]
    if isinstance(node, dict) or (isinstance(node, list) and isinstance(path[-1], int)):
        node[path[-1]] = value


def _drop(body: dict[str, Any], path: tuple[Any, ...]) -> None:
    node: Any = body
    for p in path[:-1]:
        node = node[p]
    del node[path[-1]]


def m_drop(draw: Any, body: dict[str, Any]) -> None:
    paths = _paths(body)
    if paths:
        _drop(body, draw(st.sampled_from(paths)))


def m_wrong_type(draw: Any, body: dict[str, Any]) -> None:
    paths = _paths(body)
    if paths:
        _set(body, draw(st.sampled_from(paths)), draw(json_values))


def m_nasty_text(draw: Any, body: dict[str, Any]) -> None:
    _set(body, draw(st.sampled_from(TEXT_PATHS)), draw(nasty_strings))


def m_extra(draw: Any, body: dict[str, Any]) -> None:
    where = draw(st.sampled_from(["top", "shipping", "item"]))
    key, value = draw(st.text(max_size=12)), draw(json_values)
    if where == "shipping" and isinstance(body.get("shipping"), dict):
        body["shipping"][key] = value
    elif where == "item" and isinstance(body.get("items"), list) and body["items"]:
        item = body["items"][0]
        if isinstance(item, dict):
            item[key] = value
    else:
        body[key] = value


def m_qty(draw: Any, body: dict[str, Any]) -> None:
    items = body.get("items")
    if isinstance(items, list) and items and isinstance(items[0], dict):
        i = draw(st.integers(0, len(items) - 1))
        if isinstance(items[i], dict):
            items[i]["qty"] = draw(st.sampled_from(QTY_EDGES))


def m_items(draw: Any, body: dict[str, Any]) -> None:
    kind = draw(st.sampled_from(["empty", "many", "dup", "unknown", "null", "one", "scalar"]))
    if kind == "empty":
        body["items"] = []
    elif kind == "many":
        n = draw(st.integers(7, 60))
        body["items"] = [{"sku": SKUS[i % len(SKUS)], "qty": 1} for i in range(n)]
    elif kind == "dup":
        body["items"] = [{"sku": "beet-it", "qty": 2}, {"sku": "beet-it", "qty": 2}]
    elif kind == "unknown":
        body["items"] = [{"sku": draw(nasty_strings), "qty": 3}]
    elif kind == "null":
        body["items"] = [None, {"sku": "beet-it", "qty": 3}]
    elif kind == "one":
        body["items"] = [{"sku": "beet-it", "qty": draw(st.integers(1, 2))}]
    else:
        body["items"] = draw(json_scalars)


def m_email(draw: Any, body: dict[str, Any]) -> None:
    body["email"] = draw(st.sampled_from(TRICKY_EMAILS))


def m_phone_zip_state(draw: Any, body: dict[str, Any]) -> None:
    field = draw(st.sampled_from(["phone", "zip", "state"]))
    weird = {
        "phone": ["911", "(011) 555-0143", "+44 20 7946 0958", "212555014３", "+1", "1" * 33],
        "zip": ["1000", "100011", "10001-", "10001-12345", "１０００１", " 10001 "],
        "state": ["ZZ", "New York", "N Y", "ny\u200b", ""],
    }[field]
    value = draw(st.one_of(st.sampled_from(weird), nasty_strings))
    if field == "phone":
        body["phone"] = value
    elif isinstance(body.get("shipping"), dict):
        body["shipping"][field] = value


def m_token(draw: Any, body: dict[str, Any]) -> None:
    body["turnstile_token"] = draw(
        st.sampled_from([None, "", "x", DUMMY_TOKEN + " ", "A" * 2049, "A" * 5000, 12, {}])
    )


def m_honeypot(draw: Any, body: dict[str, Any]) -> None:
    body["website"] = draw(st.sampled_from(["http://spam.example", " ", 1, True, ["x"]]))


MUTATIONS: list[Callable[[Any, dict[str, Any]], None]] = [
    m_drop,
    m_wrong_type,
    m_nasty_text,
    m_nasty_text,
    m_extra,
    m_qty,
    m_items,
    m_email,
    m_phone_zip_state,
    m_token,
    m_honeypot,
]


@st.composite
def mutated_orders(draw: Any) -> dict[str, Any]:
    body = draw(valid_orders())
    for _ in range(draw(st.integers(1, 3))):
        draw(st.sampled_from(MUTATIONS))(draw, body)
    return body


def encode(body: Any, ascii_only: bool) -> bytes:
    """JSON bytes; with ascii_only=False lone surrogates become invalid UTF-8 on purpose."""
    return json.dumps(body, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


CONTENT_TYPES = [
    "application/json",
    "application/json; charset=utf-8",
    "APPLICATION/JSON",
    " application/json ;charset=UTF-8",
    "application/json; charset=latin-1",
    "application/json; charset=utf-16",
    "application/json, text/plain",
    "application/jsonp",
    "application/problem+json",
    "text/json",
    "text/plain",
    "text/html; charset=utf-8",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=xyz",
    "application/octet-stream",
    "",
    ";",
    "application/json\u00e9",
    "*/*",
]


# --------------------------------------------------------------------------------------------
# The harness


class MailCounter:
    """Counts successful SES SendEmail calls made by the app (any thread)."""

    def __init__(self) -> None:
        self.n = 0
        self._lock = threading.Lock()

    def wrap(self, send: Callable[..., str]) -> Callable[..., str]:
        def counting_send(mailer: Any, email: Any) -> str:
            message_id = send(mailer, email)
            with self._lock:
                self.n += 1
            return message_id

        return counting_send


class Fuzz:
    """Sends requests and checks the per-request properties; remembers what was accepted.

    moto answers queries by walking the whole table (O(table size) per call), so a long run
    against one table gets quadratically slower: every RESET_EVERY accepted orders the moto
    state is checked (`settle`) and then reset, starting a new epoch.
    """

    RESET_EVERY = 40

    def __init__(self, client: Any, aws: Any, mail: MailCounter) -> None:
        self.client = client
        self.aws = aws
        self.mail = mail
        self.created: set[str] = set()  # this epoch's real, fresh orders
        self.fake: set[str] = set()  # honeypot order ids (never stored, never mailed)
        self.statuses: Counter[int] = Counter()
        self.epoch = 0
        self.total_orders = 0
        self.mail_at_start = len(aws.sent_mail())

    def begin(self, test: str) -> None:
        """Count one example of `test`; reset moto first if the table has grown."""
        EXAMPLES[test] += 1
        self.maybe_reset()

    def post(self, raw: bytes, headers: dict[str, str]) -> Any:
        before = self.mail.n
        r = self.client.http.post("/orders", headers=headers, body=raw)
        sent = self.mail.n - before
        self.statuses[r.status_code] += 1
        where = f"{r.status_code} {r.body[:300]!r} for {headers} {raw[:300]!r}"
        assert r.status_code < 500, f"5xx: {where}"
        problems = contract_errors(*ORDERS, r)
        assert not problems, f"{problems}: {where}"
        if r.status_code != 201:
            assert sent == 0, f"{sent} emails for a rejected request: {where}"
            return r
        oid = json.loads(r.body)["order_id"]
        replayed = any(
            k.lower() == "idempotent-replayed" and v == "true" for k, v in r.headers.items()
        )
        if sent == 2:
            assert not replayed and oid not in self.created, where
            self.created.add(oid)
            self.total_orders += 1
        elif sent == 0 and replayed:
            assert oid in self.created, f"replayed an unknown order: {where}"
        elif sent == 0:
            assert oid not in self.created, f"honeypot id collides: {where}"
            self.fake.add(oid)
        else:
            raise AssertionError(f"{sent} emails for one order: {where}")
        return r

    def post_json(self, body: Any, key: str | None = None, ascii_only: bool = True) -> Any:
        headers = dict(JSON)
        if key is not None:
            headers["Idempotency-Key"] = key
        return self.post(encode(body, ascii_only), headers)

    def maybe_reset(self) -> None:
        """Between examples: settle and start over once the table has grown."""
        if len(self.created) >= self.RESET_EVERY:
            self.settle()
            self.aws.reset()
            bootstrap(self.aws.url, dict(os.environ))
            self.created.clear()
            self.fake.clear()
            self.mail_at_start = 0
            self.epoch += 1

    def settle(self) -> None:
        """moto's view: one alert + one receipt per accepted order, nothing else; the table
        holds exactly the accepted orders."""
        import boto3

        from chalicelib.store import OrderStore

        mail = self.aws.sent_mail()[self.mail_at_start :]
        per_order: Counter[str] = Counter()
        for m in mail:
            subject = str(m.get("subject", ""))
            ids = [oid for oid in self.created if oid in subject]
            assert len(ids) == 1, f"mail not matching one accepted order: {subject!r}"
            role = "merchant" if subject.startswith("New order") else "customer"
            per_order[f"{ids[0]}:{role}"] += 1
        assert len(mail) == 2 * len(self.created), (len(mail), len(self.created))
        assert all(n == 1 for n in per_order.values()), per_order.most_common(3)
        for oid in self.fake:
            assert not any(oid in str(m.get("subject", "")) for m in mail), oid
        ddb = boto3.client("dynamodb", endpoint_url=self.aws.url, region_name="us-east-1")
        stored = {o["order_id"] for o in OrderStore(ddb, "orders").scan_orders(limit=10**6)}
        assert stored == self.created, (len(stored), len(self.created))

    def summary(self) -> str:
        return (
            f"statuses {dict(sorted(self.statuses.items()))}; "
            f"orders {self.total_orders} in {self.epoch + 1} moto epoch(s)"
        )


@pytest.fixture()
def fuzz(client: Any, aws: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Any:
    from chalicelib import guard
    from chalicelib.mail import Mailer

    # any US address is valid here: a shop profile that delivers everywhere (tests/api/test_shop.py
    # covers the delivery area)
    everywhere = tmp_path / "shop-everywhere.json"
    everywhere.write_text('{"delivery_area": {"states": [], "zip_prefixes": []}}')
    monkeypatch.setenv("SHOP_PROFILE", str(everywhere))
    monkeypatch.setenv("RATE_LIMIT_IP", "1000000/600")
    monkeypatch.setenv("RATE_LIMIT_EMAIL", "1000000/600")
    # the honeypot's believable delay (50-200 ms) would dominate the run: no jitter here
    monkeypatch.setattr(guard, "random", SimpleNamespace(uniform=lambda a, b: 0.0), raising=False)
    counter = MailCounter()
    monkeypatch.setattr(Mailer, "send", counter.wrap(Mailer.send))
    f = Fuzz(client, aws, counter)
    yield f
    f.settle()
    print(f.summary())


# --------------------------------------------------------------------------------------------
# The tests


@settings(FUZZ, max_examples=QUOTA["random_json"])
@given(body=json_values, ascii_only=st.booleans())
def test_random_json(fuzz: Any, body: Any, ascii_only: bool) -> None:
    fuzz.begin("random_json")
    fuzz.post_json(body, ascii_only=ascii_only)


def _with(**changes: Any) -> dict[str, Any]:
    return {**BASE, **changes}


@settings(FUZZ, max_examples=QUOTA["mutated_orders"])
@given(body=mutated_orders(), ascii_only=st.booleans())
# lone surrogates, JSON-escaped so the body is valid UTF-8 (found by this test: each gave a 5xx)
@example(body=_with(name="\ud800"), ascii_only=True)
@example(body=_with(turnstile_token="\ud800"), ascii_only=True)
@example(body=_with(zz_extra="\udfff"), ascii_only=True)
@example(body=_with(shipping={**BASE["shipping"], "line2": "\ud83c"}), ascii_only=True)
def test_mutated_orders(fuzz: Any, body: dict[str, Any], ascii_only: bool) -> None:
    fuzz.begin("mutated_orders")
    fuzz.post_json(body, ascii_only=ascii_only)


@st.composite
def raw_bodies(draw: Any) -> tuple[bytes, str]:
    ctype = draw(st.one_of(st.sampled_from(CONTENT_TYPES), st.text(max_size=40)))
    kind = draw(
        st.sampled_from(["encoded", "bom", "bytes", "truncated", "padded", "dupkeys", "form"])
    )
    order = draw(st.one_of(valid_orders(), mutated_orders()))
    text = json.dumps(order, ensure_ascii=draw(st.booleans()))
    if kind == "encoded":
        codec = draw(
            st.sampled_from(["utf-8", "latin-1", "utf-16", "utf-16-le", "utf-32", "cp1252"])
        )
        raw = text.encode(codec, "replace")
    elif kind == "bom":
        bom = draw(st.sampled_from([b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff", b"\x00"]))
        raw = bom + text.encode("utf-8", "surrogatepass")
    elif kind == "bytes":
        raw = draw(st.binary(max_size=300))
    elif kind == "truncated":
        data = text.encode("utf-8", "surrogatepass")
        raw = data[: draw(st.integers(0, max(0, len(data) - 1)))]
    elif kind == "padded":
        ws = draw(st.sampled_from([" ", "\n", "\t", "\r\n", "\u00a0", "\u3000", "\x0b"]))
        raw = (ws * draw(st.integers(1, 20000)) + text).encode("utf-8", "surrogatepass")
    elif kind == "dupkeys":
        raw = (text[:-1] + ', "name": ' + json.dumps(draw(json_values)) + "}").encode(
            "utf-8", "surrogatepass"
        )
    else:
        raw = "&".join(f"{k}={v}" for k, v in order.items()).encode("utf-8", "surrogatepass")
    return raw, ctype


@settings(FUZZ, max_examples=QUOTA["raw_bodies"])
@given(case=raw_bodies())
def test_raw_bodies_content_types_and_encodings(fuzz: Any, case: tuple[bytes, str]) -> None:
    fuzz.begin("raw_bodies")
    raw, ctype = case
    headers = {"Content-Type": ctype} if ctype else {}
    fuzz.post(raw, headers)


@st.composite
def deep_bodies(draw: Any) -> bytes:
    depth = draw(st.one_of(st.integers(1, 1200), st.integers(1, 9000)))
    opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}"), ('{"a":[', "]}")]))
    inner = opener * depth + "1" + closer * depth
    where = draw(st.sampled_from(["root", "extra", "name", "items", "shipping"]))
    if where == "root":
        return inner.encode()
    order = draw(valid_orders())
    key = {"extra": "zz_extra", "name": "name", "items": "items", "shipping": "shipping"}[where]
    order[key] = "__DEEP__"
    return json.dumps(order).replace('"__DEEP__"', inner).encode()


@settings(FUZZ, max_examples=QUOTA["deep_nesting"])
@given(raw=deep_bodies())
def test_deep_nesting(fuzz: Any, raw: bytes) -> None:
    fuzz.begin("deep_nesting")
    fuzz.post(raw, dict(JSON))


KEYED_BODIES = [{**BASE, "name": f"Keyed Shopper {i}"} for i in range(3)]
KEYED_BODIES.append({**BASE, "items": []})
KEY_POOL = [f"fuzz-key-{i:04d}" for i in range(6)]
_key_strategy = st.one_of(
    *[st.sampled_from(KEY_POOL)] * 4,
    st.text(string.ascii_letters + string.digits + "_-", min_size=8, max_size=64),
    st.text(max_size=80),
    st.sampled_from(["", "short", "x" * 65, "key with space", "ключ-ключ-ключ", "k" * 8]),
)


@settings(FUZZ, max_examples=QUOTA["idempotency"])
@given(key=_key_strategy, which=st.integers(0, 3))
def test_idempotency_keys(fuzz: Any, key: str, which: int) -> None:
    """Few keys, few bodies: replays return the first order, other bodies get 409."""
    from chalicelib.orders import IDEMPOTENCY_KEY_RE

    fuzz.begin("idempotency")
    if getattr(fuzz, "keys_epoch", None) != fuzz.epoch:  # moto was reset: keys are new again
        fuzz.keys_epoch, fuzz.keys = fuzz.epoch, {}
    seen: dict[str, tuple[int, str]] = fuzz.keys  # key -> (body index, order id)
    r = fuzz.post_json(KEYED_BODIES[which], key=key)
    if key and not IDEMPOTENCY_KEY_RE.match(key):
        assert r.status_code == 422 and "Idempotency-Key" in json.loads(r.body)["error"]["fields"]
    elif which == 3:  # invalid body: 422 before the key is looked at
        assert r.status_code == 422
    elif not key:
        assert r.status_code == 201
    elif key not in seen:
        assert r.status_code == 201, r.body
        seen[key] = (which, json.loads(r.body)["order_id"])
    elif seen[key][0] == which:
        assert r.status_code == 201 and json.loads(r.body)["order_id"] == seen[key][1], r.body
    else:
        assert r.status_code == 409, r.body


@settings(FUZZ, max_examples=QUOTA["valid_orders"])
@given(body=valid_orders())
def test_valid_orders_are_accepted_and_mailed_once(fuzz: Any, body: dict[str, Any]) -> None:
    fuzz.begin("valid_orders")
    r = fuzz.post_json(body)
    assert r.status_code == 201, r.body
    got = json.loads(r.body)
    assert got["order_id"] in fuzz.created
    assert [i["sku"] for i in got["items"]] == [i["sku"] for i in body["items"]]
    assert got["subtotal_cents"] == sum(i["line_total_cents"] for i in got["items"])
    assert got["total_cents"] == got["subtotal_cents"] + got["delivery_fee_cents"]


def test_zz_at_least_5000_requests_were_generated(request: Any) -> None:
    """Runs last (file order): the fuzz tests above really ran their examples."""
    ran = set(EXAMPLES)
    if ran != set(QUOTA):
        pytest.skip(f"only some fuzz tests ran: {sorted(ran)}")
    assert sum(EXAMPLES.values()) >= TOTAL_EXAMPLES, dict(EXAMPLES)
    for name, quota in QUOTA.items():
        assert EXAMPLES[name] >= quota * 0.95, (name, EXAMPLES[name], quota)
