"""The local moto server keeps connections alive (HTTP/1.1), as AWS endpoints do.

werkzeug's development server closes every connection after one answer, so each SDK call
paid a new TCP connection; devstack.moto_server answers on the same connection until the
client asks to close it, and drains every request body so the next request line is read
correctly (with a Content-Length body, a chunked body, or a body moto never reads).
"""

from __future__ import annotations

import http.client
import json
from typing import Any
from urllib.parse import urlparse

from tests.servers import MotoServer

LIST_TABLES = {
    "X-Amz-Target": "DynamoDB_20120810.ListTables",
    "Content-Type": "application/x-amz-json-1.0",
    "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20240101/us-east-1/dynamodb/aws4_request",
}


def _conn(aws: MotoServer) -> http.client.HTTPConnection:
    u = urlparse(aws.url)
    return http.client.HTTPConnection(u.hostname or "127.0.0.1", u.port, timeout=10)


def _answer(conn: http.client.HTTPConnection) -> tuple[int, bytes, http.client.HTTPResponse]:
    r = conn.getresponse()
    return r.status, r.read(), r


def test_two_requests_share_one_connection(aws: MotoServer) -> None:
    conn = _conn(aws)
    conn.request("POST", "/", body=b"{}", headers=LIST_TABLES)
    status, body, r = _answer(conn)
    assert status == 200 and "TableNames" in json.loads(body)
    assert (r.getheader("Connection") or "").lower() != "close"
    sock = conn.sock
    assert sock is not None, "the server closed the connection after one answer"
    port = sock.getsockname()[1]
    # a larger body, then another request on the same socket: the body was fully drained
    conn.request(
        "POST", "/", body=json.dumps({"Limit": 5, "pad": "x" * 20000}), headers=LIST_TABLES
    )
    status, body, _ = _answer(conn)
    assert status == 200 and "TableNames" in json.loads(body)
    conn.request("GET", "/moto-api/data.json")
    status, body, _ = _answer(conn)
    assert status == 200 and json.loads(body)
    assert conn.sock is sock and sock.getsockname()[1] == port
    conn.close()


def test_chunked_body_is_drained(aws: MotoServer) -> None:
    conn = _conn(aws)
    conn.request("POST", "/", body=iter([b"{", b"}"]), headers=LIST_TABLES, encode_chunked=True)
    status, body, _ = _answer(conn)
    assert status == 200 and "TableNames" in json.loads(body)
    sock = conn.sock
    conn.request("POST", "/", body=b"{}", headers=LIST_TABLES)
    status, body, _ = _answer(conn)
    assert status == 200 and "TableNames" in json.loads(body)
    assert conn.sock is sock is not None
    conn.close()


def test_client_asking_to_close_is_closed(aws: MotoServer) -> None:
    conn = _conn(aws)
    conn.request("POST", "/", body=b"{}", headers={**LIST_TABLES, "Connection": "close"})
    status, _, r = _answer(conn)
    assert status == 200
    assert (r.getheader("Connection") or "").lower() == "close"
    assert conn.sock is None  # http.client closed it, as the server said it would


def _open_sockets(pool: Any) -> set[tuple[str, int]]:
    return {c.sock.getsockname() for c in list(pool.pool.queue) if c is not None and c.sock}


def test_boto3_client_reuses_its_connection(aws: MotoServer) -> None:
    client: Any = aws.client("dynamodb")
    client.list_tables()
    pool = client._endpoint.http_session._manager.connection_from_url(aws.url)
    first = _open_sockets(pool)
    assert len(first) == 1  # the connection is still open after the answer
    for _ in range(5):
        client.describe_table(TableName=client.list_tables()["TableNames"][0])
        assert _open_sockets(pool) == first  # the same TCP connection (same local port)
