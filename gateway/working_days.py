"""Statutory clocks in working days: weekends and the UK nation's bank holidays skipped.

The Housing Ombudsman's Code counts in working days, and the dates a customer is told
must be the dates the landlord will be held to, so they use the bank holidays of the
configured nation (England and Wales share theirs).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

from gateway.schema import Deadlines
from gateway.settings import Settings

UK_TIME = ZoneInfo("Europe/London")
_SUBDIVISIONS = {"england": "ENG", "wales": "WLS", "scotland": "SCT", "northern_ireland": "NIR"}


@lru_cache(maxsize=8)
def _bank_holidays(nation: str, year: int) -> frozenset[date]:
    calendar = holidays.country_holidays("GB", subdiv=_SUBDIVISIONS[nation], years=[year, year + 1])
    return frozenset(calendar.keys())


def is_working_day(day: date, nation: str) -> bool:
    return day.weekday() < 5 and day not in _bank_holidays(nation, day.year)


def add_working_days(start: date, days: int, nation: str) -> date:
    """The date ``days`` working days after ``start`` (``start`` itself not counted)."""
    current = start
    remaining = days
    while remaining > 0:
        current += timedelta(days=1)
        if is_working_day(current, nation):
            remaining -= 1
    return current


def uk_date(moment: datetime) -> date:
    return moment.astimezone(UK_TIME).date()


def compute_deadlines(
    received_at: datetime, settings: Settings, stage: int = 1, acknowledged_on: date | None = None
) -> Deadlines:
    """Acknowledge-by from receipt; respond-by from the acknowledgement (or its deadline)."""
    if stage == 2:
        ack_days, respond_days = (
            settings.stage2_acknowledge_working_days,
            settings.stage2_respond_working_days,
        )
    else:
        ack_days, respond_days = settings.acknowledge_working_days, settings.respond_working_days
    acknowledge_by = add_working_days(uk_date(received_at), ack_days, settings.uk_nation)
    respond_from = min(acknowledged_on, acknowledge_by) if acknowledged_on else acknowledge_by
    return Deadlines(
        acknowledge_by=acknowledge_by,
        respond_by=add_working_days(respond_from, respond_days, settings.uk_nation),
    )
