"""Triage rule families, as a complaints officer would check them: each decision and why."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from gateway.errors import RulesError
from gateway.schema import Kind, Priority, Triage
from workers.triage.classify import MessageFacts, classify
from workers.triage.rules import load_rules, parse_rules

RECEIVED = date(2026, 11, 27)


def triage(
    text: str, subject: str | None = None, received: date = RECEIVED, language: str | None = "en"
) -> Triage:
    return classify(MessageFacts(text, subject, received, language), load_rules(None), 3)


@pytest.mark.parametrize(
    "text",
    [
        "I can smell gas in the kitchen",
        "strong smell of gas on the landing!!",
        "CO alarm going off in the hall",
        "my carbon monoxide detector keeps beeping",
        "theres smoke coming from the fuse box",
        "sparks coming out the socket when i plug the kettle in",
        "water is dripping into the light fitting in the bathroom",
        "WATER COMING THROUGH THE CEILING ITS POURING",
        "sewage coming up through the bath plug",
        "the kitchen ceiling has collapsed",
        "we were burgled last night and the back door won't lock now",
        "my ex threatened to kill me and knows where i live",
        "boiler broke no heating and my baby is 3 weeks old",
        "no hot water or heating, I'm 84 and disabled",
    ],
)
def test_emergencies_are_caught(text: str) -> None:
    result = triage(text)
    assert result.priority == Priority.EMERGENCY, result.reasons
    assert any(r.startswith("priority emergency") for r in result.reasons)


@pytest.mark.parametrize(
    "text",
    [
        "There is no smell of gas but the boiler pressure keeps dropping",
        "I can't smell gas any more since the engineer came",
        "my gas bill has gone up a lot",
        "the fire door on the landing sticks",
        "the smoke alarm needs a new battery",
        "It's not an emergency but the kitchen tap drips",
        "no heating in the spare room radiator, everything else is fine",
    ],
)
def test_negations_and_near_misses_are_not_emergencies(text: str) -> None:
    result = triage(text)
    assert result.priority != Priority.EMERGENCY, result.reasons


def test_no_heating_is_an_emergency_only_where_someone_vulnerable_lives() -> None:
    assert triage("no heating since yesterday").priority != Priority.EMERGENCY
    assert triage("no heating since yesterday and I'm pregnant").priority == Priority.EMERGENCY


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        (
            "my kitchen tap is dripping, could someone come and look at it please",
            Kind.SERVICE_REQUEST,
        ),
        ("boiler broke agen 3rd time this month!!! no hot water", Kind.COMPLAINT),
        ("Engineer was meant to come Tuesday, nobody turned up and no one called", Kind.COMPLAINT),
        ("Still waiting for the damp to be sorted, 4 months now", Kind.COMPLAINT),
        (
            "Just want to say a big thank you to Mo who fixed our door, he was brilliant",
            Kind.COMPLIMENT,
        ),
        ("How do I apply for a transfer to a bigger flat?", Kind.ENQUIRY),
        ("It would be good if the newsletter came by email instead of post", Kind.FEEDBACK),
        ("Increase your traffic with our SEO services, click here", Kind.SPAM),
    ],
)
def test_kinds(text: str, kind: Kind) -> None:
    result = triage(text)
    assert result.kind == kind, result.reasons
    assert any(r.startswith(f"kind {kind.value}") for r in result.reasons)


def test_a_reason_names_the_rule_and_quotes_the_words() -> None:
    result = triage("There is black mould all over my son's bedroom wall")
    assert result.priority == Priority.HIGH
    assert "damp_mould" in result.categories
    assert any("damp_mould" in r and '"mould"' in r for r in result.reasons)
    assert "children" in result.vulnerability


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I'm disabled and use a wheelchair", "disability"),
        ("I'm 82 and live alone", "age"),
        ("I'm 7 months pregnant", "pregnancy"),
        ("my daughter has asthma", "health"),
        ("my anxiety is through the roof with this", "mental_health"),
        ("I'm deaf so please email me, don't ring", "communication_needs"),
        ("my english not good, need interpreter", "communication_needs"),
        ("I have fled domestic abuse and need a safe home", "domestic_abuse"),
    ],
)
def test_vulnerability_indicators(text: str, expected: str) -> None:
    result = triage(text)
    assert expected in result.vulnerability
    assert result.priority in (Priority.HIGH, Priority.EMERGENCY)


def test_a_message_in_another_language_flags_communication_needs() -> None:
    assert "communication_needs" in triage("Mam problem z grzejnikiem", language="pl").vulnerability


@pytest.mark.parametrize(
    ("text", "incident", "within"),
    [
        ("the leak started six weeks ago", date(2026, 10, 16), True),
        ("damp since March", date(2026, 3, 1), False),
        ("this has been going on since back in 2023", date(2023, 1, 1), False),
        ("on 03/11/2026 the contractor smashed my window", date(2026, 11, 3), True),
        ("the bath panel is loose", None, None),
    ],
)
def test_time_limit(text: str, incident: date | None, within: bool | None) -> None:
    result = triage(text)
    assert result.incident_date == incident
    assert result.within_time_limit is within
    if within is False:
        assert any("accepted all the same" in r for r in result.reasons)


@pytest.mark.parametrize(
    "text",
    [
        "I am not happy with your response to my complaint and want to escalate it",
        "I want this taken to stage 2",
        "Your stage 1 answer ignores half of what I said, please review my complaint",
        "If this isn't sorted I'm going to the Ombudsman",
    ],
)
def test_stage_two_requests(text: str) -> None:
    result = triage(text)
    assert result.stage == 2
    assert result.kind == Kind.COMPLAINT


def test_stage_one_complaints_stay_stage_one() -> None:
    assert triage("the repairs team never turned up, I'm fed up").stage == 1


def test_a_bad_rules_file_names_file_line_and_problem(tmp_path: Path) -> None:
    shipped = load_rules(None).path.read_text()
    broken = shipped.replace('"\\\\bsmell(s|ing|t|ed)? (of |like )?gas\\\\b"', '"smell (of gas"', 1)
    assert broken != shipped
    (tmp_path / "triage.yaml").write_text(broken)
    with pytest.raises(RulesError) as error:
        parse_rules(tmp_path / "triage.yaml")
    message = str(error.value)
    assert "triage.yaml:" in message
    line = int(message.split("triage.yaml:")[1].split(":")[0])
    assert "smell (of gas" in broken.splitlines()[line - 1]
    assert "bad regular expression" in message


def test_broken_yaml_and_missing_sections_are_named(tmp_path: Path) -> None:
    path = tmp_path / "triage.yaml"
    path.write_text("version: 1\nspellings: {u: you\n")
    with pytest.raises(RulesError, match=r"triage.yaml:\d+: not valid YAML"):
        parse_rules(path)
    path.write_text("version: 1\nspellings: {}\n")
    with pytest.raises(RulesError, match="missing section 'negations'"):
        parse_rules(path)


def test_a_bad_rules_file_stops_the_worker_at_start_up(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    (tmp_path / "organisations.yaml").write_text("version: 1\norganisations:\n  council: {}\n")
    result = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "worker", "--burst"],
        env={**os.environ, "INTAKE_RULES_DIR": str(tmp_path), "INTAKE_REDIS_URL": "unix:///nx"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert "organisations.yaml:3:" in line and "council" in line


def test_a_reply_is_judged_on_its_own_words_not_our_quoted_acknowledgement() -> None:
    reply = (
        "The radiator is still cold and nobody came.\n\n"
        "On Fri, 27 Nov 2026 at 10:00, Riverside Homes <hello@housing.test> wrote:\n"
        "> We have received your message and it has been given the reference CX-2026-000001.\n"
        "> This is an automatic reply. If something is dangerous now, call 999.\n"
    )
    result = classify(
        MessageFacts(
            reply, "Re: We have received your message - reference CX-2026-000001", RECEIVED
        ),
        load_rules(None),
        3,
    )
    assert result.kind == Kind.COMPLAINT, result.reasons
    assert result.priority != Priority.EMERGENCY


def test_the_prefilter_never_skips_a_pattern_that_matches() -> None:
    """Every pattern that matches a message must pass the cheap word test for it."""
    import json

    from workers.directory import load_directory
    from workers.triage.prefilter import may_match

    rules = load_rules(None)
    directory = load_directory(None)
    groups = [
        (
            rules.scan,
            [
                (p, f)
                for rule in rules.all_rules()
                for p, f in zip(rule.patterns, rule.factors, strict=True)
            ],
        ),
        (
            directory.scan,
            [
                (p, f)
                for organisation in directory.organisations
                for p, f in zip(organisation.patterns, organisation.factors, strict=True)
            ],
        ),
    ]
    path = Path(__file__).parent / "data" / "triage" / "eval.jsonl"
    texts = [rules.prepare(json.loads(line)["text"]) for line in path.read_text().splitlines()]
    texts += ["no smell of gas", "co alarm going off", "3rd time in a row!!", "ur contractor"]
    checked = 0
    for text in texts:
        for scan, pairs in groups:
            present = scan.present(text)
            for pattern, factors in pairs:
                if pattern.search(text):
                    checked += 1
                    assert may_match(factors, present), (pattern.pattern, text[:80])
    assert checked > 1000


def _eval_texts() -> list[str]:
    import json

    path = Path(__file__).parent / "data" / "triage" / "eval.jsonl"
    return [json.loads(line)["text"] for line in path.read_text().splitlines() if line.strip()]


def _word_soup(count: int) -> list[str]:
    """Texts made of the rules' own words and pieces of real messages, run together with
    the punctuation, digits and apostrophes that sit next to words: many near misses."""
    import random

    from workers.directory import load_directory

    rng = random.Random(11)
    rules, directory = load_rules(None), load_directory(None)
    words = [*rules.scan.words, *directory.scan.words]
    pieces = [piece for text in _eval_texts() for piece in text.lower().split()]
    joins = [" ", " ", " ", "  ", ", ", ". ", "!", "?", "'", "-", "\n", "3 ", " 12", "£"]
    texts = []
    for _ in range(count):
        parts = [rng.choice(words if rng.random() < 0.6 else pieces) for _ in range(40)]
        texts.append("".join(part + rng.choice(joins) for part in parts))
    return texts


def test_the_trie_scan_finds_exactly_the_factors_a_substring_test_finds() -> None:
    from workers.directory import load_directory

    rules, directory = load_rules(None), load_directory(None)
    texts = [rules.prepare(text) for text in _eval_texts()] + _word_soup(150)
    texts += ["", "a", "gas", "smell of gasgas", "£50", "ı and ſ"]
    for scan in (rules.scan, directory.scan):
        for text in texts:
            assert scan.present(text) == scan.present_by_search(text), text[:80]


def test_every_pattern_keeps_its_factors_as_the_first_requirement() -> None:
    """The plain factor test is one of the requirements a pattern set checks."""
    from workers.triage.prefilter import _plain, required_factors, requirements

    for rule in load_rules(None).all_rules():
        for pattern in rule.patterns:
            factors = required_factors(pattern)
            if factors is not None and all(map(_plain, factors)):
                assert factors in [words for words, _lead in requirements(pattern)]


def test_searching_only_where_a_pattern_can_match_finds_every_match() -> None:
    """A pattern set gives every pattern's matches, spans and groups, exactly as a scan of
    the whole text; on text that is not prepared, exactly what the plain factor test let
    run before (a scan, or nothing)."""
    from workers.directory import load_directory
    from workers.triage.prefilter import may_match, required_factors

    rules, directory = load_rules(None), load_directory(None)
    prepared = [rules.prepare(text) for text in _eval_texts()] + _word_soup(80)
    prepared += ["i'm 84 and live alone", "im 91", "reported it 3 times", "paid £120", "?"]
    raw = [
        *_eval_texts()[:40],  # capitals: not prepared
        "the ı is dotless, the ſ is long: ſmell of gaſ",
        "flat ٣ has had no heating for ٢ weeks and i rang 3 times",  # other digits
    ]
    groups = [
        (rules.searcher, [p for rule in rules.all_rules() for p in rule.patterns]),
        (
            directory.searcher,
            [p for o in directory.organisations for p in (*o.patterns, *o.unless)],
        ),
    ]
    matched = 0
    for searcher, patterns in groups:
        for text in prepared:
            for pattern in patterns:
                found = [(m.span(), m.groups()) for m in searcher.finditer(pattern, text)]
                assert found == [(m.span(), m.groups()) for m in pattern.finditer(text)], (
                    pattern.pattern[:60],
                    text[:60],
                )
                matched += bool(found)
        for text in raw:
            present = searcher.scan.present_by_search(text)
            for pattern in patterns:
                found = [(m.span(), m.groups()) for m in searcher.finditer(pattern, text)]
                scan = [(m.span(), m.groups()) for m in pattern.finditer(text)]
                assert found == (scan if may_match(required_factors(pattern), present) else [])
    assert matched > 2000


def test_prepare_finds_the_same_spellings_as_word_by_word() -> None:
    from workers.triage.text import prepare

    rules = load_rules(None)
    assert rules.spelling_finder is not None
    texts = _eval_texts() + _word_soup(50)
    texts += [" ".join(rules.spellings), "'".join(rules.spellings), "x".join(rules.spellings)]
    texts += ["u r gr8", "ur'", "'ur", "u2", "2u", "wiv,wiv.wiv", "WIV", "ﬁx"]
    for text in texts:
        assert rules.prepare(text) == prepare(text, rules.spellings), text[:80]


def test_the_redirect_test_in_triage_gives_the_full_decision() -> None:
    """Triage skips the directory when a message raises a matter of ours."""
    from workers.directory import load_directory

    rules, directory = load_rules(None), load_directory(None)
    elsewhere = directory.is_elsewhere(rules)
    for text in _eval_texts():
        facts = MessageFacts(text, None, RECEIVED, "en")
        categories = classify(facts, rules, 3).categories
        prepared = rules.prepare(text)
        decision = directory.decide(prepared, categories, False, rules)
        full = decision is not None and decision.wholly_theirs
        assert elsewhere(prepared, categories) == full
