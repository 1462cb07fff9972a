"""Skipping rules that cannot match, cheaply and safely.

Running a few hundred regular expressions over every message costs milliseconds; most of
them cannot match because a word they need is absent. For each pattern this finds a set
of literal strings of which every match must contain at least one (its "required
factors"); a substring test on the message rules the pattern out before the regular
expression runs. The analysis is conservative: when it cannot prove a factor, the pattern
always runs, so no rule is ever skipped that could have fired.

:class:`PatternSet` takes the analysis further, and still finds exactly the matches a
plain scan finds:

- a pattern usually needs several words (``\\b(make|made|...) (a )?complaint`` needs a
  verb *and* "complaint"), so it runs only when every one of them is present;
- each needed word starts at most a known number of characters into any match (its
  "lead"), and many patterns start with one of a few strings (their "anchors"), so a
  match can only begin at a few places, found with substring searches (none: the
  pattern is not run at all). Trying the pattern at those places replaces a scan of the
  whole text with a long alternation; matching at a position sees the text around it
  (word boundaries, lookbehinds) as a scan does.

A text's words are found in one pass of a regular expression built as a trie of them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
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


# Shorter strings ("th", "ed") are in nearly every text: they are not worth looking for.
_USEFUL_LENGTH = 4
# One of ``words`` occurs in every match, starting at most ``lead`` characters after the
# match's start (None: no bound is known).
Requirement = tuple[frozenset[str], int | None]


def requirements(pattern: re.Pattern[str]) -> tuple[Requirement, ...]:
    """Every set of lower-case strings of which each match of ``pattern`` contains one.

    The parts of a sequence all take part in every match, so each literal run, each
    group, each alternation (one set per alternative, as ``required_factors`` chooses)
    and the first turn of each repeat that must run at least once adds a requirement.
    Only plain strings are kept (ASCII, or characters without case), for which a
    substring test on lower-case text is exact.
    """
    try:
        parsed = sre_parse.parse(pattern.pattern, pattern.flags)
    except Exception:  # an unusual construct: nothing is required
        return ()
    found: list[Requirement] = []
    for words, lead in _requirements(parsed):
        lowered = frozenset(word.lower() for word in words)
        if all(len(word) >= 2 and _plain(word) for word in lowered):
            found.append((lowered, lead if lead < sre.MAXREPEAT else None))
    return tuple(dict.fromkeys(found))


def _plain(word: str) -> bool:
    return word.isascii() or all(char.lower() == char.upper() for char in word)


def _requirements(items: Any) -> list[tuple[frozenset[str], int]]:
    found: list[tuple[frozenset[str], int]] = []
    run: list[str] = []
    run_start = 0

    def before(index: int) -> int:
        """The most characters ``items[:index]`` can match."""
        return int(items[:index].getwidth()[1]) if index else 0

    def close_run() -> None:
        nonlocal run
        if run:
            found.append((frozenset(["".join(run)]), before(run_start)))
        run = []

    for index, (op, value) in enumerate(items):
        if op is sre.LITERAL:
            if not run:
                run_start = index
            run.append(chr(value))
            continue
        close_run()
        inner: list[tuple[frozenset[str], int]] = []
        if op is sre.SUBPATTERN:
            inner = _requirements(value[-1])
        elif op is sre.BRANCH:
            inner = _alternatives(value[1])
        elif op in _MANDATORY_REPEATS and op is not None and value[0] >= 1:
            inner = _requirements(value[2])
        if inner:
            offset = before(index)
            found.extend((words, lead + offset) for words, lead in inner)
    close_run()
    return found


def _alternatives(alternatives: list[Any]) -> list[tuple[frozenset[str], int]]:
    """An alternation's requirement: the union of each alternative's best set, as
    ``_branch`` makes it, with the largest of their leads."""
    union: set[str] = set()
    lead = 0
    for alternative in alternatives:
        best = _sequence(list(alternative))
        if not best:
            return []
        union |= best
        # The best set is one of the alternative's requirements (it is chosen among them).
        leads = [found for words, found in _requirements(alternative) if words == best]
        lead = max(lead, min(leads, default=sre.MAXREPEAT))
    return [(frozenset(union), lead)]


_ANCHOR_LENGTH = 6  # characters of a match's start worth knowing
_MOST_ANCHORS = 256
_DIGITS = "0123456789"
# (string, complete): a match of the part starts with the string, or is exactly it
_Starts = list[tuple[str, bool]]


def anchors(pattern: re.Pattern[str]) -> frozenset[str] | None:
    """Lower-case strings one of which every match of ``pattern`` starts with, or None.

    Literals, small character classes, optional parts and alternations are expanded up to
    a few characters; ``\\d`` counts as the ASCII digits, which the caller checks are
    the only digits in the text.
    """
    try:
        parsed = sre_parse.parse(pattern.pattern, pattern.flags)
    except Exception:  # an unusual construct: no anchors
        return None
    starts = _starts(parsed)
    if any(not text for text, _complete in starts):
        return None
    return frozenset(text for text, _complete in starts)


def _starts(items: Any) -> _Starts:
    """How a match of the sequence ``items`` can start: strings marked complete when they
    are the whole match, so that what follows the sequence may extend them."""
    found: _Starts = [("", True)]
    for op, value in items:
        if all(not complete or len(text) >= _ANCHOR_LENGTH for text, complete in found):
            break  # long enough: the rest of the sequence is not looked at
        options = _options(op, value)
        if options is None or len(found) * len(options) > _MOST_ANCHORS:
            break
        found = list(
            dict.fromkeys(
                (text + more, more_complete) if complete else (text, False)
                for text, complete in found
                for more, more_complete in options
            )
        )
    else:
        return found
    return [(text, False) for text, _complete in found]


def _options(op: Any, value: Any) -> _Starts | None:
    """How one part of a pattern can start, or None when it cannot be told."""
    if op is sre.LITERAL:
        char = chr(value).lower()
        return [(char, True)] if _plain(char) else None
    if op in (sre.AT, sre.ASSERT, sre.ASSERT_NOT):  # these match no characters
        return [("", True)]
    if op is sre.IN:
        chars = _class_chars(value)
        return None if chars is None else [(char, True) for char in chars]
    if op is sre.SUBPATTERN:
        return _starts(value[-1])
    if op is sre.BRANCH:
        return list(dict.fromkeys(start for branch in value[1] for start in _starts(branch)))
    if op in _MANDATORY_REPEATS and op is not None:
        low, high, item = value
        starts = _starts(item)
        once = low <= 1 and high == 1
        repeated = [(text, complete and once) for text, complete in starts]
        return ([("", True)] if low == 0 else []) + repeated
    return None


def _class_chars(items: list[tuple[Any, Any]]) -> str | None:
    """The characters a small character class matches (lower-case), or None."""
    if items == [(sre.CATEGORY, sre.CATEGORY_DIGIT)]:
        return _DIGITS
    chars: set[str] = set()
    for op, value in items:
        if op is sre.LITERAL:
            chars.add(chr(value).lower())
        elif op is sre.RANGE and value[1] - value[0] < 16:
            chars.update(chr(code).lower() for code in range(value[0], value[1] + 1))
        else:
            return None
    return "".join(sorted(chars)) if all(map(_plain, chars)) else None


class FactorScan:
    """Which of a rule set's factors a text contains, worked out once per text.

    One pass of a regular expression built as a trie of the factors finds, at each
    position, the longest factor starting there; the factors starting at a position are
    that one's prefixes among the factors, so their union over the positions is exactly
    the set of factors the text contains (``present_by_search`` is the plain definition).
    """

    def __init__(self, factor_sets: Iterable[Factors]) -> None:
        words: set[str] = set()
        for factors in factor_sets:
            words |= factors or set()
        self.words = tuple(sorted(words))
        self._longest = re.compile(f"(?=({trie(self.words)}))") if words else None
        self._prefixes = {
            word: frozenset(word[:end] for end in range(1, len(word) + 1) if word[:end] in words)
            for word in self.words
        }
        self._last: tuple[str, frozenset[str]] = ("", frozenset())

    def present(self, text: str) -> frozenset[str]:
        last_text, last = self._last
        if text is last_text or text == last_text:
            return last
        found: frozenset[str] = frozenset()
        if self._longest is not None:
            longest = set(self._longest.findall(text))
            found = found.union(*map(self._prefixes.__getitem__, longest))
        self._last = (text, found)
        return found

    def present_by_search(self, text: str) -> frozenset[str]:
        """The factors ``text`` contains, one substring test each (what ``present`` finds)."""
        return frozenset(word for word in self.words if word in text)


def trie(words: Sequence[str]) -> str:
    """A regular expression matching the longest of ``words`` that starts where it is tried
    (the next longest if what follows rules that out, and so on)."""
    root: dict[str, Any] = {}
    for word in words:
        node = root
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}

    def emit(node: dict[str, Any]) -> str:
        branches = [re.escape(char) + emit(child) for char, child in node.items() if char]
        if "" in node:
            # Last: a longer word is tried before this node's own word ends the match. An
            # empty alternative costs less than making the group optional.
            branches.append("")
        if len(branches) <= 1:
            return "".join(branches)
        return "(?:" + "|".join(branches) + ")"

    return emit(root)


_MOST_TRIES = 40  # positions tried one by one; beyond this, one scan from the first
_MOST_GROUPS = 4096  # sequences of patterns remembered by a PatternSet
_OTHER_DIGIT = re.compile(r"(?![0-9])\d")  # what \d matches besides the ASCII digits


class _Plan:
    """How one pattern is run: its requirements, or the plain factor test as a fallback."""

    def __init__(self, pattern: re.Pattern[str]) -> None:
        self.pattern = pattern
        self.factors = required_factors(pattern)
        # Short strings make weak tests that cost a lot to look for: only the factors keep
        # them (the factors are every pattern's first test; see ``required_factors``).
        self.requirements = tuple(
            (words, lead)
            for words, lead in requirements(pattern)
            if words == self.factors or min(map(len, words)) >= _USEFUL_LENGTH
        )
        # The requirements prove a skip exact only for plain factors; others keep the test.
        self.fallback = self.factors is not None and not all(map(_plain, self.factors))
        # The requirement looked up first: the one with the longest words, likely the rarest.
        self.key = max(
            (words for words, _lead in self.requirements),
            key=lambda words: min(map(len, words)),
            default=None,
        )
        starts = anchors(pattern) or frozenset()
        # Useful when every match starts with a few letters, or with no letter at all (a
        # digit, a pound sign): strings that are not everywhere in a text.
        if not all(
            len(text) >= _USEFUL_LENGTH - 1 or not any(map(str.isalpha, text)) for text in starts
        ):
            starts = frozenset()
        self.long_anchors = frozenset(text for text in starts if len(text) > 1)
        self.short_anchors = frozenset(text for text in starts if len(text) == 1)
        self.anchored = bool(starts)
        self.digit_anchors = any(char in _DIGITS for text in starts for char in text)
        # Every match starts with one of the long anchors: a text without them has none.
        self.long_starts = bool(self.long_anchors) and not self.short_anchors

    def words(self) -> Iterator[frozenset[str]]:
        if self.factors is not None:
            yield self.factors
        for words, _lead in self.requirements:
            yield words
        yield self.long_anchors


class _Reading:
    """What a ``PatternSet`` worked out about one text; replaced whole for the next one, so
    that threads sharing the set each see a consistent reading."""

    __slots__ = ("ascii_digits", "exact", "live", "places", "present", "text")

    def __init__(
        self, text: str, present: frozenset[str], live: dict[int, _Plan], exact: bool
    ) -> None:
        self.text = text
        self.present = present
        self.live = live
        self.exact = exact
        self.ascii_digits = text.isascii() or _OTHER_DIGIT.search(text) is None
        self.places: dict[frozenset[str], list[int]] = {}

    def where(self, words: frozenset[str]) -> list[int]:
        """Every position where one of ``words`` starts, in order."""
        places = self.places.get(words)
        if places is None:
            places = []
            for word in words:
                at = self.text.find(word)
                while at >= 0:
                    places.append(at)
                    at = self.text.find(word, at + 1)
            places.sort()
            self.places[words] = places
        return places


def _is_exact(text: str) -> bool:
    """Whether a substring test finds every place where a case-insensitive pattern's
    plain strings can match ``text``: it is lower-case, without the two lower-case letters
    that also match an ASCII one (dotless i and long s)."""
    return text == text.lower() and "ı" not in text and "ſ" not in text


class PatternSet:
    """Patterns searched only where they can match (see the module's docstring).

    ``finditer(pattern, text)`` gives exactly what ``pattern.finditer(text)`` gives. It
    works on prepared text, lower-case, where substring tests are exact; on any other
    text it falls back to the plain factor test. The patterns that can match are worked
    out once per text, from the words it contains.
    """

    def __init__(self, patterns: Iterable[re.Pattern[str]]) -> None:
        # By identity: hashing a compiled pattern hashes its whole program.
        self._plans: dict[int, _Plan] = {}
        for pattern in patterns:
            self._plans.setdefault(id(pattern), _Plan(pattern))
        self.scan = FactorScan(words for plan in self._plans.values() for words in plan.words())
        self._always: list[_Plan] = []
        self._by_word: dict[str, list[_Plan]] = {}
        for plan in self._plans.values():
            if plan.fallback or plan.key is None:
                self._always.append(plan)
            else:
                for word in plan.key:
                    self._by_word.setdefault(word, []).append(plan)
        # Plans whose every match starts with a long anchor, by anchor.
        self._by_anchor: dict[str, list[_Plan]] = {}
        for plan in self._plans.values():
            if plan.long_starts:
                for word in plan.long_anchors:
                    self._by_anchor.setdefault(word, []).append(plan)
        self._reading = _Reading("", frozenset(), {}, True)
        # Sequences of patterns asked about, by identity: the identities of their patterns,
        # and whether all of them are in the set.
        self._groups: dict[int, tuple[Sequence[re.Pattern[str]], frozenset[int], bool]] = {}

    def candidates(self, patterns: Sequence[re.Pattern[str]], text: str) -> list[re.Pattern[str]]:
        """Those of ``patterns`` that may match ``text``, in their order."""
        reading = self._read(text)
        group = self._groups.get(id(patterns))
        if group is None or group[0] is not patterns:
            if len(self._groups) > _MOST_GROUPS:
                self._groups = {}
            known = all(id(p) in self._plans for p in patterns)
            group = self._groups[id(patterns)] = (patterns, frozenset(map(id, patterns)), known)
        live = reading.live
        if not group[2]:
            return [p for p in patterns if id(p) in live or id(p) not in self._plans]
        if live.keys().isdisjoint(group[1]):
            return []
        return [p for p in patterns if id(p) in live]

    def finditer(self, pattern: re.Pattern[str], text: str) -> Iterable[re.Match[str]]:
        """The matches of ``pattern`` in ``text``, as ``pattern.finditer(text)``."""
        reading = self._read(text)
        plan = reading.live.get(id(pattern))
        if plan is None:
            return () if id(pattern) in self._plans else pattern.finditer(text)
        if plan.fallback or not reading.exact:
            return pattern.finditer(text)
        present = reading.present
        start = 0
        best: list[int] | None = None
        best_lead = 0
        fewest = _MOST_TRIES + 1
        for words, lead in plan.requirements:
            if lead is not None:
                places = reading.where(words & present)
                start = max(start, places[0] - lead)
                if len(places) * (lead + 1) < fewest:
                    fewest, best, best_lead = len(places) * (lead + 1), places, lead
        if plan.anchored and (reading.ascii_digits or not plan.digit_anchors):
            places = reading.where((plan.long_anchors & present) | plan.short_anchors)
            if len(places) < fewest:
                fewest, best, best_lead = len(places), places, 0
        if best is None:
            return pattern.finditer(text, start)
        return _matches_at(pattern, text, _before(best, best_lead) if best_lead else best, start)

    def _read(self, text: str) -> _Reading:
        """The reading of ``text``: which patterns can match it (all their requirements
        are present, and the anchors they start with), worked out when ``text`` is not the
        one read last."""
        reading = self._reading
        if reading.text is text or reading.text == text:
            return reading
        present = self.scan.present(text)
        reading = _Reading(text, present, {}, _is_exact(text))
        live = reading.live
        if reading.exact:
            candidates = set(self._always)
            for word in self._by_word.keys() & present:
                candidates.update(self._by_word[word])
            # Of the plans whose matches all start with a long anchor, those with one here.
            started: set[_Plan] = set()
            for word in self._by_anchor.keys() & present:
                started.update(self._by_anchor[word])
            for plan in candidates:
                if plan.fallback:
                    if may_match(plan.factors, present):
                        live[id(plan.pattern)] = plan
                    continue
                for words, _lead in plan.requirements:
                    if words.isdisjoint(present):
                        break
                else:
                    if (
                        not plan.long_starts
                        or plan in started
                        or (plan.digit_anchors and not reading.ascii_digits)
                    ):
                        live[id(plan.pattern)] = plan
        else:
            for key, plan in self._plans.items():
                if may_match(plan.factors, present):
                    live[key] = plan
        self._reading = reading
        return reading


def _before(places: list[int], lead: int) -> list[int]:
    """The positions up to ``lead`` characters before each of ``places`` (sorted), in order
    and each once."""
    found: list[int] = []
    for place in places:
        found.extend(range(max(place - lead, found[-1] + 1) if found else place - lead, place + 1))
    return found


def _matches_at(
    pattern: re.Pattern[str], text: str, places: list[int], start: int
) -> Iterator[re.Match[str]]:
    """What a scan finds when every match starts at one of ``places`` (sorted): the
    first match at or after the end of the previous one, in turn."""
    end = start
    for place in places:
        if place >= end:
            match = pattern.match(text, place)
            if match is not None:
                yield match
                end = max(match.end(), place + 1)
