"""When did the problem start? Telling the problem's date apart from every other date.

Residents mention letters, visits, appointments, plans, how long they have lived there
and when works were done; only the date the problem happened or began counts towards the
time limit. Each behaviour is checked both ways: the words that should date the problem,
and the near misses that should not.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from workers.triage.classify import MessageFacts, classify
from workers.triage.rules import load_rules
from workers.triage.timeline import NEEDLES, PATTERNS, incident_date

RECEIVED = date(2026, 11, 27)  # a Friday
RULES = load_rules(None)


def started(text: str, received: date = RECEIVED) -> date | None:
    found = incident_date(RULES.prepare(text), received)
    return found.day if found else None


SENTENCES: list[str] = []


def expect(cases: list[tuple[str, date | None]]) -> pytest.MarkDecorator:
    SENTENCES.extend(text for text, _ in cases)
    return pytest.mark.parametrize(("text", "expected"), cases)


@expect(
    [
        ("I got your letter. Three weeks ago the ceiling came down", date(2026, 11, 6)),
        ("had your reply yesterday; the leak started 2 weeks ago", date(2026, 11, 13)),
        ("your letter dated 3 November didn't answer anything", None),
        ("thanks for your reply of 12 November", None),
    ]
)
def test_only_the_dates_own_clause_ties_it_to_a_letter(text: str, expected: date | None) -> None:
    assert started(text) == expected


@expect(
    [
        ("the storage heaters have not come on for two days", date(2026, 11, 25)),
        ("nobody has come out since 3 September", date(2026, 9, 3)),
        ("no reply since 2 October and the damp is spreading", date(2026, 10, 2)),
        ("the engineer is coming on Monday", None),
        ("surveyor will visit on the 3rd", None),
    ]
)
def test_a_visit_that_never_happened_still_dates_the_wait(text: str, expected: date | None) -> None:
    assert started(text) == expected


@expect(
    [
        ("my rent is going up in April and I don't understand why", None),
        ("you said it would be fixed by 1 December", None),
        ("you promised to sort it by the end of October", None),
        ("your letter said the works would start in November", None),
        ("the works are due to start in January", None),
        ("it's been going on since March", date(2026, 3, 1)),
        ("the heating works on and off since March", date(2026, 3, 1)),
        ("damp since January", date(2026, 1, 1)),
    ]
)
def test_plans_promises_and_deadlines_are_not_the_problem(text: str, expected: date | None) -> None:
    assert started(text) == expected


@expect(
    [
        ("engineer is booked for 3 December", None),
        ("appointment on 12th December, can it be earlier", None),
        ("the boiler has been off since 20 November", date(2026, 11, 20)),
        ("the lift broke on 14 March", date(2026, 3, 14)),
    ]
)
def test_a_date_without_a_year_a_few_weeks_ahead_is_coming_up(
    text: str, expected: date | None
) -> None:
    assert started(text) == expected


def test_a_date_without_a_year_far_ahead_is_last_years() -> None:
    assert started("leaking since 20 December", date(2027, 1, 5)) == date(2026, 12, 20)


@expect(
    [
        ("I've lived here for 20 years and never had a problem like this", None),
        ("I have been a tenant for 30 years", None),
        (
            "my mum has lived here 40 years and the roof started leaking 3 weeks ago",
            date(2026, 11, 6),
        ),
        ("I've been his carer for the last six years", None),
        ("leaking since we moved in in 2021", date(2021, 1, 1)),
        ("we're living with mould for 6 months now", date(2026, 5, 27)),
        ("I live in flat 3 and the lift has been broken for 2 weeks", date(2026, 11, 13)),
    ]
)
def test_how_long_someone_has_lived_there_is_not_the_problem(
    text: str, expected: date | None
) -> None:
    assert started(text) == expected


@expect(
    [
        ("we moved in in 2021 and the damp started last winter", date(2025, 12, 1)),
        (
            "I moved in six months ago and the repairs on the list were never done",
            date(2026, 5, 27),
        ),
        ("it all started when they moved in last month", date(2026, 10, 27)),
    ]
)
def test_moving_in_dates_the_problem_only_when_nothing_else_does(
    text: str, expected: date | None
) -> None:
    assert started(text) == expected


@expect(
    [
        ("Brand new kitchen 2 years ago! the worktop has split", None),
        ("the boiler was fitted in 2019", None),
        ("the windows were installed in March", None),
        ("a new leak started 2 days ago", date(2026, 11, 25)),
        ("the boiler keeps cutting out since it was serviced on 2 November", date(2026, 11, 2)),
    ]
)
def test_when_works_were_done_is_not_when_the_problem_began(
    text: str, expected: date | None
) -> None:
    assert started(text) == expected


@expect(
    [
        ("please send me the cleaning logs for the last year", None),
        ("copies of the statements for the last 6 months please", None),
        ("the rent statement has been wrong for the past eight months", date(2026, 3, 27)),
        ("the damp has got worse over the last year", date(2025, 11, 27)),
        ("the leak started last year", date(2025, 1, 1)),
    ]
)
def test_paperwork_asked_for_a_period_is_not_the_problem(text: str, expected: date | None) -> None:
    assert started(text) == expected


@expect(
    [
        ("three kids (7, 4 and 10 months) in a two bed flat", None),
        ("my daughter aged 10 months has a cough", None),
        ("my twins are 3 and 18 months", None),
        ("it's been 10 months and still no repair", date(2026, 1, 27)),
    ]
)
def test_ages_are_not_durations(text: str, expected: date | None) -> None:
    assert started(text) == expected


@expect(
    [
        ("it should be fixed in 2 weeks", None),
        ("I can shower on my own for the first time in 2 years", None),
        ("sent 3 emails in 2 weeks and not one reply", date(2026, 11, 13)),
    ]
)
def test_in_a_few_weeks_is_ahead_or_an_idiom(text: str, expected: date | None) -> None:
    assert started(text) == expected


@expect(
    [
        ("could the office open on Saturday mornings", None),
        ("the bins are collected on Mondays", None),
        ("on Saturday the lift broke down again", date(2026, 11, 21)),
        ("heating off since tues", date(2026, 11, 24)),
        ("no hot water since weds", date(2026, 11, 25)),
    ]
)
def test_weekdays_but_not_weekly_habits(text: str, expected: date | None) -> None:
    assert started(text) == expected


@expect(
    [
        ("WHY has nobody come to fix my gate. i rang in may and june", date(2026, 5, 1)),
        ("it started in May, and it's getting worse", date(2026, 5, 1)),
        ("you may want to send someone", None),
        ("it may be the boiler, it is in may flat", None),
    ]
)
def test_in_may_is_the_month_only_where_it_reads_as_one(text: str, expected: date | None) -> None:
    assert started(text) == expected


@expect(
    [
        ("I reported it on the 5th and nobody came", date(2026, 11, 5)),
        ("the leak came back on the 30th, and nothing since", date(2026, 10, 30)),
        ("the fire door on the 4th floor landing sticks", None),
        ("smoke on the 3rd floor", None),
        ("the leak started on 14/10", date(2026, 10, 14)),
        ("I'd rate the service 7/10", None),
    ]
)
def test_a_day_of_the_month_without_the_month(text: str, expected: date | None) -> None:
    assert started(text) == expected


@expect(
    [
        ("the boiler has just started making a banging noise", RECEIVED),
        ("water just started coming through the light", RECEIVED),
        ("I've just started on universal credit, can I get help", None),
        ("she has just started a new job", None),
        ("Wants a manager to call him back today", None),
        ("asked for someone to ring her back this afternoon", None),
        ("the ceiling came down today", RECEIVED),
    ]
)
def test_something_the_resident_starts_or_asks_for_today_is_not_the_problem(
    text: str, expected: date | None
) -> None:
    assert started(text) == expected


@expect(
    [
        ("mould since the start of the year", date(2026, 1, 1)),
        ("problems since the end of last year", date(2025, 12, 1)),
        ("this has been going on since summer 2024", date(2024, 6, 1)),
        ("same thing happened this time last year", date(2025, 11, 27)),
        ("no heating since last xmas", date(2025, 12, 25)),
        ("damp since the new year", date(2026, 1, 1)),
    ]
)
def test_parts_of_the_year(text: str, expected: date | None) -> None:
    assert started(text) == expected


@expect(
    [
        ("damp sinse march", date(2026, 3, 1)),
        ("boiler broke 2 dys ago", date(2026, 11, 25)),
        ("been 3 mths no repair", date(2026, 8, 27)),
        ("toilet leaking since yday", date(2026, 11, 26)),
        ("no heating since last nite", date(2026, 11, 26)),
        ("its been 3 month. 3 MONTH", date(2026, 8, 27)),
    ]
)
def test_texting_style_and_typos(text: str, expected: date | None) -> None:
    assert started(text) == expected


def test_the_flag_follows_the_problem_not_the_letter() -> None:
    text = (
        "I got your letter dated 1 November saying the works would start in January. "
        "The damp in the bedroom started back in June and the mould is now on the clothes."
    )
    result = classify(MessageFacts(text, None, RECEIVED, "en"), RULES, 3)
    assert result.incident_date == date(2026, 6, 1)
    assert result.within_time_limit is False
    assert any('from "back in june"' in reason for reason in result.reasons)


def test_the_needles_never_skip_a_pattern_that_matches() -> None:
    """Every pattern that matches a message contains one of its needles."""
    path = Path(__file__).parent / "data" / "triage" / "eval.jsonl"
    texts = [RULES.prepare(json.loads(line)["text"]) for line in path.read_text().splitlines()]
    texts += [RULES.prepare(text) for text in SENTENCES]
    assert set(NEEDLES) == {kind for kind, _ in PATTERNS}
    checked = 0
    for text in texts:
        for kind, pattern in PATTERNS:
            for match in pattern.finditer(text):
                checked += 1
                assert any(needle in match.group(0) for needle in NEEDLES[kind]), (kind, text[:80])
    assert checked > 300
