"""The triage rules, loaded from ``triage.yaml`` and checked before any message is read."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from workers.rulefile import compile_pattern, fail, load_rule_file, rules_path
from workers.triage.prefilter import Factors, FactorScan, PatternSet, required_factors
from workers.triage.text import is_negated, prepare, quote, spelling_finder

SECTIONS = ("spellings", "negations", "emergency", "categories", "kind", "stage2", "vulnerability")
KIND_SIGNALS = (
    "dissatisfaction",
    "praise",
    "suggestion",
    "request",
    "problem",
    "question",
    "spam",
    "auto_reply",
)
_SENTENCE = re.compile(r"[.!?\n]")


@dataclass(frozen=True)
class Hit:
    """One rule that fired, with the words that fired it."""

    rule: str
    reason: str
    words: str

    def explain(self) -> str:
        return f'{self.rule}: {self.reason} ("{self.words}")'


@dataclass(frozen=True)
class Rule:
    id: str
    reason: str
    patterns: tuple[re.Pattern[str], ...]
    negatable: bool = True
    requires_vulnerability: bool = False
    unless_near: tuple[re.Pattern[str], ...] = ()
    not_after: tuple[str, ...] = ()
    factors: tuple[Factors, ...] = ()


@dataclass(frozen=True)
class TriageRules:
    path: Path
    spellings: dict[str, str]
    negations: tuple[str, ...]
    emergency: tuple[Rule, ...]
    categories: dict[str, Rule]
    kind: dict[str, tuple[Rule, ...]]
    stage2: Rule
    vulnerability: dict[str, Rule]
    extra: dict[str, Any] = field(default_factory=dict)
    searcher: PatternSet = field(default_factory=lambda: PatternSet([]), repr=False, compare=False)
    spelling_finder: re.Pattern[str] | None = field(default=None, repr=False, compare=False)

    @property
    def scan(self) -> FactorScan:
        """Which rules' factors a text contains (every pattern's required factors)."""
        return self.searcher.scan

    def all_rules(self) -> list[Rule]:
        return [
            *self.emergency,
            *self.categories.values(),
            *(rule for rules in self.kind.values() for rule in rules),
            self.stage2,
            *self.vulnerability.values(),
        ]

    def prepare(self, text: str) -> str:
        return prepare(text, self.spellings, self.spelling_finder)

    def find(self, rule: Rule, text: str) -> Hit | None:
        """The first match of ``rule`` in prepared ``text`` that is not negated."""
        searcher = self.searcher
        for pattern in searcher.candidates(rule.patterns, text):
            for match in searcher.finditer(pattern, text):
                if rule.negatable and is_negated(text, match.start(), self.negations):
                    continue
                if rule.not_after and is_negated(text, match.start(), rule.not_after):
                    continue
                if rule.unless_near and _near(text, match, rule.unless_near):
                    continue
                return Hit(rule.id, rule.reason, quote(text, match.start(), match.end()))
        return None

    def find_all(self, rules: tuple[Rule, ...], text: str) -> list[Hit]:
        return [hit for rule in rules if (hit := self.find(rule, text)) is not None]


def _near(text: str, match: re.Match[str], patterns: tuple[re.Pattern[str], ...]) -> bool:
    """True when one of ``patterns`` occurs in the sentence around ``match``."""
    starts = [m.end() for m in _SENTENCE.finditer(text, 0, match.start())]
    start = starts[-1] if starts else 0
    end_match = _SENTENCE.search(text, match.end())
    sentence = text[start : end_match.start() if end_match else len(text)]
    return any(pattern.search(sentence) for pattern in patterns)


_RULE_KEYS = {
    "id",
    "reason",
    "patterns",
    "negatable",
    "requires_vulnerability",
    "unless_near",
    "not_after",
}


def _rule(
    path: Path, raw: object, default_id: str, default_reason: str, negatable: bool = True
) -> Rule:
    if isinstance(raw, list):
        raw = {"id": default_id, "reason": default_reason, "patterns": raw}
    if not isinstance(raw, dict):
        raise fail(path, raw, f"{default_id}: expected a rule (id, reason, patterns)")
    unknown = set(raw) - _RULE_KEYS
    if unknown:
        raise fail(path, raw, f"{default_id}: unknown keys {sorted(unknown)}")
    patterns = raw.get("patterns")
    if not isinstance(patterns, list) or not patterns:
        raise fail(path, raw, f"{default_id}: a rule needs a list of patterns")
    for flag in ("negatable", "requires_vulnerability"):
        if flag in raw and not isinstance(raw[flag], bool):
            raise fail(path, raw[flag], f"{flag} must be true or false")
    for listed in ("unless_near", "not_after"):
        if listed in raw and not isinstance(raw[listed], list):
            raise fail(path, raw[listed], f"{listed} must be a list")
    compiled = tuple(compile_pattern(path, p) for p in patterns)
    factors = tuple(required_factors(p) for p in compiled)
    return Rule(
        id=str(raw.get("id", default_id)),
        reason=str(raw.get("reason", default_reason)),
        patterns=compiled,
        factors=factors,
        negatable=bool(raw.get("negatable", negatable)),
        requires_vulnerability=bool(raw.get("requires_vulnerability", False)),
        unless_near=tuple(compile_pattern(path, p) for p in raw.get("unless_near", [])),
        not_after=tuple(str(w).lower() for w in raw.get("not_after", [])),
    )


def parse_rules(path: Path) -> TriageRules:
    data = load_rule_file(path)
    if not isinstance(data, dict):
        raise fail(path, None, "expected a mapping of sections at the top")
    for section in SECTIONS:
        if section not in data:
            raise fail(path, None, f"missing section '{section}'")
    if not isinstance(data["spellings"], dict):
        raise fail(path, None, "'spellings' must map words to words")
    if not isinstance(data["negations"], list):
        raise fail(path, None, "'negations' must be a list of words")
    for section in ("emergency",):
        if not isinstance(data[section], list):
            raise fail(path, None, f"'{section}' must be a list of rules")
    for section in ("categories", "vulnerability", "kind"):
        if not isinstance(data[section], dict):
            raise fail(path, None, f"'{section}' must map names to patterns")
    kind: dict[str, tuple[Rule, ...]] = {}
    for signal in KIND_SIGNALS:
        raw = data["kind"].get(signal)
        if raw is None:
            raise fail(path, None, f"kind: missing signal '{signal}'")
        if isinstance(raw, list) and raw and isinstance(raw[0], dict):
            kind[signal] = tuple(_rule(path, r, f"{signal}_{i}", signal) for i, r in enumerate(raw))
        else:
            kind[signal] = (_rule(path, raw, signal, signal.replace("_", " ")),)
    rules = TriageRules(
        path=path,
        spellings={str(k).lower(): str(v).lower() for k, v in data["spellings"].items()},
        negations=tuple(str(n).lower() for n in data["negations"]),
        emergency=tuple(
            _rule(path, raw, f"emergency_{i}", "danger to life or property")
            for i, raw in enumerate(data["emergency"])
        ),
        # A theme is a theme even when missing: "no hot water" is about hot water.
        categories={
            name: _rule(path, raw, name, f"about {name.replace('_', ' ')}", negatable=False)
            for name, raw in data["categories"].items()
        },
        kind=kind,
        stage2=_rule(path, data["stage2"], "stage2", "asks to take a complaint further"),
        vulnerability={
            name: _rule(path, raw, name, f"vulnerability: {name.replace('_', ' ')}")
            for name, raw in data["vulnerability"].items()
        },
    )
    patterns = [pattern for rule in rules.all_rules() for pattern in rule.patterns]
    return replace(
        rules, searcher=PatternSet(patterns), spelling_finder=spelling_finder(rules.spellings)
    )


@lru_cache(maxsize=4)
def load_rules(override_dir: Path | None) -> TriageRules:
    """The triage rules in force: ``triage.yaml`` from the override folder, else shipped."""
    return parse_rules(rules_path("triage.yaml", override_dir))
