"""tests/browser: the storefront in Chromium (Playwright) against the shared local stack.

Fixtures and the `Shop` helper live in tests/browser/shop.py; every test collected here carries
the `browser` marker (`pytest -m browser`)."""

from __future__ import annotations

import pytest

from tests.browser.shop import browser, chromium_executable, make_shop, shop  # noqa: F401 - fixtures


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/tests/browser/" in str(item.path):
            item.add_marker(pytest.mark.browser)
