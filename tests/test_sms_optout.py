"""Opt-out: STOP and its kin put a number on our suppression list, START and UNSTOP lift
it, and no message goes to a suppressed number.

Bad inputs named here: the keyword in any case and with spaces around it, every opt-out
word, a sentence that merely contains "stop", an opt-out on WhatsApp, Twilio's
Advanced Opt-Out marking a custom keyword.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import redis
from fastapi.testclient import TestClient

from channels.sms.keywords import Keyword, keyword_of
from channels.sms.suppression import SuppressionList
from gateway.http import create_app
from gateway.schema import IntakeRecord
from gateway.settings import Settings
from tests.conftest import feed_records
from tests.twilio_standin import CUSTOMER, PUBLIC_URL, StandIn, new_sid, sample, sign


def deliver(
    settings: Settings, connection: redis.Redis, name: str = "sms_inbound.json", **changes: str
) -> None:
    form = sample(name, MessageSid=new_sid("SM"), **changes)
    path = "/twilio/messages"
    response = TestClient(create_app(settings, connection)).post(
        path, data=form, headers={"X-Twilio-Signature": sign(PUBLIC_URL + path, form)}
    )
    assert response.status_code == 200


def ack_of(record: IntakeRecord) -> tuple[str, str]:
    assert record.acknowledgement is not None
    return record.acknowledgement.status.value, record.acknowledgement.reason


@pytest.mark.parametrize(
    "body",
    [
        " stop ",
        "Stop",
        "STOP",
        "stop.",
        "\tSTOP\n",
        "STOPALL",
        "unsubscribe",
        "Cancel",
        "end",
        "QUIT",
        "revoke",
        "OptOut",
    ],
)
def test_opt_out_words_in_any_case_with_spaces_around(body: str) -> None:
    assert keyword_of(body) is Keyword.OPT_OUT


@pytest.mark.parametrize(
    "body",
    ["stop the leak please", "Please stop", "STOP IT", "unstoppable", "the end", "", "stopp"],
)
def test_sentences_and_near_misses_are_not_opt_outs(body: str) -> None:
    assert keyword_of(body) is None


@pytest.mark.parametrize("body", ["START", " unstop ", "Start"])
def test_opt_in_words(body: str) -> None:
    assert keyword_of(body) is Keyword.OPT_IN


def test_advanced_opt_out_marks_custom_keywords() -> None:
    assert keyword_of("ARRET", opt_out_type="STOP") is Keyword.OPT_OUT
    assert keyword_of("OUI", opt_out_type="START") is Keyword.OPT_IN


def test_stop_is_recorded_not_answered_and_silences_the_number_until_start(
    sms_settings: Settings,
    connection: redis.Redis,
    sms_drain: Callable[[], None],
    twilio: StandIn,
) -> None:
    suppressions = SuppressionList(connection)
    deliver(sms_settings, connection, Body=" stop ")
    assert suppressions.get(CUSTOMER) is not None  # at once, before the worker runs
    sms_drain()
    [stop] = feed_records(connection)
    assert stop.text == " stop "
    assert stop.source.extra["keyword"] == "opt_out"
    status, reason = ack_of(stop)
    assert status == "suppressed"
    assert reason.startswith("an opt-out request (STOP), not a complaint")

    deliver(sms_settings, connection, Body="The front door lock is broken and will not close.")
    sms_drain()
    complaint = feed_records(connection)[-1]
    assert complaint.text.startswith("The front door lock")
    assert ack_of(complaint) == (
        "suppressed",
        "the number has opted out (it sent an opt-out keyword by SMS)",
    )
    assert twilio.attempts == []

    deliver(sms_settings, connection, Body="START")
    sms_drain()
    start = feed_records(connection)[-1]
    assert suppressions.get(CUSTOMER) is None
    assert ack_of(start)[1].startswith("a request to receive messages again (START)")

    deliver(sms_settings, connection, Body="There is water coming through the kitchen ceiling.")
    sms_drain()
    assert ack_of(feed_records(connection)[-1]) == ("sent", "sent via twilio")
    assert len(twilio.wait_for(1)) == 1


def test_a_sentence_with_stop_in_it_is_a_complaint_and_answered(
    sms_settings: Settings,
    connection: redis.Redis,
    sms_drain: Callable[[], None],
    twilio: StandIn,
) -> None:
    deliver(sms_settings, connection, Body="stop the leak please, it is dripping on the cooker")
    sms_drain()
    [record] = feed_records(connection)
    assert "keyword" not in record.source.extra
    assert SuppressionList(connection).get(CUSTOMER) is None
    assert ack_of(record) == ("sent", "sent via twilio")
    assert len(twilio.wait_for(1)) == 1


def test_stop_on_whatsapp_silences_the_number_too(
    sms_settings: Settings, connection: redis.Redis, sms_drain: Callable[[], None]
) -> None:
    deliver(sms_settings, connection, "whatsapp_inbound.json", Body="STOP")
    sms_drain()
    suppressed = SuppressionList(connection).get("+447700900456")
    assert suppressed is not None
    assert suppressed.reason == "it sent an opt-out keyword by WhatsApp"
