"""The email path end to end: SMTP in, one record on the feed, one acknowledgement out."""

from __future__ import annotations

import smtplib
from collections.abc import Callable

import redis

from tests.conftest import Relay, feed_records, make_mail


def send(
    host: str,
    port: int,
    raw: bytes,
    sender: str = "sam.taylor@example.net",
    to: str = "hello@housing.test",
) -> tuple[int, bytes]:
    with smtplib.SMTP(host, port, timeout=10) as client:
        client.ehlo("client.example.net")
        client.mail(sender)
        client.rcpt(to)
        return client.data(raw)


def test_mail_becomes_one_record_and_one_acknowledgement(
    smtp_server: tuple[str, int],
    relay: Relay,
    connection: redis.Redis,
    drain: Callable[[], None],
) -> None:
    code, reply = send(*smtp_server, make_mail())
    assert code == 250
    assert b"reference CX-2026-" in reply
    drain()
    records = feed_records(connection)
    assert len(records) == 1
    record = records[0]
    assert record.channel == "email"
    assert record.customer.email == "sam.taylor@example.net"
    assert record.customer.name == "Sam Taylor"
    assert record.subject == "Broken boiler"
    assert "boiler has been broken" in record.text
    assert record.source.message_id == "<m1@example.net>"
    assert record.reference in reply.decode()
    assert record.acknowledgement is not None and record.acknowledgement.status == "sent"
    [ack] = relay.wait_for(1)
    mail_from, rcpts, _ = relay.messages[0]
    assert mail_from == "<>"  # null envelope sender, RFC 3834
    assert rcpts == ["sam.taylor@example.net"]
    assert record.reference in ack["Subject"]
    assert ack["Auto-Submitted"] == "auto-replied"
    assert ack["X-Auto-Response-Suppress"] == "All"
    assert ack["In-Reply-To"] == "<m1@example.net>"
    assert ack["Message-ID"].endswith("@housing.test>")
    body = ack.get_body(("plain",)).get_content()
    assert record.reference in body
    assert record.deadlines is not None
    assert record.deadlines.respond_by.strftime("%-d %B %Y") in body
