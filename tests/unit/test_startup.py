"""chalicelib/startup.py: no cyclic GC during a cold start; frozen and resumed after it."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from chalicelib import startup


@pytest.fixture
def gc_state() -> Iterator[None]:
    was, thresholds = gc.isenabled(), gc.get_threshold()
    held = startup._held
    yield
    startup._held = held
    gc.set_threshold(*thresholds)
    gc.enable() if was else gc.disable()


def test_hold_pauses_and_release_freezes_then_resumes_once(gc_state: None) -> None:
    gc.enable()
    startup._held = False
    frozen = gc.get_freeze_count()
    startup.hold()
    assert not gc.isenabled()
    kept = [[] for _ in range(1000)]  # made while held (lists: tracked by the GC): frozen
    startup.release()
    assert gc.isenabled() and gc.get_freeze_count() >= frozen + len(kept)
    assert gc.get_threshold() == startup.THRESHOLDS
    gc.disable()
    startup.release()  # the second release changes nothing
    assert not gc.isenabled()


def test_a_collector_paused_by_someone_else_stays_paused(gc_state: None) -> None:
    gc.disable()
    startup._held = False
    startup.hold()
    startup.release()
    assert not gc.isenabled()


def test_the_app_holds_at_import_and_releases_after_its_first_invocation() -> None:
    """In a fresh interpreter, as in a new Lambda container (an unknown route needs no AWS)."""
    code = """
import gc, json, sys
sys.path.insert(0, "bench")
import cold_child as cc
import app
assert not gc.isenabled(), "collecting during the start"
r = app.app(cc.event("GET", "/no-such-route"), cc.Context())
assert 400 <= r["statusCode"] < 500, r
assert gc.get_threshold() == (10_000, 20, 20), gc.get_threshold()
print(json.dumps({"enabled": gc.isenabled(), "frozen": gc.get_freeze_count()}))
"""
    env = {**os.environ, "STAGE": "local", "PYTHONPATH": os.getcwd()}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    state = out.stdout.strip().splitlines()[-1]
    assert '"enabled": true' in state
    assert int(state.rsplit(":", 1)[1].strip(" }")) > 10_000  # the start's objects, frozen
