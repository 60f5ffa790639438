"""What an SMS says, as the guard reads it: normalised text for banned phrases, and the links and
phone numbers it carries.

Matching raw substrings lets a zero-width space ("act\u200bnow"), a full-width letter or a
Cyrillic "о" through. So both the text and each banned phrase are reduced to one skeleton:

1. Unicode NFKC (full-width and styled letters become plain ones), then NFD;
2. format characters (category Cf: zero-width spaces and joiners, bidi marks, soft hyphens)
   and combining marks (Mn: accents) are dropped;
3. every non-ASCII character is folded to the ASCII letter it looks like, from Unicode's
   confusables data (TR39, through the maintained `confusable_homoglyphs` package): the
   Cyrillic "о" and the Greek "ο" become "o"; the ASCII look-alikes "0"/"o" and "1"/"I"/"|"/"l"
   ("i" too: "I" and "l" look alike, and case is folded) are folded to one of each;
4. white space is removed (a zero-width character between two words hides the space that
   separates them, so phrases are compared without spaces), then case is folded.

Like the plain substring match it replaces, this also matches inside longer words ("contact
now" contains "act now"): a refused message is reworded, a sent one cannot be taken back.

Links and numbers are looked for in the NFKC text with format characters removed (folding
would turn "l" into "i" in a host name). A link is a URL with a scheme, a `www.` host, or a
bare host name with a common top-level domain; its host must be on the policy's allow-list
(or a subdomain of one) or appear in an active catalogue item's text. A phone number is a run
of at least 7 digits (spaces, dots, dashes and brackets allowed between them, ISO dates
excluded); it must be on the allow-list or in a catalogue item's text.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable
from typing import Any

# Top-level domains a bare host name ("bit.ly", "shop.example.com") is recognised by; links with
# a scheme or "www." are recognised whatever their domain.
COMMON_TLDS = [
    "com",
    "net",
    "org",
    "info",
    "biz",
    "io",
    "co",
    "ly",
    "me",
    "app",
    "shop",
    "store",
    "online",
    "site",
    "xyz",
    "link",
    "click",
    "top",
    "club",
    "live",
    "us",
    "uk",
    "de",
    "fr",
    "es",
    "it",
    "nl",
    "ca",
    "au",
    "in",
    "ru",
    "cn",
    "jp",
    "br",
    "eu",
    "tv",
    "gg",
    "to",
    "sh",
    "ai",
]
_LINK = re.compile(
    r"(?:https?://|www\.)[^\s/<>\"']+"
    r"|\b(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+(?:" + "|".join(COMMON_TLDS) + r")\b(?![.-]?\w)",
    re.IGNORECASE,
)
_NUMBER = re.compile(r"(?<![\w+])\+?\d[\d\s().-]{5,}\d(?!\w)")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_SPACE = re.compile(r"\s+")
MIN_PHONE_DIGITS = 7


# ASCII characters that are look-alikes of each other: one representative each.
ASCII_FOLD = {"0": "o", "1": "l", "I": "l", "i": "l", "|": "l"}


def _pick(glyphs: Iterable[str]) -> str | None:
    """The plain letter (or digit) a look-alike stands for, preferring lower-case letters."""
    plain = [g for g in glyphs if len(g) == 1 and g.isascii() and g.isalnum()]
    for group in ([g for g in plain if g.islower()], [g for g in plain if g.isupper()], plain):
        if group:
            return min(group)
    return None


@functools.cache
def _fold_table() -> dict[int, str]:
    """Non-ASCII character -> the ASCII character it looks like (built once, about 10k entries).

    Direct look-alikes only, never their look-alikes in turn: closing the relation over the
    whole table would chain "t" to "r" through intermediate glyphs.
    """
    from confusable_homoglyphs.utils import load

    table: dict[int, str] = {}
    for ch, glyphs in load("confusables.json").items():
        if len(ch) != 1 or ch.isascii():
            continue
        target = _pick(g["c"].strip("\u200e\u200f") for g in glyphs)
        if target is not None:
            table[ord(ch)] = ASCII_FOLD.get(target, target)
    table.update({ord(k): v for k, v in ASCII_FOLD.items()})
    return table


def _visible(text: str) -> str:
    """NFKC without format characters: what a reader of the message sees."""
    return "".join(ch for ch in unicodedata.normalize("NFKC", text) if unicodedata.category(ch) != "Cf")


def skeleton(text: str) -> str:
    """The form banned phrases are matched in (see the module docstring)."""
    decomposed = unicodedata.normalize("NFD", unicodedata.normalize("NFKC", text))
    kept = "".join(ch for ch in decomposed if unicodedata.category(ch) not in ("Cf", "Mn"))
    return _SPACE.sub("", kept.translate(_fold_table())).casefold().translate(_fold_table())


def banned_in(text: str, phrases: Iterable[str]) -> list[str]:
    body = skeleton(text)
    return [p for p in phrases if (folded := skeleton(p)) and folded in body]


def link_hosts(text: str) -> list[str]:
    """The host of every link in `text`, lower-case, in order of appearance."""
    hosts = []
    for match in _LINK.finditer(_visible(text)):
        link = re.sub(r"^https?://", "", match.group(0), flags=re.IGNORECASE)
        host = re.split(r"[/:?#]", link, maxsplit=1)[0].rstrip(".").lower()
        hosts.append(host.removeprefix("www."))
    return hosts


def phone_numbers(text: str) -> list[str]:
    """Every phone-like number in `text`, as its digits (a leading + kept)."""
    found = []
    for match in _NUMBER.finditer(_visible(text)):
        raw = match.group(0).strip()
        if _ISO_DATE.match(raw):
            continue
        digits = re.sub(r"\D", "", raw)
        if len(digits) >= MIN_PHONE_DIGITS:
            found.append(("+" if raw.startswith("+") else "") + digits)
    return found


def digits_of(number: str) -> str:
    return re.sub(r"\D", "", number)


def host_allowed(host: str, allowed: Iterable[str]) -> bool:
    return any(host == d.lower() or host.endswith("." + d.lower()) for d in allowed)


CATALOGUE_TEXTS = r"""
SELECT title || ' ' || description AS text FROM assets
WHERE active AND (lower(title || ' ' || description) LIKE ANY(%(hosts)s)
                  OR (%(numbers)s AND title || ' ' || description ~ '\d[\d\s().-]{5,}\d'))
"""


async def catalogue_refs(conn: Any, hosts: list[str], numbers: list[str]) -> frozenset[str]:
    """The hosts and numbers (digits) among these that an active catalogue item's text contains."""
    if not hosts and not numbers:
        return frozenset()
    params = {"hosts": [f"%{h}%" for h in hosts], "numbers": bool(numbers)}
    rows = await (await conn.execute(CATALOGUE_TEXTS, params)).fetchall()
    found: set[str] = set()
    for row in rows:
        text = row["text"] if isinstance(row, dict) else row[0]
        found.update(link_hosts(text))
        found.update(digits_of(n) for n in phone_numbers(text))
    return frozenset(found & ({*hosts} | {digits_of(n) for n in numbers}))


def unknown_refs(
    text: str, allowed_links: Iterable[str], allowed_numbers: Iterable[str], known: frozenset[str]
) -> tuple[list[str], list[str]]:
    """The links (hosts) and phone numbers in `text` that neither the allow-lists nor the catalogue know."""
    allowed_digits = {digits_of(n) for n in allowed_numbers}
    links = [h for h in link_hosts(text) if h not in known and not host_allowed(h, allowed_links)]
    numbers = [n for n in phone_numbers(text) if digits_of(n) not in known | allowed_digits]
    return links, numbers
