"""Other organisations' matters: told where to go, never dropped, never at an emergency's cost."""

from __future__ import annotations

import smtplib
from collections.abc import Callable

import redis

from gateway.schema import IntakeRecord
from tests.conftest import Relay, feed_records, make_mail


def through_the_gateway(
    server: tuple[str, int],
    body: str,
    drain: Callable[[], None],
    connection: redis.Redis,
    subject: str = "Help please",
) -> IntakeRecord:
    with smtplib.SMTP(*server, timeout=10) as client:
        client.sendmail(
            "sam.taylor@example.net", ["hello@housing.test"], make_mail(body=body, subject=subject)
        )
    drain()
    [record] = feed_records(connection)
    return record


def test_wholly_another_organisations_matter_is_redirected_with_a_message(
    smtp_server: tuple[str, int],
    relay: Relay,
    connection: redis.Redis,
    drain: Callable[[], None],
) -> None:
    record = through_the_gateway(
        smtp_server, "My council tax bill has gone up and I think it is wrong.", drain, connection
    )
    assert record.disposition == "redirected"
    assert record.redirect is not None
    assert "council" in record.redirect.organisation
    assert "gov.uk/find-local-council" in record.redirect.contact
    assert '"council tax' in record.redirect.reason
    assert record.redirect.notice is not None and record.redirect.notice.status == "sent"
    assert record.acknowledgement is not None
    assert record.acknowledgement.status == "suppressed"
    [message] = relay.wait_for(1)
    body = message.get_body(("plain",)).get_content()
    assert "council" in body and record.reference in body
    assert "should deal with after all" in body  # the right to challenge the decision
    assert message["Auto-Submitted"] == "auto-replied"


def test_a_mixed_message_stays_our_case_with_the_advice_added(
    smtp_server: tuple[str, int],
    relay: Relay,
    connection: redis.Redis,
    drain: Callable[[], None],
) -> None:
    record = through_the_gateway(
        smtp_server,
        "My Universal Credit payment is late and also the bathroom extractor fan is broken.",
        drain,
        connection,
    )
    assert record.disposition == "new_case"
    assert record.redirect is not None and "Universal Credit" in record.redirect.organisation
    assert "stays a case" in record.redirect.reason
    [ack] = relay.wait_for(1)
    body = ack.get_body(("plain",)).get_content()
    assert "0800 328 5644" in body and "deal with the rest" in body
    assert record.acknowledgement is not None and record.acknowledgement.status == "sent"


def test_an_emergency_is_never_redirected_away(
    smtp_server: tuple[str, int],
    relay: Relay,
    connection: redis.Redis,
    drain: Callable[[], None],
) -> None:
    record = through_the_gateway(
        smtp_server,
        "Someone broke in last night, stole my laptop and the door won't lock.",
        drain,
        connection,
    )
    assert record.triage is not None and record.triage.priority == "emergency"
    assert record.disposition == "new_case"
    assert record.redirect is not None and "police" in record.redirect.organisation
    assert "never redirected away" in record.redirect.reason
    [ack] = relay.wait_for(1)
    body = ack.get_body(("plain",)).get_content()
    assert "999" in body and "101" in body


def test_our_own_bins_are_not_the_councils(
    smtp_server: tuple[str, int], connection: redis.Redis, drain: Callable[[], None]
) -> None:
    record = through_the_gateway(
        smtp_server,
        "The communal bins in the bin store haven't been emptied for weeks.",
        drain,
        connection,
    )
    assert record.redirect is None
    assert record.triage is not None and "estate_services" in record.triage.categories


def test_triage_reaches_the_feed_with_reasons_and_deadlines(
    smtp_server: tuple[str, int],
    relay: Relay,
    connection: redis.Redis,
    drain: Callable[[], None],
) -> None:
    record = through_the_gateway(
        smtp_server,
        "This is the third time I've reported the leak under the sink. Nobody came last week.",
        drain,
        connection,
    )
    assert record.triage is not None
    assert record.triage.kind == "complaint"
    assert record.triage.reasons
    assert record.deadlines is not None
    body = relay.wait_for(1)[0].get_body(("plain",)).get_content()
    assert record.deadlines.respond_by.strftime("%-d %B %Y") in body
