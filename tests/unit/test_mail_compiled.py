"""The mail templates as the Lambda package ships them: compiled to modules
(chalicelib.mail.compile_templates, run by infra/lambdazip.py) and loaded from COMPILED."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chalicelib import mail
from chalicelib.mail import Email, compile_templates, render
from chalicelib.status_mail import STATUS_EMAILS, render_status
from tests.unit.test_lifecycle import sample_order


def _clear() -> None:
    mail._environment.cache_clear()
    mail.template.cache_clear()


@pytest.fixture
def compiled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Mail templates compiled into a copy; COMPILED pointed at it for the test."""
    target = tmp_path / "_compiled"
    compile_templates(mail.TEMPLATES, target)
    monkeypatch.setattr(mail, "COMPILED", target)
    _clear()
    yield target
    _clear()


def every_email(order: dict[str, Any]) -> list[Email]:
    common = {"shop_name": "Juice <Bar>", "merchant_email": "owner@shop.test"}
    out = [
        render(order, "merchant", actions={"confirm": "https://x.test/a?t=1&u=2"}, **common),
        render(order, "customer", status_url="https://x.test/s?t=1", **common),
    ]
    for status in STATUS_EMAILS:
        out.append(render_status(order, status, status_url="https://x.test/s", **common))
    return out


def hostile_order() -> dict[str, Any]:
    order = sample_order()
    order["customer"]["name"] = '<b>Jane</b> & "co"'
    order["shipping"]["line2"] = "<script>x</script>"
    order["history"].append({"status": "cancelled", "at": 1, "by": "merchant", "reason": "<i>"})
    return order


def test_compiled_templates_render_exactly_what_the_sources_render(compiled: Path) -> None:
    from jinja2 import ModuleLoader

    assert isinstance(mail._environment().loader, ModuleLoader)
    from_modules = every_email(hostile_order())
    mail.COMPILED = compiled.parent / "absent"  # the source tree's case: no compiled dir
    _clear()
    assert not isinstance(mail._environment().loader, ModuleLoader)
    from_sources = every_email(hostile_order())
    assert from_modules == from_sources
    assert len(from_modules) == 2 + len(STATUS_EMAILS)
    html = from_modules[0].html
    assert "&lt;b&gt;Jane&lt;/b&gt;" in html and "<b>Jane</b>" not in html  # still escaped
    assert "<script>" not in from_modules[1].html


def test_every_mail_template_is_compiled_and_no_page_template(compiled: Path) -> None:
    env = mail._environment()
    sources = sorted(
        p.relative_to(mail.TEMPLATES).as_posix()
        for p in mail.TEMPLATES.rglob("*")
        if p.is_file() and not p.relative_to(mail.TEMPLATES).as_posix().startswith("pages/")
    )
    assert sources and "_lines.html" in sources
    for name in sources:
        assert env.get_template(name) is not None  # ModuleLoader: from the compiled modules
    assert len(list(compiled.glob("tmpl_*.py"))) == len(sources)


def test_the_compiled_module_is_what_runs(compiled: Path) -> None:
    """ModuleLoader never looks at the sources: a compiled template is the one rendered."""
    [module] = [p for p in compiled.glob("tmpl_*.py") if "customer.txt" in p.read_text()]
    module.write_text(module.read_text().replace("Thank", "THANK-COMPILED", 1))
    _clear()
    text = render(
        sample_order(), "customer", shop_name="S", merchant_email="m@shop.test", status_url="u"
    ).text
    assert "THANK-COMPILED" in text
