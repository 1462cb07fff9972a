"""Preparing a message for the rules, and deciding whether a match is negated.

Residents write in texting style, with typos and shouting; the rules are written for
plain lower-case English. So text is lower-cased, curly quotes straightened, and common
texting spellings mapped to words (``wiv`` -> ``with``). A match is negated when a
negation word stands in the few words before it, in the same clause: "there is no smell
of gas" does not fire the gas rule.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from workers.triage.prefilter import trie

_WORD = re.compile(r"[a-z0-9']+")
_CLAUSE_BREAK = re.compile(r"[.!?;:\n]|\bbut\b|\bhowever\b|\balthough\b|,\s*(and|so)\b")
_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "`": "'"})
NEGATION_WINDOW = 4


def prepare(text: str, spellings: Mapping[str, str], finder: re.Pattern[str] | None = None) -> str:
    """Lower-case ``text`` and map texting spellings word by word, keeping punctuation.

    ``finder``, from ``spelling_finder(spellings)``, finds only the words to replace,
    instead of calling back for every word of the text.
    """
    lowered = text.translate(_QUOTES).lower()
    if not spellings:
        return lowered
    if finder is not None:
        return finder.sub(lambda m: spellings[m.group(0)], lowered)
    return _WORD.sub(lambda m: spellings.get(m.group(0), m.group(0)), lowered)


def spelling_finder(spellings: Mapping[str, str]) -> re.Pattern[str]:
    """Whole words (runs of ``_WORD``'s characters) that ``spellings`` maps: a spelling
    that is not such a run never equals one, as in ``prepare`` without it. At most one word
    is the whole run, so trying them as a trie finds what trying them in turn finds."""
    words = sorted(word for word in spellings if _WORD.fullmatch(word))
    if not words:
        return re.compile(r"(?!)")  # matches nothing
    return re.compile(r"(?<![a-z0-9'])(?:" + trie(words) + r")(?![a-z0-9'])")


def is_negated(text: str, start: int, negations: Iterable[str]) -> bool:
    """True when a negation word is among the few words before ``start`` in its clause."""
    before = text[max(0, start - 80) : start]
    breaks = list(_CLAUSE_BREAK.finditer(before))
    if breaks:
        before = before[breaks[-1].end() :]
    words = _WORD.findall(before)[-NEGATION_WINDOW:]
    joined = " ".join(words)
    for negation in negations:
        if " " in negation:
            if negation in joined:
                return True
        elif negation in words:
            return True
    return False


def quote(text: str, start: int, end: int, width: int = 60) -> str:
    """The words that fired a rule, trimmed for a reason line."""
    fragment = " ".join(text[start:end].split())
    return fragment if len(fragment) <= width else fragment[: width - 1] + "…"
