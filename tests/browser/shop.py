"""pytest fixtures for the browser tests (tests/browser/).

One Chromium (Debian's, by executable path: Playwright can't download browsers here) per
session, a fresh context per test, the real local stack (`devstack.stack.Stack`) serving the
site with its CSP header, exactly as `make run` serves it: the page loads the dev server's
offline Turnstile stand-in (devstack/turnstile_standin.js) because the local config.json says
so; nothing is routed, so any request to Cloudflare would fail like it does offline.
Every test fails on an uncaught page error or a CSP violation; `Shop.assert_clean()` also
rejects console errors. Failing tests leave a screenshot in artifacts/screenshots/failures/.

Chromium missing: the browser tests are skipped locally, but fail in CI (CI=true).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from devstack.chromium import CHROMIUM_CANDIDATES, find_chromium

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
DESKTOP = {"width": 1280, "height": 800}
MOBILE = {"width": 360, "height": 740}

# Runs before any page script: report CSP violations through an exposed binding (survives
# navigations and reloads, unlike a window variable).
_CSP_LISTENER = """
document.addEventListener("securitypolicyviolation", (e) => {
  window.__reportCsp && window.__reportCsp(JSON.stringify({
    directive: e.violatedDirective, blocked: e.blockedURI, source: e.sourceFile,
    line: e.lineNumber, sample: e.sample }));
});
"""


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def chromium_executable() -> str:
    path = find_chromium()
    if path:
        return path
    msg = (
        "Chromium not found (looked at $CHROMIUM_PATH, "
        + ", ".join(CHROMIUM_CANDIDATES)
        + "): install it with `apt-get install chromium` to run the browser tests"
    )
    if in_ci():
        pytest.fail(msg + " (CI=true: a missing browser is a failure, not a skip)", pytrace=False)
    pytest.skip(msg)


@pytest.fixture(scope="session")
def browser(chromium_executable: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    try:
        b = pw.chromium.launch(
            executable_path=chromium_executable, args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield b
        finally:
            b.close()
    finally:
        pw.stop()


@dataclass
class OrderPost:
    """One POST /api/orders the page sent."""

    key: str | None
    body: dict[str, Any]


@dataclass
class Shop:
    """A browser context on the local stack, with what it logged."""

    context: Any
    page: Any
    url: str
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    csp_violations: list[dict[str, Any]] = field(default_factory=list)
    order_posts: list[OrderPost] = field(default_factory=list)
    requested: list[str] = field(default_factory=list)  # every URL any page of it asked for

    def goto(self, path: str = "/", page: Any = None) -> Any:
        page = page or self.page
        page.goto(self.url + path)
        return page

    def new_page(self) -> Any:
        """Another tab in the same context (same storage, same listeners)."""
        return self.context.new_page()

    def assert_clean(self, allow: tuple[str, ...] = ()) -> None:
        """No console errors (except messages matching one of `allow`), page errors or CSP
        violations so far."""
        errors = [e for e in self.console_errors if not any(re.search(a, e) for a in allow)]
        assert not self.page_errors, f"uncaught errors: {self.page_errors}"
        assert not self.csp_violations, f"CSP violations: {self.csp_violations}"
        assert not errors, f"console errors: {errors}"


def _attach(shop: Shop, page: Any) -> None:
    page.on(
        "console",
        lambda m: (
            shop.console_errors.append(f"{m.text} ({m.location.get('url', '')})")
            if m.type == "error"
            else None
        ),
    )
    page.on("pageerror", lambda e: shop.page_errors.append(str(e)))


@pytest.fixture()
def make_shop(browser: Any, stack: Any, request: pytest.FixtureRequest) -> Iterator[Callable]:
    """make_shop(viewport=DESKTOP, **context_options) -> Shop; closed after the test."""
    shops: list[Shop] = []

    def make(viewport: dict[str, int] | None = None, **options: Any) -> Shop:
        context = browser.new_context(
            viewport=viewport or DESKTOP, service_workers="block", **options
        )
        context.set_default_timeout(10_000)
        shop = Shop(context=context, page=None, url=stack.url)
        context.expose_function(
            "__reportCsp", lambda raw: shop.csp_violations.append(json.loads(raw))
        )
        context.add_init_script(_CSP_LISTENER)

        def on_request(req: Any) -> None:
            shop.requested.append(req.url)
            if req.method == "POST" and req.url.startswith(stack.url + "/api/orders"):
                try:
                    body = json.loads(req.post_data or "null")
                except ValueError:
                    body = None
                shop.order_posts.append(OrderPost(req.headers.get("idempotency-key"), body))

        context.on("request", on_request)
        context.on("page", lambda p: _attach(shop, p))
        shop.page = context.new_page()
        shops.append(shop)
        return shop

    yield make

    failed = getattr(request.node, "rep_call", None)
    for i, shop in enumerate(shops):
        try:
            if failed is not None and failed.failed and not shop.page.is_closed():
                out = SCREENSHOTS / "failures"
                out.mkdir(parents=True, exist_ok=True)
                name = re.sub(r"[^\w.-]+", "_", request.node.name)
                shop.page.screenshot(path=str(out / f"{name}-{i}.png"), full_page=True)
        finally:
            shop.context.close()
    for shop in shops:  # every browser test: no uncaught errors, no CSP violations
        assert not shop.page_errors, f"uncaught page errors: {shop.page_errors}"
        assert not shop.csp_violations, f"CSP violations: {shop.csp_violations}"


@pytest.fixture()
def shop(make_shop: Callable[..., Shop]) -> Shop:
    """A desktop-sized Shop."""
    return make_shop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.rep_call = report  # type: ignore[attr-defined]


def screenshot(page: Any, name: str, full_page: bool = True) -> Path:
    """Save a test artifact to artifacts/screenshots/<name>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.evaluate("window.scrollTo(0, 0)")  # else the sticky header lands mid-picture
    page.screenshot(path=str(path), full_page=full_page, caret="initial")
    return path


# --- delivery days and order links (issue 14) ----------------------------------------------


def human_day(iso: str) -> str:
    """ "2026-12-03" -> "Thursday 3 December", as the page and the emails write a day."""
    from datetime import date

    d = date.fromisoformat(iso)
    return f"{d:%A} {d.day} {d:%B}"


def on_stack(url: str, stack: Any) -> str:
    """An emailed link, on this stack. The links carry PUBLIC_BASE_URL, which the test stack
    (free ports) leaves at its default http://127.0.0.1:8000 (`make run`'s address): keep the
    path and the token, swap the origin for the stack's."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    assert parts.path.startswith(("/api/o/", "/api/s/")), url
    return stack.url + parts.path


def dynamodb(stack: Any) -> Any:
    """A boto3 DynamoDB client on the stack's moto server."""
    import boto3

    return boto3.client(
        "dynamodb",
        endpoint_url=stack.moto_url,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )


def slot_count(stack: Any, day: str) -> int | None:
    """The stored counter of a delivery day (`slot#<day>`: orders holding a slot), or None."""
    item = (
        dynamodb(stack)
        .get_item(
            TableName=stack.env.get("ORDERS_TABLE", "orders"),
            Key={"pk": {"S": f"slot#{day}"}},
            ConsistentRead=True,
        )
        .get("Item")
    )
    return int(item["n"]["N"]) if item and "n" in item else None
