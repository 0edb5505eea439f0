"""canonical_email: one key per mailbox (issue 12, findings 3 and 4). Pure, no servers."""

from __future__ import annotations

import pytest

from chalicelib.identity import NotAnAddress, canonical_domain, canonical_email, canonical_or_lower


@pytest.mark.parametrize(
    ("address", "key"),
    [
        # case
        ("jane@example.org", "jane@example.org"),
        ("Jane@Example.ORG", "jane@example.org"),
        ("JANE.DOE@EXAMPLE.ORG", "jane.doe@example.org"),
        ("  jane@example.org  ", "jane@example.org"),
        ("jane@example.org.", "jane@example.org"),  # the root dot
        # +tags
        ("jane+juice@example.org", "jane@example.org"),
        ("jane+1@example.org", "jane@example.org"),
        ("jane+a+b@example.org", "jane@example.org"),
        ("jane+@example.org", "jane@example.org"),  # + with nothing after
        ("Jane+X@Example.org", "jane@example.org"),
        ("+tag@example.org", "+tag@example.org"),  # nothing before the +: kept whole
        # dots matter outside Gmail
        ("j.a.n.e@example.org", "j.a.n.e@example.org"),
        ("jane.doe@outlook.com", "jane.doe@outlook.com"),
        # Gmail: dots ignored, googlemail.com is gmail.com
        ("jane.doe@gmail.com", "janedoe@gmail.com"),
        ("J.a.N.e.D.o.E+juice@GMAIL.COM", "janedoe@gmail.com"),
        ("jane.doe@googlemail.com", "janedoe@gmail.com"),
        ("JaneDoe+x@GoogleMail.com", "janedoe@gmail.com"),
        ("jane.doe@mail.gmail.com", "jane.doe@mail.gmail.com"),  # only the exact domains
        # IDNA: one ASCII form for Unicode and punycode spellings
        ("jane@bücher.com", "jane@xn--bcher-kva.com"),
        ("jane@BÜCHER.com", "jane@xn--bcher-kva.com"),
        ("jane@xn--bcher-kva.com", "jane@xn--bcher-kva.com"),
        ("jane@XN--BCHER-KVA.COM", "jane@xn--bcher-kva.com"),
        ("Jane+x@Bücher.COM.", "jane@xn--bcher-kva.com"),
        ("jane@ｂüｃｈｅｒ.com", "jane@xn--bcher-kva.com"),  # fullwidth letters (UTS #46 map)
        ("jane@bücher。com", "jane@xn--bcher-kva.com"),  # ideographic full stop
        ("jane@faß.de", "jane@xn--fa-hia.de"),  # non-transitional: ß is kept, not "ss"
        ("jane@пример.рф", "jane@xn--e1afmkfd.xn--p1ai"),
        # Unicode local parts (SMTPUTF8; validation refuses them, SES may still report one)
        ("ÄNNE@example.org", "änne@example.org"),
        ("A\u0308nne@example.org", "änne@example.org"),  # NFC
    ],
)
def test_canonical_form(address: str, key: str) -> None:
    assert canonical_email(address) == key


@pytest.mark.parametrize(
    "spellings",
    [
        ["jane@bücher.com", "JANE@xn--bcher-kva.com", "jane+order@BÜCHER.COM"],
        ["jane.doe@gmail.com", "janedoe@googlemail.com", "Jane.Doe+2@Gmail.com"],
        ["supp@example.net", "supp+x@example.net", "SUPP+@EXAMPLE.NET"],
    ],
)
def test_spellings_of_one_mailbox_share_one_key(spellings: list[str]) -> None:
    assert len({canonical_email(s) for s in spellings}) == 1


def test_different_mailboxes_keep_different_keys() -> None:
    keys = {
        canonical_email(a)
        for a in (
            "jane@example.org",
            "jane.doe@example.org",
            "jane@example.net",
            "jane@bücher.com",
            "jane@bucher.com",
            "jane@faß.de",
            "jane@fass.de",
        )
    }
    assert len(keys) == 7


@pytest.mark.parametrize(
    "address",
    [
        "",
        "jane",
        "jane@",
        "@example.org",
        '"jane doe"@example.org',  # quoted local part (validation refuses it first)
        '"jane@x"@example.org',
        "jane@xn--zz.com",  # invalid punycode
        "jane@a..com",  # empty label
        "jane@" + "a" * 64 + ".com",  # label over 63
        "jane@my_host.com",  # not a hostname
        "jane@exa mple.com",
        "jane@\u0661\u0662\u0663.com",  # bidi rule
        "jane@.",
    ],
)
def test_no_canonical_form(address: str) -> None:
    with pytest.raises(NotAnAddress):
        canonical_email(address)


def test_not_text_is_not_an_address() -> None:
    with pytest.raises(NotAnAddress):
        canonical_email(None)  # type: ignore[arg-type]


def test_not_an_address_is_a_value_error() -> None:
    assert issubclass(NotAnAddress, ValueError)


def test_canonical_domain() -> None:
    assert canonical_domain("Bücher.COM.") == "xn--bcher-kva.com"
    assert canonical_domain("xn--bcher-kva.com") == "xn--bcher-kva.com"
    with pytest.raises(NotAnAddress):
        canonical_domain("")


def test_canonical_or_lower_falls_back_to_the_old_key() -> None:
    assert canonical_or_lower("Jane+x@Bücher.com") == "jane@xn--bcher-kva.com"
    assert canonical_or_lower(" Jane@My_Host.COM ") == "jane@my_host.com"


@pytest.mark.parametrize(
    ("address", "keys"),
    [
        ("jane@example.org", ("jane@example.org",)),
        ("Jane@Example.org", ("jane@example.org",)),
        ("Jane+x@Example.org", ("jane@example.org", "jane+x@example.org")),
        ("jane@bücher.com", ("jane@xn--bcher-kva.com", "jane@bücher.com")),
        ("Jane.Doe@GMail.com", ("janedoe@gmail.com", "jane.doe@gmail.com")),
        ("x@my_host.com", ("x@my_host.com",)),
    ],
)
def test_lookup_keys_cover_rows_written_before_canonical_keys(
    address: str, keys: tuple[str, ...]
) -> None:
    from chalicelib.identity import lookup_keys

    assert lookup_keys(address) == keys


def test_the_ses_mailbox_simulator_keeps_its_labels() -> None:
    """Each `bounce+label@simulator.amazonses.com` is its own test mailbox (make smoke)."""
    from chalicelib.identity import canonical_email

    a = canonical_email("bounce+smoke-1@simulator.amazonses.com")
    b = canonical_email("bounce+smoke-2@simulator.amazonses.com")
    assert a != b and a == "bounce+smoke-1@simulator.amazonses.com"
    assert canonical_email("jane+x@example.com") == "jane@example.com"
