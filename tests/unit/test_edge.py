"""chalicelib.edge: SSM SecureString reads against a real moto server, origin-verify header."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from botocore.exceptions import ClientError

from chalicelib import edge
from tests.servers import MotoServer

NAME = "/juice-orders/test/origin-verify"


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    edge.clear_cache()
    yield
    edge.clear_cache()


def _ssm(server: MotoServer):  # type: ignore[no-untyped-def]
    return server.client("ssm")


def test_reads_secure_string_decrypted(aws: MotoServer) -> None:
    _ssm(aws).put_parameter(Name=NAME, Value="s3cr3t-value", Type="SecureString")
    assert edge.get_parameter("us-east-1", aws.url, NAME) == "s3cr3t-value"


def test_value_is_cached_per_container(aws: MotoServer) -> None:
    ssm = _ssm(aws)
    ssm.put_parameter(Name=NAME, Value="first", Type="SecureString")
    assert edge.get_parameter("us-east-1", aws.url, NAME) == "first"
    ssm.put_parameter(Name=NAME, Value="second", Type="SecureString", Overwrite=True)
    # still the cached value: no SSM round trip per request
    assert edge.get_parameter("us-east-1", aws.url, NAME) == "first"
    # once the entry is older than max_age the new value is read
    assert edge.get_parameter("us-east-1", aws.url, NAME, max_age=0) == "second"
    assert edge.get_parameter("us-east-1", aws.url, NAME) == "second"


def test_cache_survives_the_server_going_away(aws: MotoServer) -> None:
    _ssm(aws).put_parameter(Name=NAME, Value="kept", Type="SecureString")
    assert edge.get_parameter("us-east-1", aws.url, NAME) == "kept"
    aws.reset()  # the parameter is gone from SSM now
    assert edge.get_parameter("us-east-1", aws.url, NAME) == "kept"
    edge.clear_cache()
    with pytest.raises(ClientError):
        edge.get_parameter("us-east-1", aws.url, NAME)


def test_missing_parameter_raises_and_is_not_cached(aws: MotoServer) -> None:
    with pytest.raises(ClientError) as info:
        edge.get_parameter("us-east-1", aws.url, NAME)
    assert info.value.response["Error"]["Code"] == "ParameterNotFound"
    _ssm(aws).put_parameter(Name=NAME, Value="now-there", Type="SecureString")
    assert edge.get_parameter("us-east-1", aws.url, NAME) == "now-there"


def test_cache_key_includes_the_name(aws: MotoServer) -> None:
    ssm = _ssm(aws)
    ssm.put_parameter(Name=NAME, Value="a", Type="SecureString")
    ssm.put_parameter(Name=NAME + "-other", Value="b", Type="SecureString")
    assert edge.get_parameter("us-east-1", aws.url, NAME) == "a"
    assert edge.get_parameter("us-east-1", aws.url, NAME + "-other") == "b"


SECRET = "0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize(
    ("headers", "expected", "ok"),
    [
        ({"X-Origin-Verify": SECRET}, SECRET, True),
        ({"x-origin-verify": SECRET}, SECRET, True),
        ({"X-ORIGIN-VERIFY": SECRET}, SECRET, True),
        ({"X-Origin-Verify": SECRET, "Host": "x"}, SECRET, True),
        ({"X-Origin-Verify": SECRET + "x"}, SECRET, False),
        ({"X-Origin-Verify": SECRET[:-1]}, SECRET, False),
        ({"X-Origin-Verify": SECRET.upper()}, SECRET, False),  # the value is case-sensitive
        ({"X-Origin-Verify": ""}, SECRET, False),
        ({"X-Origin-Verify": " " + SECRET}, SECRET, False),
        ({"X-Origin-Verified": SECRET}, SECRET, False),
        ({}, SECRET, False),
        (None, SECRET, False),
        ({"X-Origin-Verify": ""}, "", False),  # no configured secret: fail closed
        ({}, "", False),
        ({"X-Origin-Verify": "sécret"}, "sécret", True),  # non-ASCII does not raise
        ({"X-Origin-Verify": "sécret"}, "secret", False),
    ],
)
def test_origin_verified_truth_table(
    headers: dict[str, str] | None, expected: str, ok: bool
) -> None:
    assert edge.origin_verified(headers, expected) is ok


@pytest.mark.parametrize(
    ("headers", "ip"),
    [
        ({"CloudFront-Viewer-Address": "203.0.113.7:51234"}, "203.0.113.7"),
        ({"cloudfront-viewer-address": "2001:db8::1:443"}, "2001:db8::1"),
        ({"CloudFront-Viewer-Address": "[2001:db8::2]:443"}, "2001:db8::2"),
        (
            {"CloudFront-Viewer-Address": "198.51.100.9:1", "X-Forwarded-For": "1.1.1.1, 2.2.2.2"},
            "198.51.100.9",
        ),
        ({"X-Forwarded-For": "203.0.113.7, 130.176.0.1"}, "203.0.113.7"),
        ({"X-Forwarded-For": "6.6.6.6, 203.0.113.7, 130.176.0.1"}, "203.0.113.7"),  # spoof left
        ({"X-Forwarded-For": "203.0.113.7"}, "203.0.113.7"),
        ({"X-Forwarded-For": "not-an-ip, 130.176.0.1"}, "10.0.0.1"),
        ({"CloudFront-Viewer-Address": "garbage"}, "10.0.0.1"),
        ({}, "10.0.0.1"),
        (None, "10.0.0.1"),
    ],
)
def test_viewer_ip(headers: dict[str, str] | None, ip: str) -> None:
    assert edge.viewer_ip(headers, "10.0.0.1") == ip
