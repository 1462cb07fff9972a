"""What an SMS or WhatsApp message becomes: its text intact, its photos and letters kept.

Bad inputs named here: emoji, right-to-left scripts and a 1,600-character concatenated
message (kept exactly); media too large (declared and undeclared), of a type not
accepted, mislabelled, temporarily unavailable, or linked outside Twilio's API; a sender
that is a short code; an empty message. None of them loses the message.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest
import redis
from fastapi.testclient import TestClient

from gateway.blobstore import BlobStore
from gateway.http import create_app
from gateway.schema import IntakeRecord
from gateway.settings import Settings
from tests.conftest import feed_records
from tests.twilio_standin import PUBLIC_URL, StandIn, new_sid, sample, sign
from workers.runner import run_worker

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 8 + b"\xff\xd9"
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
LONG = (
    "The flat has had no heating since the start of the month and the engineer who came "
    "out said a part was on order. Nobody has called since. "
) * 12


def deliver(settings: Settings, connection: redis.Redis, form: dict[str, str]) -> None:
    client = TestClient(create_app(settings, connection))
    path = "/twilio/messages"
    response = client.post(
        path, data=form, headers={"X-Twilio-Signature": sign(PUBLIC_URL + path, form)}
    )
    assert response.status_code == 200, response.text


def only_record(connection: redis.Redis) -> IntakeRecord:
    [record] = feed_records(connection)
    return record


@pytest.mark.parametrize(
    ("body", "language"),
    [
        (
            "The boiler is broken again 😡🔥 and the kids are freezing 🥶 third time this month!",
            None,
        ),
        ("يوجد تسرب مياه من السقف في غرفة النوم منذ أسبوعين ولم يأت أحد لإصلاحه حتى الآن", "ar"),
        ("میرے باتھ روم کی چھت سے پانی ٹپک رہا ہے اور دیواروں پر پھپھوندی لگ گئی ہے۔", "ur"),
        ("الشقة 12B\u200f لا تزال بلا تدفئة\nflat 12B still has no heating", None),
        (LONG[:1600], "en"),
    ],
    ids=["emoji", "arabic", "urdu", "mixed-direction", "1600-chars"],
)
def test_the_text_becomes_the_record_exactly_as_written(
    sms_settings: Settings,
    connection: redis.Redis,
    sms_drain: Callable[[], None],
    body: str,
    language: str | None,
) -> None:
    form = sample("sms_inbound.json", MessageSid=new_sid("SM"), Body=body, NumSegments="11")
    deliver(sms_settings, connection, form)
    sms_drain()
    record = only_record(connection)
    assert record.text == body
    assert len(record.text) == len(body)
    if language:
        assert record.language == language
    assert record.review_reasons == []
    assert record.source.extra["num_segments"] == "11"


def test_a_whatsapp_message_is_channel_whatsapp_with_the_profile_name_and_an_e164_number(
    sms_settings: Settings,
    connection: redis.Redis,
    sms_drain: Callable[[], None],
    twilio: StandIn,
) -> None:
    form = sample("whatsapp_inbound.json", MessageSid=new_sid("SM"))
    deliver(sms_settings, connection, form)
    sms_drain()
    record = only_record(connection)
    assert record.channel.value == "whatsapp"
    assert record.customer.phone == "+447700900456"
    assert record.customer.name == "Amira"
    assert record.customer.preferred_contact == "whatsapp"
    assert record.source.recipients == ["+447700900000"]
    [sent] = twilio.wait_for(1)
    assert sent["To"] == "whatsapp:+447700900456"
    assert sent["From"] == "whatsapp:+447700900000"


def test_whatsapp_photos_and_letters_are_downloaded_and_listed(
    sms_settings: Settings,
    connection: redis.Redis,
    sms_drain: Callable[[], None],
    twilio: StandIn,
) -> None:
    form = sample(
        "whatsapp_media.json",
        MessageSid=new_sid("MM"),
        MediaUrl0=twilio.add_media(JPEG, "image/jpeg"),
        MediaUrl1=twilio.add_media(PDF, "application/pdf"),
    )
    deliver(sms_settings, connection, form)
    assert twilio.media_requests == []  # fetched by the worker, not while Twilio waits
    sms_drain()
    record = only_record(connection)
    assert record.review_reasons == []
    assert [(a.filename, a.content_type, a.size) for a in record.attachments] == [
        ("media-1.jpg", "image/jpeg", len(JPEG)),
        ("media-2.pdf", "application/pdf", len(PDF)),
    ]
    blobs = BlobStore(sms_settings.blob_dir)
    for attachment, data in zip(record.attachments, (JPEG, PDF), strict=True):
        assert attachment.sha256 == hashlib.sha256(data).hexdigest()
        assert blobs.get(attachment.sha256) == data
    api = [had for path, had in twilio.media_requests if "/Media/" in path]
    store = [had for path, had in twilio.media_requests if path.startswith("/media-store/")]
    assert api == [True, True]  # the account's credentials, to Twilio's API
    assert store == [False, False]  # and not carried to the media store it redirects to


def test_oversize_and_disallowed_media_are_refused_with_reasons_and_the_message_kept(
    sms_settings: Settings,
    connection: redis.Redis,
    redis_url: str,
    twilio: StandIn,
) -> None:
    settings = sms_settings.model_copy(update={"twilio_media_max_bytes": 2048})
    big = b"\xff\xd8" + b"\x00" * 5000
    form = sample(
        "whatsapp_media.json",
        MessageSid=new_sid("MM"),
        NumMedia="5",
        MediaUrl0=twilio.add_media(big, "image/jpeg"),
        MediaUrl1=twilio.add_media(big, "image/jpeg", declare_length=False),
        MediaContentType1="image/jpeg",
        MediaUrl2=twilio.add_media(b"MZ\x90\x00", "application/x-msdownload"),
        MediaContentType2="application/x-msdownload",
        MediaUrl3=twilio.add_media(b"<html>not a photo</html>", "text/html"),
        MediaContentType3="image/jpeg",
        MediaUrl4=twilio.add_media(PDF, "application/pdf"),
        MediaContentType4="application/pdf",
    )
    deliver(settings, connection, form)
    run_worker(settings, redis_url, burst=True)
    record = only_record(connection)
    assert record.text == form["Body"]
    assert [a.content_type for a in record.attachments] == ["application/pdf"]
    reasons = record.review_reasons
    assert len(reasons) == 4
    assert reasons[0].startswith("media 1 of 5 was not kept: it is too large (5002 bytes;")
    assert reasons[1].startswith("media 2 of 5 was not kept: it is too large (larger;")
    assert reasons[2].startswith(
        "media 3 of 5 was not kept: files of type application/x-msdownload are not accepted"
    )
    assert reasons[3].startswith("media 4 of 5 was not kept: files of type text/html")
    assert all(form[f"MediaUrl{i}"] in reasons[i] for i in range(4))  # where to find it
    assert record.disposition.value == "needs_review"
    assert [n["index"] for n in record.source.extra["media_not_kept"]] == [0, 1, 2, 3]
    assert not any(form["MediaUrl2"].endswith(path) for path, _ in twilio.media_requests)


def test_media_that_fails_once_is_fetched_on_a_second_attempt(
    sms_settings: Settings,
    connection: redis.Redis,
    sms_drain: Callable[[], None],
    twilio: StandIn,
) -> None:
    twilio.media_fail_next.append(503)
    form = sample(
        "whatsapp_media.json",
        MessageSid=new_sid("MM"),
        NumMedia="1",
        MediaUrl0=twilio.add_media(JPEG, "image/jpeg"),
    )
    del form["MediaUrl1"], form["MediaContentType1"]
    deliver(sms_settings, connection, form)
    sms_drain()
    record = only_record(connection)
    assert [a.size for a in record.attachments] == [len(JPEG)]
    assert record.review_reasons == []


def test_a_media_link_outside_twilios_api_is_not_followed(
    sms_settings: Settings,
    connection: redis.Redis,
    sms_drain: Callable[[], None],
    twilio: StandIn,
) -> None:
    elsewhere = twilio.add_media(JPEG, "image/jpeg").replace("127.0.0.1", "localhost")
    form = sample(
        "whatsapp_media.json", MessageSid=new_sid("MM"), NumMedia="1", MediaUrl0=elsewhere
    )
    del form["MediaUrl1"], form["MediaContentType1"]
    deliver(sms_settings, connection, form)
    sms_drain()
    record = only_record(connection)
    assert record.attachments == []
    assert "not on Twilio's API" in record.review_reasons[0]
    assert twilio.media_requests == []


def test_a_short_code_sender_is_kept_and_flagged_and_not_answered(
    sms_settings: Settings,
    connection: redis.Redis,
    sms_drain: Callable[[], None],
    twilio: StandIn,
) -> None:
    form = sample("sms_inbound.json", MessageSid=new_sid("SM"), From="80070")
    deliver(sms_settings, connection, form)
    sms_drain()
    record = only_record(connection)
    assert record.customer.phone is None
    assert record.text == form["Body"]
    assert "not a phone number we can reply to" in record.review_reasons[0]
    assert record.acknowledgement is not None
    assert record.acknowledgement.status.value == "not_applicable"
    assert twilio.attempts == []


def test_an_empty_message_is_kept_and_flagged(
    sms_settings: Settings, connection: redis.Redis, sms_drain: Callable[[], None]
) -> None:
    deliver(sms_settings, connection, sample("sms_inbound.json", MessageSid=new_sid("SM"), Body=""))
    sms_drain()
    record = only_record(connection)
    assert record.review_reasons == ["the message has no text and no media"]
    assert record.disposition.value == "needs_review"
