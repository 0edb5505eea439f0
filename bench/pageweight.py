"""Figure 6: page weight of the shop page as Chromium loads it.

The whole local stack (devstack.stack.Stack, free ports) serves the site; headless Chromium
(Playwright, Debian's binary) opens it with an empty cache, waits until the catalog is shown
and the network is idle, and sums what was transferred: for every response, Chromium's own
`request.sizes()` (encoded body bytes + header bytes). challenges.cloudflare.com (Turnstile) is
routed to a local stub and left out of the sum. Baseline: the same page's HTML document alone.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlparse

from bench.common import ROOT
from devstack.chromium import find_chromium

STUB = ROOT / "tests" / "browser" / "turnstile_stub.js"
FALLBACK_STUB = (
    "window.turnstile={render:function(){return 'w'},reset:function(){},"
    "remove:function(){},getResponse:function(){return ''}};"
)


def run() -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    from devstack.stack import Stack

    chromium = find_chromium()
    if chromium is None:
        raise RuntimeError("no Chromium found (set CHROMIUM_PATH)")
    stub = STUB.read_text(encoding="utf-8") if STUB.exists() else FALLBACK_STUB
    env = {"BUSINESS_HOURS": "always"}
    requests: list[Any] = []
    stubbed: list[str] = []
    with Stack(env=env) as stack, sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=chromium,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 800})

            def turnstile(route: Any) -> None:
                stubbed.append(route.request.url)
                route.fulfill(status=200, content_type="text/javascript", body=stub)

            context.route("https://challenges.cloudflare.com/**", turnstile)
            page = context.new_page()
            page.on("requestfinished", lambda req: requests.append(req))
            page.goto(stack.url + "/", wait_until="networkidle")
            page.wait_for_selector("#products li", timeout=15000)
            page.wait_for_load_state("networkidle")
            rows = []
            for req in requests:
                host = urlparse(req.url).hostname or ""
                if host.endswith("challenges.cloudflare.com"):
                    continue
                sizes = req.sizes()
                rows.append(
                    {
                        "url": req.url.replace(stack.url, ""),
                        "type": req.resource_type,
                        "body": sizes["responseBodySize"],
                        "headers": sizes["responseHeadersSize"],
                    }
                )
            context.close()
        finally:
            browser.close()
    rows.sort(key=lambda r: -r["body"])
    body = sum(r["body"] for r in rows)
    headers = sum(r["headers"] for r in rows)
    document = next((r for r in rows if r["type"] == "document"), None)
    return {
        "requests": len(rows),
        "body_bytes": body,
        "header_bytes": headers,
        "total_bytes": body + headers,
        "document_bytes": (document["body"] + document["headers"]) if document else None,
        "stubbed_turnstile_requests": len(stubbed),
        "resources": rows,
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
