"""chalicelib.textguard: what counts as a link, what is invisible (issue 12, findings 1 and 7)."""

from __future__ import annotations

import pytest

from chalicelib.textguard import (
    find_link,
    has_letter,
    has_letter_or_digit,
    invisible_chars,
    tlds,
)

LINKS = [
    # (text, kind)
    ("WIN $1000 http://evil.example/claim", "url"),
    ("https://evil.example", "url"),
    ("HTTPS://EVIL.EXAMPLE", "url"),
    ("ftp://files.evil", "url"),
    ("x-custom+app.v2://open", "url"),
    ("hxxp://evil.example", "url"),
    ("hxxps[:]//evil", "url"),
    ("http : // evil", "url"),
    ("ｈｔｔｐ：／／evil", "url"),  # fullwidth, NFKC
    ("mailto:jane", "url"),
    ("javascript:alert(1)", "url"),
    ("data:text/html,hi", "url"),
    ("Visit www.evil.example now", "www"),
    ("WWW.EVIL", "www"),
    ("www[.]evil", "www"),
    ("www (dot) evil", "www"),
    ("www2.evil", "www"),
    ("Ｗｗｗ．ｅｖｉｌ", "www"),
    ("jane@evil.com", "email"),
    ("Write to jane.doe+x@mail.evil.org today", "email"),
    ("jane＠evil.com", "email"),  # fullwidth at sign
    ("jane﹫evil.com", "email"),  # small commercial at
    ("jane[at]evil[.]com", "email"),
    ("jane (at) evil (dot) com", "email"),
    ("192.168.1.1", "ip"),
    ("go to 10.0.0.1 now", "ip"),
    ("evil.com", "domain"),
    ("EVIL.COM", "domain"),
    ("evil.com.", "domain"),
    ("evil.com/claim", "domain"),
    ("win at evil.example", "domain"),  # reserved TLDs count
    ("shop.test", "domain"),
    ("shop.nyc", "domain"),
    ("a.b.c.io", "domain"),
    ("bit.ly/abc", "domain"),
    ("t.co", "domain"),  # single-letter label with a common TLD
    ("x.com", "domain"),
    ("evil[.]example", "domain"),
    ("evil(.)com", "domain"),
    ("evil{dot}com", "domain"),
    ("evil<.>com", "domain"),
    ("evil [ . ] com", "domain"),
    ("evil dot com", "domain"),
    ("evil . com", "domain"),
    ("ｅｖｉｌ．ｃｏｍ", "domain"),  # fullwidth letters and dot
    ("evil。com", "domain"),  # ideographic full stop (an IDNA label separator)
    ("evil｡com", "domain"),
    ("evil\u2024com", "domain"),  # one dot leader
    ("evil\ufe52com", "domain"),  # small full stop
    ("evil\u200b.com", "domain"),  # invisible character inside the token
    ("пример.рф", "domain"),  # Unicode TLD
    ("evil.xn--p1ai", "domain"),  # punycode TLD
    ("bücher.de", "domain"),
]

NOT_LINKS = [
    "Jane Doe",
    "Zoë O'Brien",
    "Jean-Luc Picard",
    "Mr. Smith",
    "Dr. No",
    "J.R.R. Tolkien",
    "J.R.R.Tolkien",
    "A.M. Deliveries",
    "U.S.Army",
    "1 Main Street",
    "St. Marks Place",
    "St.Louis",
    "Apt. 4B",
    "Apt 4",
    "No.5",
    "No. 5",
    "P.O. Box 12",
    "P.O.Box 12",
    "1.5",
    "Floor 3.5",
    "1.2.3",
    "version 1.2.3.4.5",
    "Ave. of the Americas",
    "O'Connor & Sons Co. Inc.",
    "e.g. side door",
    "Polka dot dress",
    "Dot Cotton",
    "#5 @ rear",
    "Brooklyn, NY 11201",
    "New York",
    "",
]


@pytest.mark.parametrize(("text", "kind"), LINKS)
def test_links_are_found(text: str, kind: str) -> None:
    found = find_link(text)
    assert found is not None, text
    assert found.kind == kind, (text, found)


@pytest.mark.parametrize("text", NOT_LINKS)
def test_ordinary_names_and_addresses_are_not_links(text: str) -> None:
    assert find_link(text) is None


def test_the_tld_list_is_iana_and_lower_case() -> None:
    names = tlds()
    assert {"com", "nyc", "box", "xn--p1ai"} <= names
    assert len(names) > 1000
    assert all(n == n.lower() for n in names)
    assert "tolkien" not in names and "louis" not in names


@pytest.mark.parametrize(
    ("text", "codes"),
    [
        ("\u200b", ["U+200B"]),  # zero width space
        ("Ja\u200dne", ["U+200D"]),  # ZWJ
        ("Ja\u200cne", ["U+200C"]),  # ZWNJ
        ("\u200eJane\u200f", ["U+200E", "U+200F"]),  # LRM, RLM
        ("Jane\u061c", ["U+061C"]),  # Arabic letter mark
        ("\ufeffJane", ["U+FEFF"]),  # BOM
        ("Jane\U000e0041\U000e007f", ["U+E0041", "U+E007F"]),  # tag characters
        ("Ja\u2060ne", ["U+2060"]),  # word joiner
        ("Ja\u2061\u2062\u2063\u2064ne", ["U+2061", "U+2062", "U+2063", "U+2064"]),
        ("Ja\u00adne", ["U+00AD"]),  # soft hyphen
        ("\u115f\u1160", ["U+115F", "U+1160"]),  # Hangul choseong/jungseong fillers
        ("\u3164", ["U+3164"]),  # Hangul filler
        ("\uffa0", ["U+FFA0"]),  # halfwidth Hangul filler
        ("\u2800", ["U+2800"]),  # braille blank
        ("Ja\u034fne", ["U+034F"]),  # combining grapheme joiner
        ("\ufe0fJane", ["U+FE0F"]),  # variation selector with nothing to modify
        ("Jane \ufe0e", ["U+FE0E"]),  # ... after a space
        ("Jane\u180e", ["U+180E"]),  # Mongolian vowel separator
        ("Jane\u17b4", ["U+17B4"]),  # Khmer inherent vowel
        ("\u200b\u200b\u200b", ["U+200B"]),  # each reported once
    ],
)
def test_invisible_characters_are_reported(text: str, codes: list[str]) -> None:
    assert invisible_chars(text) == codes


@pytest.mark.parametrize(
    "text", ["Jane Doe", "Zoë", "李小龍", "José\u0301", "I ❤\ufe0f NY", "Ωmega"]
)
def test_visible_text_has_no_invisible_characters(text: str) -> None:
    assert invisible_chars(text) == []


@pytest.mark.parametrize(
    ("text", "letter", "letter_or_digit"),
    [
        ("Jane", True, True),
        ("李", True, True),
        ("42", False, True),
        ("---", False, False),
        ("\u0301\u0301", False, False),  # combining marks only
        ("\u3164", False, False),  # a filler is category Lo but not a letter to a reader
        ("🍊🍊", False, False),
    ],
)
def test_letters(text: str, letter: bool, letter_or_digit: bool) -> None:
    assert has_letter(text) is letter
    assert has_letter_or_digit(text) is letter_or_digit


def test_long_input_is_linear_enough() -> None:
    """No catastrophic backtracking: long words without a TLD, many dots."""
    assert find_link("a" * 20_000) is None
    assert find_link("a." * 10_000) is None
    assert find_link("a-" * 10_000 + ".com") is not None
