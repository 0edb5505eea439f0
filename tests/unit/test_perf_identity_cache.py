"""canonical_domain / canonical_email are memoised (IDNA is costly; an order canonicalises
the same address several times), and failures are never cached."""

from __future__ import annotations

import pytest

from chalicelib import identity


def test_repeated_canonicalisation_hits_the_cache() -> None:
    identity.canonical_domain.cache_clear()
    identity._canonical_email.cache_clear()
    for _ in range(3):
        assert identity.canonical_email("J.a.n.e+x@GoogleMail.com") == "jane@gmail.com"
        assert identity.canonical_domain("BÜCHER.com.") == "xn--bcher-kva.com"
    assert identity._canonical_email.cache_info().hits == 2
    assert identity.canonical_domain.cache_info().hits >= 2
    assert identity.canonical_domain.cache_info().maxsize == identity.CACHE_SIZE


def test_failures_still_raise_every_time() -> None:
    for _ in range(2):
        with pytest.raises(identity.NotAnAddress):
            identity.canonical_email("jane@xn--zz.com")
        with pytest.raises(identity.NotAnAddress):
            identity.canonical_email(["not", "text"])  # type: ignore[arg-type]
