"""Posts forwarded to social@: the public post becomes the record; the team gets the reply."""

from __future__ import annotations

import smtplib
from collections.abc import Callable
from datetime import UTC, datetime

import redis

from tests.conftest import Relay, feed_records, read_mail


def forward(server: tuple[str, int], name: str, sender: str) -> None:
    with smtplib.SMTP(*server, timeout=10) as client:
        client.sendmail(sender, ["social@housing.test"], read_mail(f"social/{name}"))


def test_a_labelled_forward_becomes_the_public_authors_record(
    smtp_server: tuple[str, int],
    relay: Relay,
    connection: redis.Redis,
    drain: Callable[[], None],
) -> None:
    forward(smtp_server, "labelled_x_post.eml", "dana.whitfield@housing.test")
    drain()
    [record] = feed_records(connection)
    assert record.channel == "social"
    assert record.customer.handle == "@marcusbell_g"
    assert record.customer.name == "Marcus Bell"
    assert record.customer.email is None  # the forwarder is not the customer
    assert record.social is not None
    assert record.social.platform == "x"
    assert record.social.post_url == "https://x.com/marcusbell_g/status/1861234567890"
    assert record.social.posted_at == datetime(2026, 11, 27, 8, 41, tzinfo=UTC)
    assert record.text.startswith("@KestrelValeHsg lift in Gannet House broken AGAIN")
    assert "Spotted this one" not in record.text
    assert [a.filename for a in record.attachments] == ["screenshot.png"]
    assert record.source.extra["forwarded_by"]["email"] == "dana.whitfield@housing.test"
    assert record.triage is not None and record.triage.kind == "complaint"
    assert "age" in record.triage.vulnerability

    [ack] = relay.wait_for(1)
    assert [rcpts for _, rcpts, _ in relay.messages] == [["dana.whitfield@housing.test"]]
    body = ack.get_body(("plain",)).get_content()
    assert record.reference in ack["Subject"] and record.reference in body
    assert "@marcusbell_g Thank you for telling us" in body
    assert record.acknowledgement is not None and record.acknowledgement.status == "sent"


def test_a_pasted_post_is_read_without_labels(
    smtp_server: tuple[str, int],
    relay: Relay,
    connection: redis.Redis,
    drain: Callable[[], None],
) -> None:
    forward(smtp_server, "pasted_facebook_post.eml", "priya.nair@housing.test")
    drain()
    [record] = feed_records(connection)
    assert record.channel == "social"
    assert record.customer.handle == "@sharon.akinola"
    assert record.social is not None and record.social.platform == "facebook"
    assert record.social.post_url.endswith("/posts/99887766")
    assert "black mould coming back" in record.text
    assert record.triage is not None and record.triage.priority == "high"
    assert relay.wait_for(1)
    assert [rcpts for _, rcpts, _ in relay.messages] == [["priya.nair@housing.test"]]


def test_a_post_without_a_link_is_kept_and_flagged(
    smtp_server: tuple[str, int],
    relay: Relay,
    connection: redis.Redis,
    drain: Callable[[], None],
) -> None:
    raw = (
        b"From: Dana Whitfield <dana.whitfield@housing.test>\r\nTo: social@housing.test\r\n"
        b"Subject: Fwd: comment\r\nMessage-ID: <fwd-3@housing.test>\r\n\r\n"
        b"Someone on the estate page says the bins have not been emptied for weeks.\r\n"
    )
    with smtplib.SMTP(*smtp_server, timeout=10) as client:
        client.sendmail("dana.whitfield@housing.test", ["social@housing.test"], raw)
    drain()
    [record] = feed_records(connection)
    assert record.channel == "social" and record.social is None
    assert any("link or platform" in r for r in record.review_reasons)
    assert "bins have not been emptied" in record.text
