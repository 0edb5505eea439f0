"""Server-side verification of Cloudflare Turnstile tokens (siteverify), failing closed.

`requests` is imported when the first verification happens (cold start), and the pooled
session is kept for the life of the process.
"""

from __future__ import annotations

import time
import uuid
from functools import cache, cached_property
from typing import Any, NoReturn

from chalicelib.obs import log

MAX_TOKEN_LENGTH = 2048  # Cloudflare: "A Turnstile token can have up to 2048 characters."
# Namespace for the idempotency_key we derive (uuid5) from the order's Idempotency-Key.
IDEMPOTENCY_NAMESPACE = uuid.UUID("6f1b7d0e-3c55-5a8e-9d7b-2f1e0c9a4b11")
# Our misconfiguration, not the visitor's fault: answer 503, not 403, and do not retry.
FORM = "application/x-www-form-urlencoded"
CONFIG_ERROR_CODES = frozenset({"missing-input-secret", "invalid-input-secret", "bad-request"})


class BotCheckFailed(Exception):
    """The token was refused (-> 403 bot_check_failed). `codes`: siteverify error codes, or
    ours: hostname-mismatch, action-mismatch."""

    def __init__(self, codes: list[str]) -> None:
        super().__init__("bot check failed: " + ",".join(codes))
        self.codes = list(codes)


class BotCheckUnavailable(Exception):
    """Siteverify could not give an answer (-> 503 service_unavailable; we fail closed).
    `reason`: timeout, connection, http_5xx, internal-error, bad_response, config."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"bot check unavailable: {reason}")
        self.reason = reason


def idempotency_uuid(idempotency_key: str, token: str) -> str:
    """The stable UUID sent as siteverify's `idempotency_key` for one submission.

    The same order Idempotency-Key with the same token gives the same UUID, so a client retry
    of the same submission is answered from Cloudflare's idempotency record instead of
    `timeout-or-duplicate`; a new token under the same key gets a fresh validation.
    """
    return str(uuid.uuid5(IDEMPOTENCY_NAMESPACE, f"{idempotency_key}\n{token}"))


class _Transient(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TurnstileClient:
    """Verifies tokens against `verify_url`; one instance per process is enough (thread-safe)."""

    def __init__(
        self,
        secret: str,
        verify_url: str,
        hostnames: tuple[str, ...],
        action: str,
        timeout: float,
    ) -> None:
        self._secret = secret
        self.verify_url = verify_url
        self.hostnames = tuple(h.strip().lower() for h in hostnames if h.strip())
        self.action = action
        self.timeout = timeout
        self._prepared: Any = None  # the POST's PreparedRequest, without a body (`_template`)

    def __repr__(self) -> str:  # never show the secret
        return f"TurnstileClient(verify_url={self.verify_url!r}, hostnames={self.hostnames!r})"

    def _http(self) -> Any:
        return self._session

    @cached_property
    def _session(self) -> Any:
        requests = _import_requests()
        from requests.adapters import HTTPAdapter

        session = requests.Session()
        # No proxies, netrc or CA bundle from the environment: a Lambda has none, and looking
        # them up on every request (env, ~/.netrc, proxy bypass rules) was ~0.7-1 ms of CPU of a
        # ~2 ms verification here. A developer's HTTP(S)_PROXY can't reroute siteverify either.
        session.trust_env = False
        adapter = HTTPAdapter(pool_connections=2, pool_maxsize=10, max_retries=0)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        session.headers["User-Agent"] = "order-app-turnstile/1"
        return session

    def verify(self, token: str | None, remote_ip: str | None, idempotency_key: str | None) -> None:
        """Return if the token is good; raise BotCheckFailed or BotCheckUnavailable otherwise."""
        started = time.perf_counter()
        if not token:
            self._refuse(["missing-input-response"], started, attempts=0, why="token_missing")
        if len(token) > MAX_TOKEN_LENGTH:
            self._refuse(["invalid-input-response"], started, attempts=0, why="token_too_long")
        if not self._secret:
            self._unavailable("config", started, attempts=0, detail="no secret configured")

        form = {"secret": self._secret, "response": token}
        if remote_ip:
            form["remoteip"] = remote_ip
        if idempotency_key:
            form["idempotency_key"] = idempotency_uuid(idempotency_key, token)

        body: dict[str, Any] | None = None
        reason = ""
        attempts = 0
        while body is None and attempts < 2:  # retry exactly once on a transient failure
            attempts += 1
            try:
                body = self._post(form)
            except _Transient as e:
                reason = e.reason
        if body is None:
            self._unavailable(reason, started, attempts)

        codes = [str(c) for c in body.get("error-codes") or []]
        if body.get("success") is not True:
            if CONFIG_ERROR_CODES.intersection(codes):
                self._unavailable("config", started, attempts, detail=",".join(codes))
            self._refuse(codes or ["unknown-error"], started, attempts)
        hostname = str(body.get("hostname") or "").lower()
        action = str(body.get("action") or "")
        testing = bool((body.get("metadata") or {}).get("result_with_testing_key"))
        if self.hostnames and hostname not in self.hostnames:
            self._refuse(["hostname-mismatch"], started, attempts, hostname=hostname)
        if action and self.action and action != self.action:
            self._refuse(["action-mismatch"], started, attempts, action=action)
        log(
            "turnstile",
            outcome="pass",
            attempts=attempts,
            hostname=hostname,
            action=action,
            testing_key=testing,
            ms=_ms(started),
        )

    def _post(self, form: dict[str, str]) -> dict[str, Any]:
        requests = _import_requests()

        try:
            resp = self._http().send(
                self._prepare(requests, form), timeout=(self.timeout, self.timeout)
            )
        except requests.Timeout:
            raise _Transient("timeout") from None
        except requests.ConnectionError:
            raise _Transient("connection") from None
        except requests.RequestException as e:
            raise _Transient(type(e).__name__) from None
        if resp.status_code >= 500:
            raise _Transient(f"http_{resp.status_code}")
        try:
            body = resp.json()
        except ValueError:
            raise _Transient(f"bad_response_http_{resp.status_code}") from None
        if not isinstance(body, dict) or "success" not in body:
            raise _Transient(f"bad_response_http_{resp.status_code}")
        if "internal-error" in (body.get("error-codes") or []):
            raise _Transient("internal-error")
        return body

    def _prepare(self, requests: Any, form: dict[str, str]) -> Any:
        """The POST as a requests PreparedRequest: a copy of one prepared per client (URL,
        headers), with this form as its body. `Session.send` on it skips what
        `Session.post` would redo per call (merging session and environment settings,
        cookies, hooks, parsing the URL; ~30% of a verification's CPU) - this session sets
        none of them."""
        from urllib.parse import urlencode

        prepared = self._template(requests).copy()
        prepared.prepare_body(urlencode(form), None)
        return prepared

    def _template(self, requests: Any) -> Any:
        if self._prepared is None:
            headers = {**self._http().headers, "Content-Type": FORM}
            self._prepared = requests.Request("POST", self.verify_url, headers=headers).prepare()
        return self._prepared

    def _refuse(self, codes: list[str], started: float, attempts: int, **fields: Any) -> NoReturn:
        log(
            "turnstile",
            level="warning",
            outcome="fail",
            codes=codes,
            attempts=attempts,
            ms=_ms(started),
            **fields,
        )
        raise BotCheckFailed(codes)

    def _unavailable(
        self, reason: str, started: float, attempts: int, detail: str = ""
    ) -> NoReturn:
        log(
            "turnstile",
            level="error",
            outcome="unavailable",
            reason=reason,
            detail=detail,
            attempts=attempts,
            ms=_ms(started),
        )
        raise BotCheckUnavailable(reason)


@cache
def _import_requests() -> Any:
    """`requests`, without its one-line warning when no charset detector is installed (the
    Lambda package leaves charset_normalizer out: infra/lambdazip.py; we only read JSON).
    Once per process: catch_warnings swaps the process-wide filters."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Unable to find acceptable character detection")
        import requests
    return requests


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)
