"""When did the problem happen? Dates and time phrases found in a message.

The policy's time limit (3 months by default) and the Code's 12 months are counted from
when the issue happened or began, so every time expression is resolved against the date
the message arrived and the earliest one wins: "the leak started in March and got worse
last week" began in March. Dates the words around them tie to something else (our
letters, visits, plans and deadlines, how long someone has lived there, works done) are
passed over, and a move-in date counts only when nothing else dates the problem. Nothing
here ever rejects a message; it only informs the flag a person applies discretion to.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

from dateutil.relativedelta import relativedelta

MONTHS = {
    name: number
    for number, names in enumerate(
        [
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ],
        start=1,
    )
    for name in names
}
NUMBERS = {
    "a": 1,
    "an": 1,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "couple": 2,
    "a couple": 2,
    "a couple of": 2,
    "few": 3,
    "a few": 3,
    "several": 3,
    "eighteen": 18,
    "fifteen": 15,
    "twenty": 20,
    "thirteen": 13,
    "fourteen": 14,
    "sixteen": 16,
    "seventeen": 17,
    "nineteen": 19,
}
WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]

_MONTH = (
    r"(jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sept?(?:ember)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
)
_NUM = (
    r"(\d{1,2}|a|an|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen"
    r"|fourteen|fifteen|sixteen|seventeen|eighteen|nineteen|twenty|a couple of|a couple"
    r"|couple of|a few|few|several)"
)
_UNIT = (
    r"(day|days|dys|night|nights|week|weeks|weks|wk|wks|fortnight|fortnights|month|months|mth"
    r"|mths|year|years|yr|yrs)"
)
_SINCE = r"(?:since|in|back in|from|during|for|start of|end of|beginning of|early|late|mid)"
# "may" is a month only where nothing else would make sense of it: after "since", or "in may"
# closing a clause or followed by another month or year ("i rang in may and june").
_SINCE_MAY = r"(?:since|back in|early|late|mid|end of|start of|beginning of)"
_IN_MAY = rf"in (may)(?=\s*(?:[.,;:!?)]|$|and |or |last |this |{_MONTH}|20\d\d))"
_WEEKDAY = (
    r"(monday|tuesday|wednesday|thursday|friday|saturday|sunday"
    r"|mon|tues?|weds?|thu(?:rs?)?|fri|sat|sun)"
)
# Dates governed by these words are about something else: our letters, replies and offers,
# visits, how long someone has lived there, works done or promised, and paperwork asked for
# ("the cleaning logs for the last year"). "nobody has come since May" and "no reply since
# 3 March" still date the problem, so a negation or "since" before the word gives it back.
NOT_THE_INCIDENT = frozenset(
    {
        "response",
        "reply",
        "letter",
        "dated",
        "returning",
        "return",
        "offer",
        "offered",
        "transcribed",
        "leave",
        "took",
        "completion",
        "come",
        "coming",
        "visit",
        "attend",
        "lived",
        "live",
        "living",
        "tenant",
        "resident",
        "carer",
        "bought",
        "new",
        "fitted",
        "works",
        "promised",
        "installed",
        "built",
        "refurbished",
        "renovated",
        "logs",
        "records",
        "statements",
        "breakdown",
        "copies",
        "history",
        "invoices",
        "receipts",
    }
)
# "lived here for 20 years" is a tenancy; "living with mould for 6 months" is the problem.
LIVING = frozenset({"lived", "live", "living"})
# Moving in dates the problem only when nothing else does: "I moved in six months ago and
# the repairs on the sign-up list are still not done", but not "we moved in in 2021 and the
# damp started last winter".
MOVING_IN = frozenset({"moved", "move"})
# Plans and deadlines are never when the problem happened, negated or not.
NEVER_THE_INCIDENT = frozenset(
    {
        "until",
        "till",
        "due",
        "will",
        "ll",
        "gonna",
        "planned",
        "scheduled",
        "starting",
        "expected",
        "deadline",
        "within",
        "tomorrow",
        "next",
    }
)
# Words of the problem itself: nearer the date than any word above, they decide that the
# date is the problem's ("a new leak started 2 days ago", "been wrong for eight months").
THE_INCIDENT = frozenset(
    {
        "since",
        "started",
        "began",
        "begun",
        "been",
        "broke",
        "broken",
        "stopped",
        "happened",
        "noticed",
        "appeared",
        "leaking",
        "leaked",
        "flooded",
    }
)
NEGATIONS = frozenset({"not", "never", "no", "nobody", "noone", "nothing", "t", "nor"})
# A bare "by 1 December" is a deadline; "caused by" further back is not.
_DEADLINE_BEFORE = re.compile(r"\b(?:by|before|until|till)(?: the)?\s*$")
# "my rent is going up in april" is a plan; "it's been going on since march" is not.
_GOING = re.compile(r"\bgoing (?:up|down|to|ahead)\b")
# Asking to be called back today is a request, not when the problem happened.
_CALL_BACK = re.compile(
    r"\bto (?:call|ring|phone|contact|email|text)(?: (?:me|him|her|us|them))?(?: back)?\s*$"
)
# Ages in a list ("three kids (7, 4 and 10 months)", "aged 10 months") are not durations.
_AGE_BEFORE = re.compile(r"(?:\d\s*,|\d\s+and|\baged?|\bages)\s*$")
_CLAUSE_BREAK = re.compile(r"[.!?;:\n&]|\b(?:and|but|so|however|although)\b")
_LETTERS = re.compile(r"[a-z]+")
# How far ahead a date without a year may fall and still be read as coming up (an
# appointment, a deadline) rather than as the same day last year.
UPCOMING_DAYS = 62


def _rx(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("numeric_date", _rx(r"\b(\d{1,2})[/.-](\d{1,2})[/.-](\d{2}|\d{4})\b")),
    ("iso_date", _rx(r"\b(20\d{2})-(\d{2})-(\d{2})\b")),
    # "since 14/10": a day and month without a year, only after a word that makes it a date.
    ("numeric_day_month", _rx(r"\b(?:on|since|from) (\d{1,2})/(\d{1,2})\b(?![/.-]\d)")),
    (
        "day_month",
        _rx(rf"\b(\d{{1,2}})(?:st|nd|rd|th)?(?: of)? {_MONTH}\b(?:,? (\d{{4}}|last year))?"),
    ),
    (
        "month_day",
        _rx(rf"\b{_MONTH} (\d{{1,2}})(?:st|nd|rd|th)?\b(?:,? (\d{{4}}|last year))?"),
    ),
    ("month_year", _rx(rf"\b{_MONTH},? (20\d{{2}}|19\d{{2}})\b")),
    ("ago", _rx(rf"\b{_NUM} ?{_UNIT} ago\b")),
    (
        "for_duration",
        _rx(
            rf"\b(?:for|over|nearly|almost|about|since) (?:the (?:last|past) )?"
            rf"(?:over |nearly |almost |about |at least )?{_NUM} ?{_UNIT}\b"
        ),
    ),
    ("past_duration", _rx(rf"\b(?:the |in the )?(?:last|past) {_NUM} ?{_UNIT}\b")),
    ("in_fortnight", _rx(r"\bin (?:a|the last|the past) (fortnight)\b")),
    (
        "bare_duration",
        _rx(
            rf"\b{_NUM} ?(days|dys|nights|weeks|weks|wks|months|mths|years|yrs)\b"
            r"(?! (?:old|pregnant|ago|time|later|notice|in advance|from now|before))"
            rf"|\b{_NUM} ?(day|night|week|month|year|fortnight)\b"
            r"(?=(?: now| waiting| no| not| and| still|[.,!?]|$))"
        ),
    ),
    (
        "since_month",
        _rx(
            r"\b(?:since|in|back in|from|during|for|last|start of|end of|beginning of|early"
            r"|late|mid) (?:last )?(jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|june?|july?"
            r"|aug(?:ust)?|sept?(?:ember)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\b(?! \d)"
            rf"|\b{_SINCE_MAY} (?:last )?(may)\b(?! \d)"
            rf"|\b{_IN_MAY}"
        ),
    ),
    # "reported it on the 5th": the most recent 5th of a month.
    (
        "day_of_month",
        _rx(
            r"\b(?:on|since|from) the (\d{1,2})(?:st|nd|rd|th)\b"
            r"(?=\s*(?:[.,;:!?)]|$|and\b|but\b|n\b|when\b|at\b|i\b|we\b|it\b|they\b"
            r"|he\b|she\b|you\b|someone\b|nobody\b|no one\b|the\b))"
        ),
    ),
    ("year", _rx(rf"\b{_SINCE}\s+(20\d{{2}}|19\d{{2}})\b")),
    ("this_time_last_year", _rx(r"\bthis time last (year)\b")),
    (
        "year_part",
        _rx(r"\b(start|beginning|middle|end) of (the|this|last) year\b"),
    ),
    # "the last year" is the past twelve months (see unit_back), "last year" the year before.
    (
        "last_unit",
        _rx(
            r"(?<!the )(?<!past )\blast (week|month|year|winter|summer|spring|autumn|fall"
            r"|christmas|xmas|easter)\b"
        ),
    ),
    (
        "yesterday",
        _rx(r"\b(yesterday|yesterdy|yesturday|yestarday|yday|last night|last nite|overnight)\b"),
    ),
    (
        "today",
        _rx(
            r"\b(today|this morning|tonight|this afternoon|this evening|right now|just now"
            r"|all night|just (?:happened|threatened|come|came|gone|went|packed|broke|burst"
            r"|collapsed|fallen|fell|stopped|flooded|caught)"
            # "it's just started leaking", not "I've just started on universal credit".
            r"|just started(?=\s*(?:[.,;:!?)]|$|\w+ing\b|to\b|again\b|and\b))"
            r"|for (?:\d+|a few|ten|twenty|thirty|an?) (?:minutes|mins|hours|hrs|hour))\b"
        ),
    ),
    ("this_month", _rx(r"\bthis month\b")),
    (
        "ordinal_unit",
        _rx(r"\b(second|third|fourth|fifth|sixth|\d+(?:st|nd|rd|th)) (day|week|month|year) now\b"),
    ),
    (
        "unit_back",
        _rx(
            r"\b(?:all|over the past|over the last|the past|the last|in the past)"
            r" (week|month|year|fortnight)\b"
        ),
    ),
    (
        "bonfire",
        _rx(r"\b(?:since|on|from) (bonfire night|the clocks went back|the clocks changed)\b"),
    ),
    ("season_year", _rx(r"\b(spring|summer|autumn|winter) (?:of )?(20\d{2})\b")),
    ("christmas_year", _rx(r"\b(?:christmas|xmas) (20\d{2})\b")),
    # "on saturday mornings" is a habit, not a day.
    (
        "weekday",
        _rx(
            rf"\b(?:last|on|since) {_WEEKDAY}\b"
            r"(?!'?s\b| (?:mornings|afternoons|evenings|nights)\b)"
        ),
    ),
    (
        "christmas",
        _rx(r"\b(?:since|over|before|after) (?:the )?(christmas|xmas|new year|easter)\b"),
    ),
]
_MONTH_STEMS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_UNIT_STEMS = (
    "day",
    "dys",
    "night",
    "week",
    "wek",
    "wk",
    "fortnight",
    "month",
    "mth",
    "year",
    "yr",
)
# Words one of which every match of a pattern contains: a pattern runs only on text that
# has one, so most of the scan is a few substring tests (a test proves none is skipped).
NEEDLES: dict[str, tuple[str, ...]] = {
    "numeric_date": ("/", ".", "-"),
    "iso_date": ("-",),
    "numeric_day_month": ("/",),
    "day_month": _MONTH_STEMS,
    "month_day": _MONTH_STEMS,
    "month_year": (" 19", " 20"),
    "ago": ("ago",),
    "for_duration": _UNIT_STEMS,
    "past_duration": ("last ", "past "),
    "in_fortnight": ("fortnight",),
    "bare_duration": _UNIT_STEMS,
    "since_month": _MONTH_STEMS,
    "day_of_month": tuple(f"the {digit}" for digit in "0123456789"),
    "year": ("19", "20"),
    "this_time_last_year": ("this time last",),
    "year_part": ("year",),
    "last_unit": ("last",),
    "yesterday": ("yest", "yday", "last ni", "overnight"),
    "today": (
        "today",
        "this morning",
        "this afternoon",
        "this evening",
        "tonight",
        "right now",
        "all night",
        "just",
        " min",
        " hour",
        " hr",
    ),
    "this_month": ("this month",),
    "ordinal_unit": (" now",),
    "unit_back": ("week", "month", "year", "fortnight"),
    "bonfire": ("bonfire", "clocks"),
    "season_year": ("spring", "summer", "autumn", "winter"),
    "christmas_year": ("christmas", "xmas"),
    "weekday": ("mon", "tue", "wed", "thu", "fri", "sat", "sun"),
    "christmas": ("christmas", "xmas", "new year", "easter"),
}
# Patterns share needles: each is looked for once per text.
_ALL_NEEDLES = tuple(sorted({needle for needles in NEEDLES.values() for needle in needles}))
# Misspellings of "since" seen in texts; the rest of the texting spellings come with the rules.
_SINCE_TYPOS = re.compile(r"\b(?:sinse|scince|sinc|snce)\b")
# The same patterns compiled for ASCII find the same matches in text that ``_is_plain``, and
# test word boundaries with a table instead of looking characters up in the Unicode database.
_ASCII_PATTERNS = [(kind, re.compile(pattern.pattern, re.ASCII)) for kind, pattern in PATTERNS]
_ASCII_SINCE_TYPOS = re.compile(_SINCE_TYPOS.pattern, re.ASCII)
_SEPARATORS = re.compile(r"[\x1c-\x1f]")
_ANNOTATION = re.compile(r"\[[^\]\n]{0,200}\]")


@dataclass(frozen=True)
class FoundDate:
    """A date the text gives, and whether it only says when the resident moved in."""

    day: date
    words: str
    moving_in: bool = False


def _number(text: str) -> int:
    text = text.strip()
    return int(text) if text.isdigit() else NUMBERS.get(text, NUMBERS.get(text.split()[-1], 1))


_UNITS = {"dy": "day", "wek": "week", "wk": "week", "mth": "month", "yr": "year"}
SEASONS = {"spring": 3, "summer": 6, "autumn": 9, "fall": 9, "winter": 12}


def _minus(received: date, amount: int, unit: str) -> date:
    unit = unit.rstrip("s")
    unit = _UNITS.get(unit, unit)
    if unit in ("day", "night"):
        return received - timedelta(days=amount)
    if unit == "week":
        return received - timedelta(weeks=amount)
    if unit == "fortnight":
        return received - timedelta(weeks=2 * amount)
    if unit == "month":
        return received - relativedelta(months=amount)
    return received - relativedelta(years=amount)


def _most_recent_month(received: date, month: int) -> date:
    year = received.year if month <= received.month else received.year - 1
    return date(year, month, 1)


def _most_recent(when: date, received: date) -> date:
    """``when`` in the received year, or a year earlier if that is still to come."""
    return when if when <= received else when - relativedelta(years=1)


def _safe_date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _dated(year: str | None, received: date, month: int, day: int) -> date | None:
    """A day and month, with the year given or, without one, the most recent such day.

    A date without a year that falls a few weeks ahead is an appointment or a deadline
    ("the engineer is coming on 3 December"), not the same day last year, so it gives None.
    """
    if year == "last year":
        return _safe_date(received.year - 1, month, day)
    if year:
        value = int(year)
        return _safe_date(value + 2000 if value < 100 else value, month, day)
    candidate = _safe_date(received.year, month, day)
    if candidate is None:
        return None
    if candidate <= received:
        return candidate
    if (candidate - received).days <= UPCOMING_DAYS:
        return None
    return _safe_date(received.year - 1, month, day)


def _month(name: str) -> int:
    return MONTHS[name if name in MONTHS else name[:3]]


def _resolve(kind: str, match: re.Match[str], received: date) -> date | None:
    groups = match.groups()
    if kind == "numeric_date":
        return _dated(groups[2], received, int(groups[1]), int(groups[0]))
    if kind == "numeric_day_month":
        return _dated(None, received, int(groups[1]), int(groups[0]))
    if kind == "iso_date":
        return _safe_date(int(groups[0]), int(groups[1]), int(groups[2]))
    if kind == "day_month":
        return _dated(groups[2], received, _month(groups[1]), int(groups[0]))
    if kind == "month_day":
        return _dated(groups[2], received, _month(groups[0]), int(groups[1]))
    if kind == "month_year":
        return date(int(groups[1]), _month(groups[0]), 1)
    if kind in ("ago", "for_duration", "past_duration"):
        return _minus(received, _number(groups[0]), groups[1])
    if kind == "in_fortnight":
        return received - timedelta(weeks=2)
    if kind == "bare_duration":
        amount, unit = (groups[0], groups[1]) if groups[1] else (groups[2], groups[3])
        return _minus(received, _number(amount), unit)
    if kind == "since_month":
        name = next(group for group in groups if group)
        month = _month(name)
        if "last " + name in match.group(0):
            return date(received.year - 1, month, 1)
        start = _most_recent_month(received, month)
        ahead = (month - received.month) % 12
        if 0 < ahead <= 2 and not match.group(0).startswith(("since", "back", "last")):
            # "in January" written in November is a plan, not last January.
            return None
        return start
    if kind == "day_of_month":
        day = int(groups[0])
        candidate = _safe_date(received.year, received.month, day)
        if candidate is not None and candidate <= received:
            return candidate
        previous = received - relativedelta(months=1)
        return _safe_date(previous.year, previous.month, day)
    if kind == "year":
        return date(int(groups[0]), 1, 1)
    if kind == "this_time_last_year":
        return received - relativedelta(years=1)
    if kind == "year_part":
        year = received.year - 1 if groups[1] == "last" else received.year
        month = {"start": 1, "beginning": 1, "middle": 6, "end": 12}[groups[0]]
        return date(year, month, 1)
    if kind == "last_unit":
        unit = groups[0]
        if unit == "week":
            return received - timedelta(weeks=1)
        if unit == "month":
            return received - relativedelta(months=1)
        if unit == "year":
            return date(received.year - 1, 1, 1)
        if unit in ("christmas", "xmas"):
            return date(received.year - 1, 12, 25)
        if unit == "easter":
            return _most_recent(date(received.year, 4, 1), received)
        if unit == "winter":
            return _most_recent(date(received.year - 1, 12, 1), received)
        return _most_recent(date(received.year, SEASONS[unit], 1), received)
    if kind == "yesterday":
        return received - timedelta(days=1)
    if kind == "today":
        return received
    if kind == "ordinal_unit":
        ordinals = {"second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6}
        number = ordinals.get(groups[0]) or int(re.sub(r"\D", "", groups[0]) or 1)
        return _minus(received, number - 1, groups[1]) if number > 1 else received
    if kind == "this_month":
        return received.replace(day=1)
    if kind == "unit_back":
        return _minus(received, 1, groups[0])
    if kind == "bonfire":
        when = date(received.year, 11, 5) if "bonfire" in groups[0] else date(received.year, 10, 25)
        return _most_recent(when, received)
    if kind == "season_year":
        return date(int(groups[1]), SEASONS[groups[0]], 1)
    if kind == "christmas_year":
        return date(int(groups[0]), 12, 25)
    if kind == "weekday":
        target = next(i for i, day in enumerate(WEEKDAYS) if day.startswith(groups[0][:3]))
        delta = (received.weekday() - target) % 7 or 7
        return received - timedelta(days=delta)
    if kind == "christmas":
        holiday = groups[0]
        if holiday in ("christmas", "xmas"):
            when = date(received.year, 12, 25)
        elif holiday == "new year":
            when = date(received.year, 1, 1)
        else:
            when = date(received.year, 4, 1)
        return _most_recent(when, received)
    return None


Reading = Literal["problem", "moving in", "other"]


def _reading(text: str, start: int, kind: str) -> Reading:
    """How the words just before a date tie it to the problem: "problem", "moving in", or
    "other" for a date about something else.

    Only the date's own clause counts: "I got your letter. Three weeks ago the ceiling came
    down" dates the ceiling. The nearest telling word decides.
    """
    before = text[max(0, start - 60) : start]
    if _DEADLINE_BEFORE.search(before):
        return "other"
    if kind == "bare_duration" and _AGE_BEFORE.search(before):
        return "other"
    breaks = list(_CLAUSE_BREAK.finditer(before))
    if breaks:
        before = before[breaks[-1].end() :]
    if _GOING.search(before) or _CALL_BACK.search(before):
        return "other"
    words = _LETTERS.findall(before)[-4:]
    if kind == "bare_duration" and words[-1:] == ["in"] and {"be", "time"} & set(words):
        # "it should be fixed in 2 weeks" is ahead; "the first time in 2 years" is an idiom.
        return "other"
    for index in range(len(words) - 1, -1, -1):
        word = words[index]
        if word in NEVER_THE_INCIDENT:
            return "other"
        if word in THE_INCIDENT:
            return "problem"
        undone = bool(NEGATIONS.intersection(words[max(0, index - 2) : index]))
        if undone or "since" in words[:index]:
            continue
        if word in MOVING_IN:
            return "moving in"
        if word in LIVING and words[index + 1 : index + 2] == ["with"]:
            continue
        if word in NOT_THE_INCIDENT:
            return "other"
    return "problem"


def _is_plain(text: str) -> bool:
    """Whether ``text`` is ASCII without the information separators (``\\x1c``-``\\x1f``),
    the only ASCII characters whose class (``\\s``) is not the same for Unicode and ASCII."""
    return text.isascii() and _SEPARATORS.search(text) is None


def find_dates(text: str, received: date) -> list[FoundDate]:
    """Every date the text gives for the problem, resolved against ``received``."""
    # Staff annotations ("[Letter received 12 May ...]") date the paperwork, not the problem.
    text = _ANNOTATION.sub(lambda m: " " * len(m.group(0)), text)
    plain = _is_plain(text)
    text = (_ASCII_SINCE_TYPOS if plain else _SINCE_TYPOS).sub("since", text)
    found: list[FoundDate] = []
    taken: list[tuple[int, int]] = []
    present = {needle for needle in _ALL_NEEDLES if needle in text}
    for kind, pattern in _ASCII_PATTERNS if plain else PATTERNS:
        if present.isdisjoint(NEEDLES[kind]):
            continue
        for match in pattern.finditer(text):
            if any(start < match.end() and match.start() < end for start, end in taken):
                continue
            reading = _reading(text, match.start(), kind)
            if reading == "other":
                # Nor may part of it count on its own ("for 20 years" -> "20 years").
                taken.append((match.start(), match.end()))
                continue
            day = _resolve(kind, match, received)
            if day is None or day > received or day.year < 1990:
                continue
            taken.append((match.start(), match.end()))
            words = " ".join(match.group(0).split())
            found.append(FoundDate(day, words, moving_in=reading == "moving in"))
    return found


def incident_date(text: str, received: date) -> FoundDate | None:
    """When the problem happened or began: the earliest date the text gives, passing over
    when the resident moved in if anything else dates the problem."""
    dates = find_dates(text, received)
    dates = [found for found in dates if not found.moving_in] or dates
    return min(dates, key=lambda d: d.day) if dates else None
