"""Follow-ups, repeats and campaigns, end to end: mail in over SMTP, records on the feed."""

from __future__ import annotations

import smtplib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import redis

from channels.email.identity import email_identity
from gateway.intake import Arrival, IntakeContext, accept
from gateway.schema import IntakeRecord
from tests.conftest import Relay, feed_records, make_mail

BOILER = (
    "The boiler in my flat has been broken for two weeks and nobody has come out to fix it. "
    "We have no heating and no hot water, and my children are getting ill from the cold. "
    "I have phoned three times and each time I was told an engineer would come the next day, "
    "but nobody came. Please send someone this week."
)
MOULD = (
    "There is black mould spreading across the bedroom ceiling. I reported it in the spring "
    "and was promised an inspection, but no one has been in touch since."
)
LETTER = (
    "We, the residents of Riverside Court, write to complain about the state of the lifts. "
    "Both lifts have been out of service for most of the last month, leaving elderly and "
    "disabled residents trapped in their flats and parents carrying prams up eleven floors. "
    "We ask the landlord to repair both lifts within seven days, to provide a working lift "
    "at all times from now on, and to meet the residents' association to explain what went "
    "wrong. Yours faithfully, {name}, flat {flat}"
)


def send(server: tuple[str, int], raw: bytes, sender: str = "sam.taylor@example.net") -> None:
    with smtplib.SMTP(*server, timeout=10) as client:
        client.sendmail(sender, ["hello@housing.test"], raw)


def by_subject(records: list[IntakeRecord]) -> dict[str | None, IntakeRecord]:
    return {r.subject: r for r in records}


def reasons(record: IntakeRecord) -> str:
    assert record.dedupe is not None
    return " | ".join(record.dedupe.reasons)


def test_an_exact_repeat_is_a_duplicate_published_linked_and_not_acknowledged_again(
    smtp_server: tuple[str, int],
    relay: Relay,
    connection: redis.Redis,
    drain: Callable[[], None],
) -> None:
    send(smtp_server, make_mail(BOILER, subject="Boiler", message_id="<a1@example.net>"))
    drain()
    send(smtp_server, make_mail(BOILER, subject="Boiler again", message_id="<a2@example.net>"))
    drain()
    first, repeat = feed_records(connection)
    assert first.disposition == "new_case" and first.duplicate_of is None
    assert repeat.disposition == "duplicate"
    assert repeat.duplicate_of == first.id
    assert repeat.text == first.text  # published in full, not dropped
    assert first.reference in reasons(repeat)
    assert repeat.dedupe is not None and repeat.dedupe.similarity == 1.0
    assert repeat.acknowledgement is not None and repeat.acknowledgement.status == "suppressed"
    assert len(relay.messages) == 1


def test_a_repeat_with_a_few_words_changed_is_a_duplicate(
    smtp_server: tuple[str, int], connection: redis.Redis, drain: Callable[[], None]
) -> None:
    edited = (
        BOILER.replace("two weeks", "three weeks")
        .replace("phoned three times", "phoned four times")
        .replace("this week", "today")
    )
    send(smtp_server, make_mail(BOILER, subject="Boiler", message_id="<b1@example.net>"))
    send(smtp_server, make_mail(edited, subject="Still broken", message_id="<b2@example.net>"))
    drain()
    records = by_subject(feed_records(connection))
    repeat = records["Still broken"]
    assert repeat.disposition == "duplicate"
    assert repeat.duplicate_of == records["Boiler"].id
    assert repeat.dedupe is not None and 0.8 <= (repeat.dedupe.similarity or 0) < 1.0


def test_the_same_text_from_another_customer_is_their_own_case(
    smtp_server: tuple[str, int],
    relay: Relay,
    connection: redis.Redis,
    drain: Callable[[], None],
) -> None:
    send(smtp_server, make_mail(BOILER, subject="Mine", message_id="<c1@example.net>"))
    other = make_mail(
        BOILER, subject="Theirs", sender="Jo Neighbour <jo@example.org>", message_id="<c2@x>"
    )
    send(smtp_server, other, sender="jo@example.org")
    drain()
    records = feed_records(connection)
    assert [r.disposition for r in records] == ["new_case", "new_case"]
    assert all(r.duplicate_of is None and r.campaign is None for r in records)
    assert len(relay.messages) == 2


def test_the_same_text_after_the_window_is_a_new_case(
    smtp_server: tuple[str, int],
    intake_ctx: IntakeContext,
    connection: redis.Redis,
    drain: Callable[[], None],
) -> None:
    old = make_mail(MOULD, subject="Mould", message_id="<d1@example.net>")
    key, message_id = email_identity(old)
    received = datetime.now(UTC) - timedelta(days=intake_ctx.settings.duplicate_window_days + 1)
    arrival = Arrival(
        channel="email",
        transport="smtp",
        normaliser="email",
        raw=old,
        idempotency_key=key,
        meta={"envelope_from": "sam.taylor@example.net", "message_id": message_id},
        received_at=received,
    )
    accept(arrival, intake_ctx)
    drain()
    send(smtp_server, make_mail(MOULD, subject="Mould again", message_id="<d2@example.net>"))
    drain()
    records = by_subject(feed_records(connection))
    assert records["Mould"].received_at == received
    assert records["Mould again"].disposition == "new_case"
    assert records["Mould again"].duplicate_of is None
    assert "in the last 30 days" in reasons(records["Mould again"])


def test_a_reply_to_our_acknowledgement_is_a_follow_up_and_not_acknowledged_again(
    smtp_server: tuple[str, int],
    relay: Relay,
    connection: redis.Redis,
    drain: Callable[[], None],
) -> None:
    send(smtp_server, make_mail(BOILER, subject="Boiler", message_id="<e1@example.net>"))
    drain()
    [ack] = relay.wait_for(1)
    reply = make_mail(
        "Thank you. Could the engineer come in the morning? I work afternoons.",
        subject="Re: Boiler",
        message_id="<e2@example.net>",
        extra_headers={"In-Reply-To": ack["Message-ID"], "References": ack["Message-ID"]},
    )
    send(smtp_server, reply)
    drain()
    case, follow_up = feed_records(connection)
    assert follow_up.disposition == "follow_up"
    assert follow_up.thread.case_reference == case.reference
    assert follow_up.duplicate_of is None
    assert "answers our acknowledgement" in reasons(follow_up)
    assert follow_up.acknowledgement is not None
    assert follow_up.acknowledgement.status == "suppressed"
    assert len(relay.messages) == 1


def test_a_reference_quoted_by_the_same_customer_links_a_follow_up(
    smtp_server: tuple[str, int], connection: redis.Redis, drain: Callable[[], None]
) -> None:
    send(smtp_server, make_mail(BOILER, subject="Boiler", message_id="<f1@example.net>"))
    drain()
    [case] = feed_records(connection)
    year, number = case.reference.split("-")[1:]
    in_body = make_mail(
        f"Any news on my case? My ref is cx {year} {number}. Still no heating.",
        subject="Any news",
        message_id="<f2@example.net>",
    )
    in_subject = make_mail(
        "Nobody has been in touch yet.",
        subject=f"Complaint ref {year}-{number}",
        message_id="<f3@example.net>",
    )
    send(smtp_server, in_body)
    send(smtp_server, in_subject)
    drain()
    records = by_subject(feed_records(connection))
    for subject in ("Any news", f"Complaint ref {year}-{number}"):
        assert records[subject].disposition == "follow_up"
        assert records[subject].thread.case_reference == case.reference


def test_someone_elses_reference_is_not_linked(
    smtp_server: tuple[str, int],
    relay: Relay,
    connection: redis.Redis,
    drain: Callable[[], None],
) -> None:
    send(smtp_server, make_mail(BOILER, subject="Boiler", message_id="<g1@example.net>"))
    drain()
    [case] = feed_records(connection)
    stranger = make_mail(
        f"I am writing about case {case.reference}. The stairwell light outside my door "
        "has been broken for a month.",
        subject="Stairwell light",
        sender="Alex Stranger <alex@example.com>",
        message_id="<g2@example.com>",
    )
    send(smtp_server, stranger, sender="alex@example.com")
    drain()
    record = by_subject(feed_records(connection))["Stairwell light"]
    assert record.disposition == "new_case"
    assert record.thread.case_reference is None
    assert f"{case.reference}, which is another customer's case" in reasons(record)
    assert len(relay.wait_for(2)) == 2  # acknowledged as the new case it is


def test_a_campaign_keeps_every_customers_case_and_shares_one_campaign(
    smtp_server: tuple[str, int],
    relay: Relay,
    connection: redis.Redis,
    drain: Callable[[], None],
) -> None:
    names = ["Ann Lee", "Bo Patel", "Cy Jones", "Di Evans", "Ed Khan"]
    for number, name in enumerate(names, start=1):
        address = f"{name.split()[0].lower()}@residents.example"
        raw = make_mail(
            LETTER.format(name=name, flat=number * 11),
            subject=f"Lifts ({name})",
            sender=f"{name} <{address}>",
            message_id=f"<lift{number}@residents.example>",
        )
        send(smtp_server, raw, sender=address)
        drain()  # one at a time, as they arrive over days
    records = feed_records(connection)
    assert [r.disposition for r in records] == ["new_case"] * 5
    assert [r.duplicate_of for r in records] == [None] * 5
    first, second, *recognised = records
    assert first.campaign is None and second.campaign is None
    assert {r.campaign.id for r in recognised if r.campaign} == {first.id}
    assert [r.campaign.count for r in recognised if r.campaign] == [3, 4, 5]
    assert recognised[0].campaign is not None
    assert recognised[0].campaign.earlier_records == [first.id, second.id]
    assert "near-identical text from 5 customers" in reasons(recognised[-1])
    assert len(relay.wait_for(5)) == 5  # every customer acknowledged


def test_a_machine_sent_copy_is_never_the_original_of_a_persons_message(
    smtp_server: tuple[str, int], connection: redis.Redis, drain: Callable[[], None]
) -> None:
    forwarded = make_mail(
        MOULD,
        subject="Fwd: Mould",
        message_id="<h1@example.net>",
        extra_headers={"Auto-Submitted": "auto-generated"},
    )
    send(smtp_server, forwarded)
    drain()
    send(smtp_server, make_mail(MOULD, subject="Mould", message_id="<h2@example.net>"))
    send(smtp_server, make_mail(MOULD, subject="Mould!", message_id="<h3@example.net>"))
    drain()
    records = by_subject(feed_records(connection))
    machine, person, repeat = records["Fwd: Mould"], records["Mould"], records["Mould!"]
    assert machine.source.automated
    assert person.disposition == "new_case" and person.duplicate_of is None
    assert "sent by a machine" in reasons(person)
    assert repeat.disposition == "duplicate" and repeat.duplicate_of == person.id
