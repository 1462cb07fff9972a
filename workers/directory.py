"""The directory of other organisations, and which of them a message is about.

Loaded from ``organisations.yaml`` (shipped, or replaced from INTAKE_RULES_DIR). Matching
uses the triage rules' text preparation and negation handling, so "it's not about my
council tax" does not send anyone to the council.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from gateway.schema import Kind, Priority, Triage
from workers.rulefile import compile_pattern, fail, load_rule_file, rules_path
from workers.triage.prefilter import Factors, FactorScan, PatternSet, required_factors
from workers.triage.rules import Hit, TriageRules
from workers.triage.text import is_negated, quote


@dataclass(frozen=True)
class Organisation:
    key: str
    name: str
    contact: str
    deals_with: str
    patterns: tuple[re.Pattern[str], ...]
    unless: tuple[re.Pattern[str], ...]
    factors: tuple[Factors, ...] = ()


@dataclass(frozen=True)
class Decision:
    """Which organisation a message is for, and whether any of it is still ours."""

    organisation: Organisation
    hit: Hit
    others: tuple[Organisation, ...]
    ours: tuple[str, ...]
    emergency: bool

    @property
    def wholly_theirs(self) -> bool:
        return not self.ours and not self.emergency

    def reason(self) -> str:
        text = (
            f"{self.organisation.name} deals with {self.organisation.deals_with} "
            f'({self.hit.rule}: "{self.hit.words}")'
        )
        if self.others:
            text += "; also mentions matters for " + ", ".join(o.name for o in self.others)
        if self.emergency:
            text += "; an emergency is never redirected away: the case stays ours"
        elif self.ours:
            text += (
                "; the message also raises matters of ours ("
                + ", ".join(self.ours)
                + "), so it stays a case with this advice added"
            )
        return text


@dataclass(frozen=True)
class Directory:
    path: Path
    organisations: tuple[Organisation, ...]
    our_matters: frozenset[str]
    searcher: PatternSet = field(default_factory=lambda: PatternSet([]), repr=False, compare=False)

    @property
    def scan(self) -> FactorScan:
        """Which organisations' factors a text contains (every pattern's required factors)."""
        return self.searcher.scan

    def matching(self, text: str, rules: TriageRules) -> list[tuple[Organisation, Hit]]:
        """Organisations the prepared ``text`` is about, in directory order."""
        found: list[tuple[Organisation, Hit]] = []
        searcher = self.searcher
        for organisation in self.organisations:
            if any(_matches(searcher, pattern, text) for pattern in organisation.unless):
                continue
            for pattern in searcher.candidates(organisation.patterns, text):
                hit = _first_unnegated(searcher, pattern, text, rules)
                if hit is not None:
                    found.append(
                        (organisation, Hit(organisation.key, organisation.deals_with, hit))
                    )
                    break
        return found

    def decide(
        self, text: str, categories: list[str], emergency: bool, rules: TriageRules
    ) -> Decision | None:
        """The redirect for prepared ``text`` with its triage, or None when all of it is ours."""
        matches = self.matching(text, rules)
        if not matches:
            return None
        (organisation, hit), rest = matches[0], matches[1:]
        return Decision(
            organisation=organisation,
            hit=hit,
            others=tuple(o for o, _ in rest),
            ours=tuple(c for c in categories if c in self.our_matters),
            emergency=emergency,
        )

    def redirect_for(self, text: str, triage: Triage, rules: TriageRules) -> Decision | None:
        """The redirect for a triaged message: none for junk, machines and compliments."""
        if triage.kind in (Kind.SPAM, Kind.AUTO_REPLY, Kind.COMPLIMENT):
            return None
        return self.decide(text, triage.categories, triage.priority == Priority.EMERGENCY, rules)

    def is_elsewhere(self, rules: TriageRules) -> Callable[[str, list[str]], bool]:
        """A test for triage: is this prepared text wholly another organisation's matter?"""

        def test(text: str, categories: list[str]) -> bool:
            if not self.our_matters.isdisjoint(categories):
                return False  # it raises a matter of ours: not wholly theirs, whoever else
            decision = self.decide(text, categories, False, rules)
            return decision is not None and decision.wholly_theirs

        return test


def _matches(searcher: PatternSet, pattern: re.Pattern[str], text: str) -> bool:
    """Whether ``pattern`` matches ``text`` somewhere (as ``pattern.search``)."""
    return next(iter(searcher.finditer(pattern, text)), None) is not None


def _first_unnegated(
    searcher: PatternSet, pattern: re.Pattern[str], text: str, rules: TriageRules
) -> str | None:
    for match in searcher.finditer(pattern, text):
        if not is_negated(text, match.start(), rules.negations):
            return quote(text, match.start(), match.end())
    return None


def parse_directory(path: Path) -> Directory:
    data = load_rule_file(path)
    if not isinstance(data, dict) or not isinstance(data.get("organisations"), dict):
        raise fail(path, None, "expected 'organisations', a mapping of organisations")
    organisations = []
    for key, raw in data["organisations"].items():
        if not isinstance(raw, dict):
            raise fail(path, raw, f"{key}: expected name, contact, deals_with and patterns")
        for required in ("name", "contact", "deals_with", "patterns"):
            if required not in raw:
                raise fail(path, raw, f"{key}: missing '{required}'")
        if not isinstance(raw["patterns"], list) or not raw["patterns"]:
            raise fail(path, raw, f"{key}: 'patterns' must be a non-empty list")
        compiled = tuple(compile_pattern(path, p) for p in raw["patterns"])
        organisations.append(
            Organisation(
                key=key,
                name=" ".join(str(raw["name"]).split()),
                contact=" ".join(str(raw["contact"]).split()),
                deals_with=" ".join(str(raw["deals_with"]).split()),
                patterns=compiled,
                factors=tuple(required_factors(p) for p in compiled),
                unless=tuple(compile_pattern(path, p) for p in raw.get("unless", [])),
            )
        )
    ours = data.get("our_matters", [])
    if not isinstance(ours, list):
        raise fail(path, None, "'our_matters' must be a list of category names")
    patterns = [
        p for organisation in organisations for p in (*organisation.patterns, *organisation.unless)
    ]
    return Directory(
        path, tuple(organisations), frozenset(str(c) for c in ours), PatternSet(patterns)
    )


@lru_cache(maxsize=4)
def load_directory(override_dir: Path | None) -> Directory:
    return parse_directory(rules_path("organisations.yaml", override_dir))
