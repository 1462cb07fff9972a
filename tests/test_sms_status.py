"""Status callbacks: signed like the webhook, arriving out of order, only moving forward.

Bad inputs named here: "sent" after "delivered", repeats, a callback before the send has
returned, an unsigned callback, one without a status, a failure with 21610.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import redis
from fastapi.testclient import TestClient

from channels.sms.status import DeliveryStatuses
from channels.sms.suppression import SuppressionList
from gateway.http import create_app
from gateway.settings import Settings
from tests.conftest import feed_records
from tests.twilio_standin import CUSTOMER, PUBLIC_URL, StandIn, new_sid, sample, sign

STATUS = "/twilio/status"


@pytest.fixture
def client(sms_settings: Settings, connection: redis.Redis) -> TestClient:
    return TestClient(create_app(sms_settings, connection))


def callback(client: TestClient, sid: str, status: str, **changes: str) -> int:
    form = sample(
        "status_callback.json", MessageSid=sid, SmsSid=sid, MessageStatus=status, SmsStatus=status
    )
    form.update(changes)
    headers = {"X-Twilio-Signature": sign(PUBLIC_URL + STATUS, form)}
    return client.post(STATUS, data=form, headers=headers).status_code


def test_statuses_arriving_out_of_order_only_move_forward(
    client: TestClient,
    connection: redis.Redis,
    sms_drain: Callable[[], None],
    twilio: StandIn,
) -> None:
    form = sample("sms_inbound.json", MessageSid=new_sid("SM"))
    path = "/twilio/messages"
    signature = sign(PUBLIC_URL + path, form)
    assert client.post(path, data=form, headers={"X-Twilio-Signature": signature}).is_success
    sms_drain()
    [record] = feed_records(connection)
    [sent] = twilio.wait_for(1)
    statuses = DeliveryStatuses(connection)
    first = statuses.get(sent["Sid"])
    assert (first.status, first.record_id, first.purpose) == (
        "queued",
        record.id,
        "acknowledgement",
    )

    for status in ("delivered", "sent", "sending", "queued", "delivered"):
        assert callback(client, sent["Sid"], status) == 204
    assert statuses.get(sent["Sid"]).status == "delivered"  # never overwritten by "sent"
    assert callback(client, sent["Sid"], "undelivered", ErrorCode="30003") == 204
    assert statuses.get(sent["Sid"]).status == "delivered"  # the first final status stands


def test_whatsapp_read_goes_past_delivered(client: TestClient, connection: redis.Redis) -> None:
    sid = new_sid("SM")
    for status in ("read", "delivered", "sent"):
        assert callback(client, sid, status) == 204
    assert DeliveryStatuses(connection).get(sid).status == "read"


def test_a_callback_before_the_send_returned_is_kept_and_linked_later(
    client: TestClient, connection: redis.Redis
) -> None:
    sid = new_sid("SM")
    assert callback(client, sid, "sent") == 204
    statuses = DeliveryStatuses(connection)
    statuses.link(sid, "01RECORDIDNOTREAL0000000000", "acknowledgement", "sms", "queued")
    found = statuses.get(sid)
    assert (found.status, found.record_id) == ("sent", "01RECORDIDNOTREAL0000000000")


def test_a_failure_with_21610_puts_the_number_on_the_suppression_list(
    client: TestClient, connection: redis.Redis
) -> None:
    sid = new_sid("SM")
    assert callback(client, sid, "sent") == 204
    assert SuppressionList(connection).get(CUSTOMER) is None
    assert callback(client, sid, "failed", ErrorCode="21610") == 204
    found = DeliveryStatuses(connection).get(sid)
    assert (found.status, found.error_code) == ("failed", "21610")
    suppressed = SuppressionList(connection).get(CUSTOMER)
    assert suppressed is not None and "21610" in suppressed.reason


def test_an_unsigned_or_incomplete_callback_is_refused_and_changes_nothing(
    client: TestClient, connection: redis.Redis
) -> None:
    sid = new_sid("SM")
    form = sample("status_callback.json", MessageSid=sid, MessageStatus="delivered")
    assert client.post(STATUS, data=form).status_code == 403
    forged = {"X-Twilio-Signature": sign(PUBLIC_URL + "/twilio/messages", form)}
    assert client.post(STATUS, data=form, headers=forged).status_code == 403
    assert DeliveryStatuses(connection).get(sid).status is None
    incomplete = {"MessageSid": sid, "AccountSid": form["AccountSid"]}
    signed = {"X-Twilio-Signature": sign(PUBLIC_URL + STATUS, incomplete)}
    assert client.post(STATUS, data=incomplete, headers=signed).status_code == 400
