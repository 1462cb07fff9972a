"""The SMS acknowledgement: one short message quoting the reference, through the official
``twilio`` client, sent once however often the job runs.

Bad inputs named here: a long organisation name with characters outside GSM-7, a job run
again after the send, Twilio answering 503, Twilio refusing with 21610, sending not
configured.
"""

from __future__ import annotations

from collections.abc import Callable

import redis
from fastapi.testclient import TestClient

from channels.sms.segments import segment_count
from channels.sms.suppression import SuppressionList
from gateway.http import create_app
from gateway.ledger import record_key
from gateway.queue import IntakeQueue
from gateway.schema import IntakeRecord
from gateway.settings import Settings
from tests.conftest import feed_records
from tests.twilio_standin import (
    CUSTOMER,
    OUR_NUMBER,
    PUBLIC_URL,
    StandIn,
    new_sid,
    sample,
    segments,
    sign,
)
from workers.runner import run_worker


def deliver(settings: Settings, connection: redis.Redis, **changes: str) -> dict[str, str]:
    form = sample("sms_inbound.json", MessageSid=new_sid("SM"), **changes)
    path = "/twilio/messages"
    response = TestClient(create_app(settings, connection)).post(
        path, data=form, headers={"X-Twilio-Signature": sign(PUBLIC_URL + path, form)}
    )
    assert response.status_code == 200
    return form


def ack_of(record: IntakeRecord) -> tuple[str, str]:
    assert record.acknowledgement is not None
    return record.acknowledgement.status.value, record.acknowledgement.reason


def test_the_acknowledgement_is_one_short_sms_quoting_the_reference(
    sms_settings: Settings,
    connection: redis.Redis,
    sms_drain: Callable[[], None],
    twilio: StandIn,
) -> None:
    deliver(sms_settings, connection)
    sms_drain()
    [record] = feed_records(connection)
    [sent] = twilio.wait_for(1)
    assert sent["To"] == CUSTOMER
    assert sent["From"] == OUR_NUMBER  # the number the customer wrote to
    assert record.reference in sent["Body"]
    assert sent["Body"].startswith("Riverside Homes: we have your message.")
    assert int(sent["NumSegments"]) <= 2
    assert segments(sent["Body"]) == segment_count(sent["Body"]) <= 2
    assert sent["StatusCallback"] == PUBLIC_URL + "/twilio/status"
    assert ack_of(record) == ("sent", "sent via twilio")
    assert record.acknowledgement is not None
    assert record.acknowledgement.channel == "sms"
    assert record.acknowledgement.message_id == sent["Sid"]


def test_a_long_name_outside_gsm7_still_fits_two_segments_and_keeps_the_reference(
    sms_settings: Settings, connection: redis.Redis, redis_url: str, twilio: StandIn
) -> None:
    settings = sms_settings.model_copy(
        update={
            "organisation_name": "Cymdeithas Tai Tŷ Glas – Gogledd Cymru",
            "twilio_from": "+447700900999",
        }
    )
    deliver(settings, connection)
    run_worker(settings, redis_url, burst=True)
    [record] = feed_records(connection)
    [sent] = twilio.wait_for(1)
    assert sent["From"] == "+447700900999"
    assert "Tŷ Glas" in sent["Body"] and record.reference in sent["Body"]
    assert segments(sent["Body"]) <= 2 and int(sent["NumSegments"]) <= 2


def test_a_job_run_again_after_the_send_sends_nothing_more(
    sms_settings: Settings,
    connection: redis.Redis,
    sms_drain: Callable[[], None],
    twilio: StandIn,
) -> None:
    deliver(sms_settings, connection)
    sms_drain()
    [record] = feed_records(connection)
    connection.hdel(record_key(record.id), "step:acknowledge")  # as if the job died after it
    IntakeQueue(connection, sms_settings).enqueue(record.id, attempt=1)
    sms_drain()
    assert len(twilio.messages) == 1
    assert len(twilio.attempts) == 1


def test_a_twilio_outage_is_retried_and_the_customer_gets_one_sms(
    sms_settings: Settings,
    connection: redis.Redis,
    sms_drain: Callable[[], None],
    twilio: StandIn,
) -> None:
    twilio.fail_next.append(503)
    deliver(sms_settings, connection)
    sms_drain()
    [record] = feed_records(connection)
    assert len(twilio.attempts) == 2
    assert len(twilio.messages) == 1
    assert ack_of(record) == ("sent", "sent via twilio")


def test_error_21610_marks_the_number_opted_out_and_nothing_more_is_tried(
    sms_settings: Settings,
    connection: redis.Redis,
    sms_drain: Callable[[], None],
    twilio: StandIn,
) -> None:
    twilio.opted_out.add(CUSTOMER)
    deliver(sms_settings, connection)
    sms_drain()
    [record] = feed_records(connection)
    assert ack_of(record) == ("suppressed", "the number has opted out (Twilio error 21610)")
    assert SuppressionList(connection).get(CUSTOMER) is not None
    assert len(twilio.attempts) == 1

    deliver(sms_settings, connection, Body="Still no hot water and now the tap is leaking too.")
    sms_drain()
    later = feed_records(connection)[-1]
    assert later.text.startswith("Still no hot water")
    assert ack_of(later) == ("suppressed", "the number has opted out (Twilio error 21610)")
    assert len(twilio.attempts) == 1  # not even tried


def test_with_sending_not_configured_the_record_says_why_no_sms_went(
    sms_settings: Settings, connection: redis.Redis, redis_url: str, twilio: StandIn
) -> None:
    settings = sms_settings.model_copy(update={"twilio_account_sid": None})
    deliver(settings, connection)
    run_worker(settings, redis_url, burst=True)
    [record] = feed_records(connection)
    status, reason = ack_of(record)
    assert status == "failed"
    assert "Twilio is not configured" in reason
    assert twilio.attempts == []
