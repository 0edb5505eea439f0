"""Cloud edge helpers: SSM SecureString secrets and the CloudFront origin-verify header.

In the cloud stages CloudFront adds `X-Origin-Verify: <secret>` to every request it
forwards to API Gateway (infra/resources.yaml). The same secret is an SSM SecureString
(ORIGIN_VERIFY_PARAM); a request that lacks it came around CloudFront (and so around the
WAF) straight to the execute-api URL, and the app answers 403.

Secrets are read lazily (boto3 is imported on the first call, not at cold start) and kept
per Lambda container for `max_age` seconds, so a rotated value is picked up within minutes
without a redeploy (docs/deploy.md, "Rotating the origin secret").
"""

from __future__ import annotations

import hmac
import ipaddress
import threading
import time
from collections.abc import Mapping

ORIGIN_VERIFY_HEADER = "x-origin-verify"
DEFAULT_MAX_AGE = 300.0

_cache: dict[tuple[str, str, str], tuple[str, float]] = {}
_lock = threading.Lock()


def get_parameter(
    settings_region: str, endpoint_url: str, name: str, max_age: float = DEFAULT_MAX_AGE
) -> str:
    """The decrypted value of SSM parameter `name` (cached per container for `max_age` s).

    Errors (missing parameter, no permission, SSM down) propagate and nothing is cached,
    so the next call tries again.
    """
    key = (settings_region, endpoint_url, name)
    now = time.monotonic()
    hit = _cache.get(key)
    if hit is not None and now - hit[1] < max_age:
        return hit[0]
    with _lock:
        hit = _cache.get(key)
        if hit is not None and now - hit[1] < max_age:
            return hit[0]
        from chalicelib.aws import client
        from chalicelib.settings import Settings

        ssm = client("ssm", Settings(region=settings_region, aws_endpoint_url=endpoint_url))
        value = str(ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"])
        _cache[key] = (value, time.monotonic())
        return value


def clear_cache() -> None:
    """Forget every cached parameter (tests; a rotation in a long-lived process)."""
    with _lock:
        _cache.clear()


def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
    if not headers:
        return None
    wanted = name.lower()
    for key, value in headers.items():
        if str(key).lower() == wanted:
            return value
    return None


def origin_verified(headers: Mapping[str, str] | None, expected_secret: str) -> bool:
    """True when `X-Origin-Verify` (any case) equals `expected_secret`, compared in constant time.

    An empty expected secret never verifies (fail closed: a stage without its parameter
    must not accept everything).
    """
    if not expected_secret:
        return False
    got = _header(headers, ORIGIN_VERIFY_HEADER)
    if got is None:
        return False
    return hmac.compare_digest(str(got).encode("utf-8"), expected_secret.encode("utf-8"))


def _valid_ip(raw: str | None) -> str | None:
    if not raw:
        return None
    try:
        return str(ipaddress.ip_address(raw.strip().strip("[]")))
    except ValueError:
        return None


def viewer_ip(headers: Mapping[str, str] | None, fallback: str | None) -> str | None:
    """The shopper's IP for a request that came through CloudFront (origin-verified).

    API Gateway's `sourceIp` is then a CloudFront edge address, shared by many shoppers,
    so per-IP rate limits must key on the viewer address instead:
      1. `CloudFront-Viewer-Address` ("203.0.113.7:51234", "[2001:db8::1]:443" or
         "2001:db8::1:443"), set by CloudFront itself;
      2. else `X-Forwarded-For`: CloudFront appends the viewer IP and API Gateway then
         appends the edge's, so the viewer is the second entry from the right (entries to
         its left are whatever the client sent and are never trusted);
      3. else `fallback` (use `sourceIp`).
    Only call this after `origin_verified`: without CloudFront in front, both headers are
    client-controlled.
    """
    address = _header(headers, "cloudfront-viewer-address")
    if address:
        host = address.strip()
        if host.startswith("["):
            host = host[1:].split("]", 1)[0]
        elif host.count(":") >= 1:
            host = host.rsplit(":", 1)[0]
        found = _valid_ip(host)
        if found:
            return found
    forwarded = _header(headers, "x-forwarded-for")
    if forwarded:
        hops = [h.strip() for h in forwarded.split(",") if h.strip()]
        candidate = hops[-2] if len(hops) >= 2 else (hops[-1] if hops else None)
        found = _valid_ip(candidate)
        if found:
            return found
    return fallback
