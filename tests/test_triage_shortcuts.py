"""The short cuts triage takes find exactly what the plain way finds.

Date patterns run compiled for ASCII on ASCII text, look for their needles once per text,
and a pattern set tries a pattern only where it can start; spellings and factors are
found with a trie. Each is checked here against the plain definition.
"""

from __future__ import annotations

import random
import re
from datetime import date

from tests.test_triage import _eval_texts, _word_soup
from tests.test_triage_timeline import RECEIVED, RULES, SENTENCES, started
from workers.triage.prefilter import _before, trie
from workers.triage.timeline import (
    _ASCII_PATTERNS,
    _ASCII_SINCE_TYPOS,
    _SINCE_TYPOS,
    NEEDLES,
    PATTERNS,
    _is_plain,
    find_dates,
)

PHRASES = [
    "for the last {n} weeks",
    "over the past {n} months",
    "in the last {n} days",
    "{month} {n}",
    "{n} {month}, 2025",
    "{month} 2024",
    "{month}, 2023",
    "since {month}",
    "this morning",
    "this afternoon",
    "this evening",
    "right now",
    "just now",
    "for {n} minutes",
    "for an hour",
    "for {n} hrs",
    "all night",
    "all week",
    "the past year",
    "{n}/{n}/2024",
    "{n}.{n}.24",
    "2025-0{n}-1{n}",
    "on the {n}th",
    "last {month}",
    "sinse {month}",
    "snce last week",
    "a couple of weeks ago",
]
MONTHS = ["january", "feb", "march", "may", "june", "sept", "oct", "december"]


def _date_soup(count: int) -> list[str]:
    """Date phrases run together with the words around them in real messages."""
    rng = random.Random(5)
    pieces = [piece for text in _eval_texts() for piece in text.lower().split()]
    joins = [" ", " ", ". ", ", ", "\n", "!", " and ", " but "]
    texts = []
    for _ in range(count):
        parts = []
        for _ in range(12):
            if rng.random() < 0.4:
                phrase = rng.choice(PHRASES)
                parts.append(phrase.format(n=rng.randint(1, 12), month=rng.choice(MONTHS)))
            else:
                parts.append(rng.choice(pieces))
        texts.append("".join(part + rng.choice(joins) for part in parts))
    return texts


def _texts() -> list[str]:
    texts = [RULES.prepare(text) for text in _eval_texts()]
    texts += [RULES.prepare(text) for text in SENTENCES]
    return texts + _word_soup(60) + _date_soup(300)


def test_date_patterns_compiled_for_ascii_match_the_same_on_plain_text() -> None:
    plain = [text for text in _texts() if _is_plain(text)]
    assert len(plain) > 500
    pairs = [
        *zip(PATTERNS, _ASCII_PATTERNS, strict=True),
        (("", _SINCE_TYPOS), ("", _ASCII_SINCE_TYPOS)),
    ]
    matched = 0
    for text in plain:
        for (kind, pattern), (twin_kind, twin) in pairs:
            assert kind == twin_kind
            found = [(m.span(), m.groups()) for m in twin.finditer(text)]
            assert found == [(m.span(), m.groups()) for m in pattern.finditer(text)], (kind, text)
            matched += bool(found)
    assert matched > 1000


def test_text_that_is_not_plain_keeps_the_unicode_patterns() -> None:
    assert not _is_plain("no heating for ٢ weeks")
    assert not _is_plain("café closed since march")
    # Unicode counts the information separators as space, ASCII does not.
    text = "the pipe burst on the 5th\x1c."
    assert not _is_plain(text)
    unicode, ascii = dict(PATTERNS)["day_of_month"], dict(_ASCII_PATTERNS)["day_of_month"]
    assert unicode.search(text) and not ascii.search(text)
    assert [found.day for found in find_dates(text, RECEIVED)] == [date(2026, 11, 5)]
    assert started("no heating for ٢ weeks") == date(2026, 11, 13)


def test_every_date_match_contains_one_of_its_needles() -> None:
    checked = 0
    for text in _texts():
        for kind, pattern in PATTERNS:
            for match in pattern.finditer(text):
                checked += 1
                assert any(needle in match.group(0) for needle in NEEDLES[kind]), (kind, text)
    assert checked > 2000


def test_positions_before_places_are_listed_once_in_order() -> None:
    rng = random.Random(3)
    for _ in range(5000):
        places = sorted(rng.randrange(-5, 80) for _ in range(rng.randint(1, 6)))
        lead = rng.randint(0, 30)
        expected = sorted({place - back for place in places for back in range(lead + 1)})
        assert _before(places, lead) == expected, (places, lead)


def test_a_trie_tries_longer_words_first_then_shorter_ones() -> None:
    """As an alternation of the words, longest first, whatever must follow them."""
    rng = random.Random(7)
    for _ in range(300):
        words = sorted({"".join(rng.choices("abc", k=rng.randint(1, 4))) for _ in range(6)})
        plain = "|".join(sorted(words, key=len, reverse=True))
        for follow in ("", "(?!a)", "(?=b)", "c"):
            by_trie = re.compile(f"(?:{trie(words)}){follow}")
            in_turn = re.compile(f"(?:{plain}){follow}")
            for _ in range(10):
                text = "".join(rng.choices("abc ", k=12))
                assert by_trie.findall(text) == in_turn.findall(text), (words, follow, text)
