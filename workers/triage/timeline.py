"""When did the problem happen? Dates and time phrases found in a message.

The policy's time limit (3 months by default) and the Code's 12 months are counted from
when the issue happened or began, so every time expression is resolved against the date
the message arrived and the earliest one wins: "the leak started in March and got worse
last week" began in March. Nothing here ever rejects a message; it only informs the flag
a person applies discretion to.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

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
}
WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]

_MONTH = (
    r"(jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sept?(?:ember)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
)
_NUM = (
    r"(\d{1,2}|a|an|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen"
    r"|fourteen|fifteen|eighteen|twenty|a couple of|a couple|couple of|a few|few|several)"
)
_UNIT = (
    r"(day|days|night|nights|week|weeks|wk|wks|fortnight|fortnights|month|months|year|years"
    r"|yr|yrs)"
)
_SINCE = r"(?:since|in|back in|from|during|for|start of|end of|beginning of|early|late|mid)"
# "may" is a month only where nothing else would make sense of it.
_SINCE_MAY = r"(?:since|back in|early|late|mid|end of|start of|beginning of)"
# Dates next to these words are about something else: our letters and replies, leave, plans.
NOT_THE_INCIDENT = (
    "response",
    "reply",
    "letter",
    "dated",
    "until",
    "till",
    "returning",
    "return",
    "due",
    "will",
    "planned",
    "scheduled",
    "starting",
    "expected",
    "deadline",
    "offer",
    "offered",
    "transcribed",
    "leave",
    "within",
    "took",
    "completion",
    "come",
    "visit",
    "attend",
    "tomorrow",
)


def _rx(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("numeric_date", _rx(r"\b(\d{1,2})[/.-](\d{1,2})[/.-](\d{2}|\d{4})\b")),
    ("iso_date", _rx(r"\b(20\d{2})-(\d{2})-(\d{2})\b")),
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
            rf"\b{_NUM} ?(days|nights|weeks|wks|months|years|yrs)\b"
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
        ),
    ),
    ("year", _rx(rf"\b{_SINCE}\s+(20\d{{2}}|19\d{{2}})\b")),
    (
        "last_unit",
        _rx(r"\blast (week|month|year|winter|summer|spring|autumn|christmas|easter)\b"),
    ),
    ("yesterday", _rx(r"\b(yesterday|last night|overnight)\b")),
    (
        "today",
        _rx(
            r"\b(today|this morning|tonight|this afternoon|this evening|right now|just now"
            r"|all night|just (?:happened|threatened|come|came|gone|went|packed|broke|burst"
            r"|collapsed|fallen|fell|started|stopped|flooded|caught)"
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
    ("christmas_year", _rx(r"\b(?:christmas|xmas) (20\d{2})\b")),
    (
        "weekday",
        _rx(r"\b(?:last|on|since) (monday|tuesday|wednesday|thursday|friday|saturday|sunday)\b"),
    ),
    ("christmas", _rx(r"\b(?:since|over|before|after) (christmas|xmas|new year|easter)\b")),
]
_ANNOTATION = re.compile(r"\[[^\]\n]{0,200}\]")


@dataclass(frozen=True)
class FoundDate:
    day: date
    words: str


def _number(text: str) -> int:
    text = text.strip()
    return int(text) if text.isdigit() else NUMBERS.get(text, NUMBERS.get(text.split()[-1], 1))


def _minus(received: date, amount: int, unit: str) -> date:
    unit = unit.rstrip("s")
    if unit in ("day", "night"):
        return received - timedelta(days=amount)
    if unit in ("week", "wk"):
        return received - timedelta(weeks=amount)
    if unit == "fortnight":
        return received - timedelta(weeks=2 * amount)
    if unit == "month":
        return received - relativedelta(months=amount)
    return received - relativedelta(years=amount)


def _most_recent_month(received: date, month: int) -> date:
    year = received.year if month <= received.month else received.year - 1
    return date(year, month, 1)


def _safe_date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _year(text: str | None, received: date, month: int, day: int) -> int:
    if text == "last year":
        return received.year - 1
    if text:
        value = int(text)
        return value + 2000 if value < 100 else value
    # A date without a year is the most recent one that is not in the future.
    candidate = _safe_date(received.year, month, day)
    return received.year if candidate and candidate <= received else received.year - 1


def _resolve(kind: str, match: re.Match[str], received: date) -> date | None:
    groups = match.groups()
    if kind == "numeric_date":
        day, month = int(groups[0]), int(groups[1])
        return _safe_date(_year(groups[2], received, month, day), month, day)
    if kind == "iso_date":
        return _safe_date(int(groups[0]), int(groups[1]), int(groups[2]))
    if kind == "day_month":
        month = MONTHS[groups[1][:3] if groups[1] not in MONTHS else groups[1]]
        return _safe_date(_year(groups[2], received, month, int(groups[0])), month, int(groups[0]))
    if kind == "month_day":
        month = MONTHS[groups[0] if groups[0] in MONTHS else groups[0][:3]]
        day = int(groups[1])
        return _safe_date(_year(groups[2], received, month, day), month, day)
    if kind == "month_year":
        month = MONTHS[groups[0] if groups[0] in MONTHS else groups[0][:3]]
        return date(int(groups[1]), month, 1)
    if kind in ("ago", "for_duration", "past_duration"):
        return _minus(received, _number(groups[0]), groups[1])
    if kind == "in_fortnight":
        return received - timedelta(weeks=2)
    if kind == "bare_duration":
        amount, unit = (groups[0], groups[1]) if groups[1] else (groups[2], groups[3])
        return _minus(received, _number(amount), unit)
    if kind == "since_month":
        name = groups[0] or groups[1]
        month = MONTHS[name if name in MONTHS else name[:3]]
        if "last " + name in match.group(0):
            return date(received.year - 1, month, 1)
        return _most_recent_month(received, month)
    if kind == "year":
        return date(int(groups[0]), 1, 1)
    if kind == "last_unit":
        unit = groups[0]
        if unit == "week":
            return received - timedelta(weeks=1)
        if unit == "month":
            return received - relativedelta(months=1)
        if unit == "year":
            return date(received.year - 1, 1, 1)
        if unit == "christmas":
            return date(received.year - 1, 12, 25)
        seasons = {"spring": 3, "summer": 6, "autumn": 9, "winter": 12, "easter": 4}
        month = seasons[unit]
        start = date(received.year, month, 1)
        if unit == "winter":
            start = date(received.year - 1, 12, 1)
        return start if start <= received else start - relativedelta(years=1)
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
        return when if when <= received else when - relativedelta(years=1)
    if kind == "christmas_year":
        return date(int(groups[0]), 12, 25)
    if kind == "weekday":
        target = WEEKDAYS.index(groups[0])
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
        return when if when <= received else when - relativedelta(years=1)
    return None


def _about_something_else(text: str, start: int) -> bool:
    before = re.findall(r"[a-z]+", text[max(0, start - 40) : start])[-4:]
    return any(word in NOT_THE_INCIDENT for word in before)


def find_dates(text: str, received: date) -> list[FoundDate]:
    """Every date the text gives for the problem, resolved against ``received``."""
    # Staff annotations ("[Letter received 12 May ...]") date the paperwork, not the problem.
    text = _ANNOTATION.sub(lambda m: " " * len(m.group(0)), text)
    found: list[FoundDate] = []
    taken: list[tuple[int, int]] = []
    for kind, pattern in PATTERNS:
        for match in pattern.finditer(text):
            if any(start < match.end() and match.start() < end for start, end in taken):
                continue
            if _about_something_else(text, match.start()):
                continue
            day = _resolve(kind, match, received)
            if day is None or day > received or day.year < 1990:
                continue
            taken.append((match.start(), match.end()))
            found.append(FoundDate(day, " ".join(match.group(0).split())))
    return found


def incident_date(text: str, received: date) -> FoundDate | None:
    """When the problem happened or began: the earliest date the text gives."""
    dates = find_dates(text, received)
    return min(dates, key=lambda d: d.day) if dates else None
