"""The dedupe step on records of any channel, against the real Redis.

Records are built here as a channel's normaliser would leave them, so that channels
without an adapter yet (SMS) and cases the mail path cannot produce on demand (a job run
twice, a customer directory) are covered.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import count

import pytest
import redis
from ulid import ULID

from gateway.ledger import LedgerEntry
from gateway.schema import Customer, Disposition, IntakeRecord, Source
from gateway.settings import Settings
from workers.context import WorkerContext
from workers.dedupe.customers import ContactDirectory
from workers.dedupe.index import LSH, campaign_key
from workers.steps.dedupe import Deduplicate

SAM_EMAIL = "sam.taylor@example.net"
SAM_PHONE = "+447700900123"
PETITION = (
    "We the undersigned tenants of Alder House ask the landlord to replace the broken door "
    "entry system, which has let strangers into the building every night since March, and "
    "to put a caretaker back on site."
)
_numbers = count(1)


class TenancyDirectory:
    """A directory that knows Sam's email address and mobile are one tenant's."""

    def identities(self, customer: Customer) -> frozenset[str]:
        found = set(ContactDirectory().identities(customer))
        if found & {f"email:{SAM_EMAIL}", f"phone:{SAM_PHONE}"}:
            found.add("tenancy:T-1001")
        return frozenset(found)


def tenancy_directory(settings: Settings) -> TenancyDirectory:
    return TenancyDirectory()


def make_record(
    text: str,
    channel: str = "email",
    email: str | None = SAM_EMAIL,
    phone: str | None = None,
    received_at: datetime | None = None,
    automated: bool = False,
    disposition: Disposition = Disposition.NEW_CASE,
) -> IntakeRecord:
    return IntakeRecord(
        id=str(ULID()),
        reference=f"CX-2026-{next(_numbers):06d}",
        channel=channel,  # type: ignore[arg-type]
        received_at=received_at or datetime.now(UTC),
        source=Source(
            transport="smtp" if channel == "email" else "twilio",
            raw_sha256="0" * 64,
            automated=automated,
        ),
        customer=Customer(email=email, phone=phone),
        text=text,
        disposition=disposition,
    )


def run(record: IntakeRecord, settings: Settings, connection: redis.Redis) -> IntakeRecord:
    ctx = WorkerContext.from_settings(settings, connection)
    entry = LedgerEntry(
        id=record.id,
        reference=record.reference,
        channel=record.channel.value,
        transport=record.source.transport,
        normaliser=record.channel.value,
        received_at=record.received_at,
        raw_sha256=record.source.raw_sha256,
        raw_size=0,
        meta={},
    )
    return Deduplicate().process(record, entry, ctx)


def test_a_short_sms_repeated_is_a_duplicate_and_one_word_more_is_not(
    settings: Settings, connection: redis.Redis
) -> None:
    first = run(make_record("Still no heating", "sms", None, SAM_PHONE), settings, connection)
    again = run(make_record("still no heating!!", "sms", None, SAM_PHONE), settings, connection)
    longer = run(
        make_record("still no heating in the flat", "sms", None, SAM_PHONE), settings, connection
    )
    assert first.disposition == "new_case"
    assert again.disposition == "duplicate" and again.duplicate_of == first.id
    assert longer.disposition == "new_case"


def test_a_customer_directory_links_an_sms_to_the_same_tenants_email(
    settings: Settings, connection: redis.Redis
) -> None:
    text = "The communal lights on the third floor landing have been out for a week."
    linked = settings.model_copy(
        update={"customer_directory": "tests.test_dedupe_step:tenancy_directory"}
    )
    email = run(make_record(text), linked, connection)
    sms = run(make_record(text, "sms", None, SAM_PHONE), linked, connection)
    assert email.disposition == "new_case"
    assert sms.disposition == "duplicate" and sms.duplicate_of == email.id


def test_without_a_directory_an_email_and_a_phone_are_different_customers(
    settings: Settings, connection: redis.Redis
) -> None:
    text = "The communal lights on the third floor landing have been out for a week."
    run(make_record(text), settings, connection)
    sms = run(make_record(text, "sms", None, SAM_PHONE), settings, connection)
    assert sms.disposition == "new_case"


def test_the_step_run_twice_gives_the_same_record_and_counts_nothing_twice(
    settings: Settings, connection: redis.Redis
) -> None:
    petitioners = [f"tenant{n}@alder.example" for n in range(3)]
    first, second = (
        run(make_record(PETITION, email=e), settings, connection) for e in petitioners[:2]
    )
    third = make_record(PETITION, email=petitioners[2])
    once = run(third, settings, connection)
    buckets = {k: connection.zcard(k) for k in connection.scan_iter(f"{LSH}:*")}
    twice = run(third, settings, connection)
    assert twice == once
    assert once.campaign is not None and once.campaign.count == 3
    assert once.duplicate_of is None  # not a repeat of itself
    assert {k: connection.zcard(k) for k in connection.scan_iter(f"{LSH}:*")} == buckets
    assert int(connection.hget(campaign_key(first.id), "n") or 0) == 3
    fourth = run(make_record(PETITION, email="tenant9@alder.example"), settings, connection)
    assert fourth.campaign is not None and fourth.campaign.count == 4
    assert second.campaign is None


def test_a_repeat_of_a_record_set_aside_for_review_is_linked_but_stays_for_review(
    settings: Settings, connection: redis.Redis
) -> None:
    text = "Please call me about the damp in the back bedroom, it is getting worse."
    first = run(make_record(text), settings, connection)
    unreadable = make_record(text, disposition=Disposition.NEEDS_REVIEW)
    result = run(unreadable, settings, connection)
    assert result.disposition == "needs_review"
    assert result.duplicate_of == first.id
    assert result.dedupe is not None
    assert any("left as needs_review" in r for r in result.dedupe.reasons)


def test_a_machine_repeating_itself_is_recognised(
    settings: Settings, connection: redis.Redis
) -> None:
    text = "I am out of the office until Monday and will reply on my return."
    first = run(make_record(text, automated=True), settings, connection)
    again = run(make_record(text, automated=True), settings, connection)
    assert again.duplicate_of == first.id
    assert first.campaign is None and again.campaign is None


def test_a_customer_repeat_is_found_even_when_a_campaign_crowds_its_buckets(
    settings: Settings, connection: redis.Redis
) -> None:
    mine = run(make_record(PETITION), settings, connection)
    for n in range(40):  # many more than a bucket lookup reads
        run(make_record(PETITION, email=f"signer{n}@alder.example"), settings, connection)
    again = run(make_record(PETITION), settings, connection)
    assert again.disposition == "duplicate" and again.duplicate_of == mine.id
    assert again.campaign is not None and again.campaign.count == 41


@pytest.mark.parametrize("days, expected", [(29, "duplicate"), (31, "new_case")])
def test_the_window_is_counted_from_the_earlier_message(
    settings: Settings, connection: redis.Redis, days: int, expected: str
) -> None:
    text = "The fence between our gardens blew down in the storm and has not been replaced."
    now = datetime.now(UTC)
    run(make_record(text, received_at=now - timedelta(days=days)), settings, connection)
    assert run(make_record(text, received_at=now), settings, connection).disposition == expected


def test_short_everyday_texts_from_many_customers_are_no_campaign(
    settings: Settings, connection: redis.Redis
) -> None:
    results = [
        run(
            make_record("Any update on my complaint please?", email=f"t{n}@example.org"),
            settings,
            connection,
        )
        for n in range(4)
    ]
    assert [r.campaign for r in results] == [None] * 4
    assert [r.disposition for r in results] == ["new_case"] * 4
