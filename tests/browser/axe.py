"""axe-core (tests/browser/vendor/axe.min.js, from the npm registry) injected with Playwright.

`audit(page, state)` runs axe on the page as it is now and fails with every violation (rule,
impact, the offending elements). It is evaluated through the DevTools protocol, so the page's
CSP (script-src 'self') stays on and untouched.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path
from typing import Any

AXE = Path(__file__).resolve().parent / "vendor" / "axe.min.js"
AXE_VERSION = "4.14.1"
AXE_SHA256 = "29348999450cdf2849a8e70b7912fc2da85a849da39c0d0d5394f51d4a9ed95c"

RUN = """async () => {
  const r = await window.axe.run(document, { resultTypes: ["violations"] });
  return r.violations.map(v => ({ id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.slice(0, 5).map(n => n.target.join(" ") + " :: " + n.failureSummary) }));
}"""


@lru_cache(maxsize=1)
def _source() -> str:
    data = AXE.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    assert digest == AXE_SHA256, f"{AXE} is not axe-core {AXE_VERSION} (sha256 {digest})"
    return data.decode("utf-8")


def audit(page: Any, state: str) -> list[dict[str, Any]]:
    """Run axe-core on the current page; assert there is no violation. Returns [] on success."""
    if not page.evaluate("() => Boolean(window.axe)"):
        page.evaluate(_source() + "\n;undefined")
    assert page.evaluate("() => window.axe.version") == AXE_VERSION
    violations: list[dict[str, Any]] = page.evaluate(RUN)
    assert not violations, f"axe-core found violations in state {state!r}: {violations}"
    return violations
