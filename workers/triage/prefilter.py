"""Skipping rules that cannot match, cheaply and safely.

Running a few hundred regular expressions over every message costs milliseconds; most of
them cannot match because a word they need is absent. For each pattern this finds a set
of literal strings of which every match must contain at least one (its "required
factors"); a substring test on the message rules the pattern out before the regular
expression runs. The analysis is conservative: when it cannot prove a factor, the pattern
always runs, so no rule is ever skipped that could have fired.
"""

from __future__ import annotations

import re
from re import _constants as sre  # type: ignore[attr-defined]
from re import _parser as sre_parse  # type: ignore[attr-defined]
from typing import Any

Factors = frozenset[str] | None
_MANDATORY_REPEATS = (sre.MAX_REPEAT, sre.MIN_REPEAT, getattr(sre, "POSSESSIVE_REPEAT", None))


def required_factors(pattern: re.Pattern[str]) -> Factors:
    """Lower-case strings one of which every match of ``pattern`` contains, or None."""
    try:
        parsed = sre_parse.parse(pattern.pattern, pattern.flags)
    except Exception:  # an unusual construct: never skip it
        return None
    found = _sequence(list(parsed))
    if not found or any(len(text) < 2 for text in found):
        return None
    return frozenset(text.lower() for text in found)


def _better(a: Factors, b: Factors) -> Factors:
    if a is None:
        return b
    if b is None:
        return a
    return a if min(map(len, a)) >= min(map(len, b)) else b


def _sequence(items: list[tuple[Any, Any]]) -> Factors:
    best: Factors = None
    run: list[str] = []

    def close_run() -> None:
        nonlocal best, run
        if run:
            best = _better(best, frozenset(["".join(run)]))
        run = []

    for op, value in items:
        if op is sre.LITERAL:
            run.append(chr(value))
            continue
        close_run()
        if op is sre.SUBPATTERN:
            best = _better(best, _sequence(list(value[-1])))
        elif op is sre.BRANCH:
            best = _better(best, _branch(value[1]))
        elif op in _MANDATORY_REPEATS and op is not None:
            low, _high, item = value
            if low >= 1:
                best = _better(best, _sequence(list(item)))
    close_run()
    return best


def _branch(alternatives: list[Any]) -> Factors:
    union: set[str] = set()
    for alternative in alternatives:
        found = _sequence(list(alternative))
        if not found:
            return None
        union |= found
    return frozenset(union)


def may_match(factors: Factors, present: frozenset[str]) -> bool:
    """Whether a pattern with ``factors`` can match a text containing the ``present`` ones."""
    return factors is None or not factors.isdisjoint(present)


class FactorScan:
    """Which of a rule set's factors a text contains, worked out once per text."""

    def __init__(self, factor_sets: list[Factors]) -> None:
        words: set[str] = set()
        for factors in factor_sets:
            words |= factors or set()
        self.words = tuple(sorted(words))
        self._last: tuple[str, frozenset[str]] = ("", frozenset())

    def present(self, text: str) -> frozenset[str]:
        last_text, last = self._last
        if text is last_text or text == last_text:
            return last
        found = frozenset(word for word in self.words if word in text)
        self._last = (text, found)
        return found
