"""Free text that reaches an email: links, invisible characters, letters (pure functions).

A name or an address line is printed into a receipt sent from the shop's own domain to any
address a visitor types in. Mail clients turn URLs, `www.` names, bare domain names and email
addresses into links, so a field holding one turns the shop into a spam relay. `find_link`
finds them, also through the usual disguises:

* Unicode compatibility forms (NFKC: fullwidth `ｅｖｉｌ．ｃｏｍ`, `＠`, `：／／`), ideographic
  full stops (`。`, `｡`) and invisible characters inside a token (`evil\u200b.com`);
* bracketed separators: `evil[.]com`, `evil(dot)com`, `jane[at]evil.com`, `hxxp[:]//`;
* spelled-out or spaced separators: `evil dot com`, `evil . com` (common TLDs only);
* any scheme (`http://`, `hxxp://`, `ftp://`, `x-y+z://`) and linkified schemes without
  slashes (`mailto:`, `javascript:`, `data:` ...).

What stays allowed (tested): abbreviations and numbers such as `St.`, `Apt. 4`, `No.5`,
`J.R.R. Tolkien`, `P.O. Box 12`, `1.5`, `U.S.Army`: a "domain" needs a final label that is a
top-level domain from IANA's list (`chalicelib/data/tlds.txt`, or a reserved name like
`.example`/`.test`), and when every label before it is a single character (initials) only a
common spam TLD (`t.co`, `x.com`) counts. docs/guard.md lists the decisions.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from dataclasses import dataclass
from pathlib import Path

TLD_FILE = Path(__file__).resolve().parent / "data" / "tlds.txt"

# Reserved / special-use names (RFC 2606, RFC 6761, RFC 7686): not in the root zone, but a
# reader still sees a link in "evil.example".
SPECIAL_TLDS = frozenset({"example", "test", "invalid", "localhost", "local", "onion", "internal"})

# TLDs that count even after single-character labels (`t.co`, `x.com`), and on their own in
# the spaced/spelled view (`evil dot com`). The link-shortener and spam favourites.
COMMON_TLDS = frozenset(
    "com net org info biz io co me ly to gg ai app dev xyz top site online club shop store "
    "live link click vip win bid loan icu buzz cam uk us ru cn de su tk ml ga cf gq pw cc tv ws "
    "be in".split()
)

# Linkified schemes that don't need `//`.
_BARE_SCHEMES = (
    "mailto",
    "javascript",
    "vbscript",
    "data",
    "file",
    "callto",
    "skype",
    "whatsapp",
    "tg",
    "magnet",
    "bitcoin",
    "sip",
    "xmpp",
)

# Invisible characters that are not category Cf (which is refused as a whole): Hangul fillers,
# the braille blank, the combining grapheme joiner, Khmer inherent vowels, the Mongolian vowel
# separator (Cf in new Unicode versions, Mn in old ones).
INVISIBLE_EXTRA = frozenset(
    "\u115f\u1160\u3164\uffa0\u2800\u034f\u17b4\u17b5\u180e"
    + "".join(map(chr, range(0x2060, 0x2065)))
)
_VARIATION_SELECTORS = frozenset(
    [chr(c) for c in range(0xFE00, 0xFE10)] + [chr(c) for c in range(0xE0100, 0xE01F0)]
)

_IDEOGRAPHIC_DOTS = str.maketrans({"\u3002": ".", "\uff61": ".", "\u2024": ".", "\ufe52": "."})
_OPEN, _CLOSE = r"[\[\(\{<]", r"[\]\)\}>]"
_BRACKET_DOT = re.compile(rf"\s*{_OPEN}\s*(?:\.|dot)\s*{_CLOSE}\s*")
_BRACKET_AT = re.compile(rf"\s*{_OPEN}\s*(?:@|at)\s*{_CLOSE}\s*")
_BRACKET_COLON = re.compile(rf"{_OPEN}\s*:\s*{_CLOSE}")
_SPACED_DOT = re.compile(r"\s+(?:dot|\.)\s+")

_SCHEME = re.compile(r"(?<![\w+.-])[a-z][a-z0-9+.-]{0,30}\s*:\s*[/\\]{2}")
_BARE_SCHEME = re.compile(rf"(?<![\w+.-])(?:{'|'.join(_BARE_SCHEMES)})\s*:\s*[^\s:]")
_WWW = re.compile(r"(?<![\w-])www\d{0,3}\s*\.")
_EMAIL = re.compile(r"(?<![\w.+'-])[\w.+'-]+@[^\W_][\w-]*(?:\.[\w-]+)+")
_IPV4 = re.compile(r"(?<![\w.])\d{1,3}(?:\.\d{1,3}){3}(?![\w.]*\w)")
_DOMAIN = re.compile(
    r"(?<![\w.@-])((?:[^\W_][\w-]*\.)+)([^\W\d_]{2,63}|xn--[a-z0-9-]{1,59})(?![\w-])"
)

_tlds: frozenset[str] | None = None
_tlds_lock = threading.Lock()


@dataclass(frozen=True)
class Finding:
    """What `find_link` found. kind: "url" | "www" | "email" | "ip" | "domain".
    `token` is attacker-controlled text: never log it."""

    kind: str
    token: str


def tlds() -> frozenset[str]:
    """IANA's top-level domains, lower-case (read once per process)."""
    global _tlds
    if _tlds is None:
        with _tlds_lock:
            if _tlds is None:
                lines = TLD_FILE.read_text(encoding="ascii").splitlines()
                _tlds = frozenset(
                    line.strip().lower() for line in lines if line.strip() and line[0] != "#"
                )
    return _tlds


def is_invisible(ch: str) -> bool:
    """A format character (Cf: ZWSP, ZWJ/ZWNJ, LRM/RLM/ALM, BOM, soft hyphen, tags...) or
    another character that draws nothing (Hangul fillers, braille blank, CGJ...)."""
    return unicodedata.category(ch) == "Cf" or ch in INVISIBLE_EXTRA


def invisible_chars(text: str) -> list[str]:
    """The invisible characters in `text` as "U+XXXX" (each once, in order of appearance).

    A variation selector counts as invisible unless it follows a visible character it can
    modify (so `❤️` passes, a selector at the start, after a space or after another selector
    does not)."""
    found: list[str] = []
    prev = ""
    for ch in text:
        bad = is_invisible(ch)
        if not bad and ch in _VARIATION_SELECTORS:
            bad = not prev or prev.isspace() or is_invisible(prev) or prev in _VARIATION_SELECTORS
        if bad:
            code = f"U+{ord(ch):04X}"
            if code not in found:
                found.append(code)
        prev = ch
    return found


def has_letter(text: str) -> bool:
    """At least one letter (category L) that is not an invisible filler."""
    return any(unicodedata.category(ch)[0] == "L" and not is_invisible(ch) for ch in text)


def has_letter_or_digit(text: str) -> bool:
    return has_letter(text) or any(unicodedata.category(ch) == "Nd" for ch in text)


def _view(text: str) -> str:
    """The text as a link detector should read it: NFKC, case-folded, invisible characters
    removed, ideographic dots made dots, bracketed separators undone."""
    s = unicodedata.normalize("NFKC", text)
    s = "".join(ch for ch in s if not is_invisible(ch) and ch not in _VARIATION_SELECTORS)
    s = s.casefold().translate(_IDEOGRAPHIC_DOTS)
    s = _BRACKET_COLON.sub(":", s)
    s = _BRACKET_DOT.sub(".", s)
    return _BRACKET_AT.sub("@", s)


def _is_tld(label: str) -> bool:
    if label in SPECIAL_TLDS or label in tlds():
        return True
    if label.isascii():
        return False
    try:
        return label.encode("idna").decode("ascii") in tlds()
    except UnicodeError:
        return False


def _domain(view: str, common_only: bool) -> str | None:
    for m in _DOMAIN.finditer(view):
        labels, tld = m.group(1).rstrip(".").split("."), m.group(2)
        if common_only and tld not in COMMON_TLDS:
            continue
        if not _is_tld(tld):
            continue
        if all(len(label) == 1 for label in labels) and tld not in COMMON_TLDS:
            continue  # initials: P.O.Box, U.S.Army
        return m.group(0)
    return None


def find_link(text: str) -> Finding | None:
    """The first URL, `www.` name, email address, IPv4 address or domain name in `text`."""
    if not text:
        return None
    view = _view(text)
    for kind, pattern in (
        ("url", _SCHEME),
        ("url", _BARE_SCHEME),
        ("www", _WWW),
        ("email", _EMAIL),
        ("ip", _IPV4),
    ):
        m = pattern.search(view)
        if m:
            return Finding(kind, m.group(0))
    token = _domain(view, common_only=False)
    if token is None:
        token = _domain(_SPACED_DOT.sub(".", view), common_only=True)
    return Finding("domain", token) if token is not None else None
