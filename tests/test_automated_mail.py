"""Machine mail is never answered: RFC 3834's signals and the ones large mail systems add.

Each signal alone, in otherwise ordinary mail, must stop the acknowledgement: the relay
receives nothing, and the record says ``suppressed`` with a reason that names the signal,
so an officer can see why nobody was answered. A person whose subject merely sounds
automatic is answered. And since an autoresponder without any of these signals would
loop with us, one address gets at most three acknowledgements a day.
"""

from __future__ import annotations

import smtplib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from gateway.schema import AckStatus, IntakeRecord
from tests.conftest import Relay, feed_records, make_mail

CRAFTED = Path(__file__).parent / "data" / "mail" / "crafted"
PERSON = "Sam Taylor <sam.taylor@example.net>"


def deliver(
    server: tuple[str, int],
    connection: redis.Redis,
    drain: Callable[[], None],
    messages: list[tuple[str, bytes]],
) -> list[IntakeRecord]:
    """Send ``(envelope sender, raw)`` over one connection; the records, in order."""
    references = []
    with smtplib.SMTP(*server, timeout=30) as client:
        client.ehlo("mail.example.net")
        for envelope_sender, raw in messages:
            client.mail(envelope_sender)
            client.rcpt("hello@housing.test")
            code, reply = client.data(raw)
            assert code == 250, reply
            references.append(reply.decode().rsplit(" ", 1)[-1])
    drain()
    records = {record.reference: record for record in feed_records(connection)}
    return [records[reference] for reference in references]


SIGNALS = [
    pytest.param(
        {"extra_headers": {"Auto-Submitted": "auto-replied"}},
        "Auto-Submitted: auto-replied",
        id="auto-submitted-auto-replied",
    ),
    pytest.param(
        {"extra_headers": {"Auto-Submitted": "auto-generated"}},
        "Auto-Submitted: auto-generated",
        id="auto-submitted-auto-generated",
    ),
    pytest.param(
        {"extra_headers": {"Auto-Submitted": 'Auto-Notified; owner-email="it@example.org"'}},
        "Auto-Submitted: auto-notified",
        id="auto-submitted-with-parameters",
    ),
    pytest.param(
        {"extra_headers": {"Precedence": "bulk"}}, "Precedence: bulk", id="precedence-bulk"
    ),
    pytest.param(
        {"extra_headers": {"Precedence": "junk"}}, "Precedence: junk", id="precedence-junk"
    ),
    pytest.param(
        {"extra_headers": {"Precedence": "list"}}, "Precedence: list", id="precedence-list"
    ),
    pytest.param(
        {"extra_headers": {"List-Id": "Residents' forum <forum.lists.example.org>"}},
        "mailing list (List-Id)",
        id="list-id",
    ),
    pytest.param(
        {"extra_headers": {"List-Unsubscribe": "<mailto:leave@lists.example.org>"}},
        "mailing list (List-Unsubscribe)",
        id="list-unsubscribe",
    ),
    pytest.param(
        {"extra_headers": {"X-Auto-Response-Suppress": "DR, RN, NRN, OOF, AutoReply"}},
        "X-Auto-Response-Suppress",
        id="x-auto-response-suppress",
    ),
    pytest.param({"extra_headers": {"X-Loop": "helpdesk@example.org"}}, "X-Loop", id="x-loop"),
    pytest.param(
        {"extra_headers": {"X-Intake-Loop": "housing.test"}},
        "X-Intake-Loop present: our own acknowledgement came back",
        id="our-own-loop-header",
    ),
    pytest.param(
        {"extra_headers": {"Return-Path": "<>"}},
        "null return path",
        id="null-return-path-header",
    ),
    pytest.param({"envelope": ""}, "null return path", id="null-envelope-sender"),
    pytest.param(
        {"sender": "Mail Delivery System <MAILER-DAEMON@mx.example.net>"},
        "machine mailbox (mailer-daemon@)",
        id="mailer-daemon",
    ),
    pytest.param(
        {"sender": "postmaster@example.net"}, "machine mailbox (postmaster@)", id="postmaster"
    ),
    pytest.param(
        {"sender": "Acme Energy <noreply@acme-energy.example>"},
        "machine mailbox (noreply@)",
        id="noreply",
    ),
    pytest.param(
        {"sender": "Council Tax <no-reply+reminders@council.example>"},
        "machine mailbox (no-reply+reminders@)",
        id="no-reply-with-tag",
    ),
    pytest.param(
        {"sender": "Parcel Co <do-not-reply@parcels.example>"},
        "machine mailbox (do-not-reply@)",
        id="do-not-reply",
    ),
    pytest.param(
        {"subject": "Automatic reply: Broken boiler"},
        '("automatic reply:")',
        id="automatic-reply-subject",
    ),
    pytest.param(
        {"subject": "Out of Office: Broken boiler"},
        '("out of office:")',
        id="out-of-office-subject",
    ),
    pytest.param(
        {"subject": "=?utf-8?Q?R=C3=A9ponse_automatique_:_Broken_boiler?="},
        '("réponse automatique")',
        id="encoded-french-automatic-reply-subject",
    ),
]


@pytest.mark.parametrize(("change", "reason"), SIGNALS)
def test_each_signal_stops_the_acknowledgement(
    smtp_server: tuple[str, int],
    relay: Relay,
    connection: redis.Redis,
    drain: Callable[[], None],
    change: dict[str, Any],
    reason: str,
) -> None:
    headers = {key: value for key, value in change.items() if key != "envelope"}
    envelope = str(change.get("envelope", "sam.taylor@example.net"))
    raw = make_mail(**headers)
    [record] = deliver(smtp_server, connection, drain, [(envelope, raw)])
    assert record.source.automated
    assert any(reason in r for r in record.source.automated_reasons), (
        record.source.automated_reasons
    )
    ack = record.acknowledgement
    assert ack is not None
    assert ack.status == AckStatus.SUPPRESSED
    assert reason in ack.reason
    assert ack.sent_at is None and ack.message_id is None
    assert relay.messages == []  # the worker sends before it finishes: nothing was sent


def test_a_delivery_report_is_known_by_its_content(
    smtp_server: tuple[str, int], relay: Relay, connection: redis.Redis, drain: Callable[[], None]
) -> None:
    """An Exchange DSN from an ordinary-looking mailbox, its envelope rewritten by a relay:
    only its multipart/report body says what it is."""
    raw = (CRAFTED / "dsn_exchange.eml").read_bytes()
    [record] = deliver(smtp_server, connection, drain, [("relay@mail.example.net", raw)])
    assert record.source.automated_reasons == [
        "multipart/report: a delivery or read report (delivery-status)"
    ]
    assert record.acknowledgement is not None
    assert record.acknowledgement.status == AckStatus.SUPPRESSED
    assert "multipart/report" in record.acknowledgement.reason
    assert relay.messages == []


def test_our_acknowledgement_coming_back_is_not_answered(
    smtp_server: tuple[str, int], relay: Relay, connection: redis.Redis, drain: Callable[[], None]
) -> None:
    """A customer's mailbox that returns our acknowledgement (a forward rule, a careless
    autoresponder) must not start a loop."""
    [first] = deliver(smtp_server, connection, drain, [("sam.taylor@example.net", make_mail())])
    assert first.acknowledgement is not None and first.acknowledgement.status == AckStatus.SENT
    [(_, _, ack)] = relay.messages
    returned = ack.as_bytes()
    returned = returned.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    [record] = deliver(smtp_server, connection, drain, [("sam.taylor@example.net", returned)])
    assert record.reference != first.reference
    reasons = record.source.automated_reasons
    assert "X-Intake-Loop present: our own acknowledgement came back" in reasons
    assert "Auto-Submitted: auto-replied" in reasons
    assert record.acknowledgement is not None
    assert record.acknowledgement.status == AckStatus.SUPPRESSED
    assert len(relay.messages) == 1


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"subject": "Out of office hours repair needed"}, id="out-of-office-hours"),
        pytest.param({"extra_headers": {"Auto-Submitted": "no"}}, id="auto-submitted-no"),
        pytest.param({"subject": "Re: Automatic reply"}, id="reply-about-an-automatic-reply"),
        pytest.param({"sender": "Nora Bounce <nora.bounce@example.net>"}, id="surname-bounce"),
        pytest.param({"extra_headers": {"Precedence": "first-class"}}, id="precedence-other"),
    ],
)
def test_a_person_is_answered(
    smtp_server: tuple[str, int],
    relay: Relay,
    connection: redis.Redis,
    drain: Callable[[], None],
    change: dict[str, Any],
) -> None:
    raw = make_mail(**change)
    [record] = deliver(smtp_server, connection, drain, [("sam.taylor@example.net", raw)])
    assert not record.source.automated, record.source.automated_reasons
    assert record.acknowledgement is not None
    assert record.acknowledgement.status == AckStatus.SENT
    [ack] = relay.wait_for(1)
    _, recipients, _ = relay.messages[0]
    assert recipients == [record.customer.email]
    assert ack["In-Reply-To"] == "<m1@example.net>"
    assert record.reference in ack["Subject"]


def test_at_most_three_acknowledgements_per_address_a_day(
    smtp_server: tuple[str, int], relay: Relay, connection: redis.Redis, drain: Callable[[], None]
) -> None:
    """An autoresponder that carries none of the signals would loop with us forever; the
    fourth message of a day from one address is kept as a case, but not answered."""
    day = [
        ("Broken boiler", "The boiler stopped this morning and there is no hot water."),
        ("Still no heating", "Nobody has called back about the boiler; the flat is cold."),
        ("Engineer did not come", "I waited in all day for the engineer and nobody came."),
        ("Complaint", "I want to complain about how the boiler repair has been handled."),
    ]
    messages = [
        (
            "sam.taylor@example.net",
            make_mail(subject=subject, body=body, message_id=f"<day-{i}@example.net>"),
        )
        for i, (subject, body) in enumerate(day)
    ]
    ann = make_mail(
        sender="Ann Lee <ann.lee@example.net>",
        subject="Lift out of order",
        body="The lift in Mill House has been out of order since Friday.",
        message_id="<ann-1@example.net>",
    )
    messages.append(("ann.lee@example.net", ann))
    records = deliver(smtp_server, connection, drain, messages)
    statuses = [r.acknowledgement and r.acknowledgement.status for r in records]
    assert statuses == [AckStatus.SENT] * 3 + [AckStatus.SUPPRESSED, AckStatus.SENT]
    fourth = records[3].acknowledgement
    assert fourth is not None
    assert "3 acknowledgements to this address in 24 hours" in fourth.reason
    assert not records[3].source.automated  # a person's mail, kept as a case all the same
    sent = relay.wait_for(4)
    assert len(sent) == 4
    assert [rcpts for _, rcpts, _ in relay.messages] == [["sam.taylor@example.net"]] * 3 + [
        ["ann.lee@example.net"]
    ]
    assert [m["In-Reply-To"] for m in sent[:3]] == [f"<day-{i}@example.net>" for i in range(3)]
