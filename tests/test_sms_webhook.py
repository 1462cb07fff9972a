"""The Twilio Messaging webhook: only Twilio's signed requests, confirmed only once safe.

Bad inputs named here: forged, missing and replayed signatures, a valid signature for
another URL, the app's own http:// URL behind a TLS-terminating proxy, the same
MessageSid three times at once, Redis down, the disk down, an unconfigured service, a
request without a MessageSid, a body that is not a form, a body too large.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import redis
from fastapi.testclient import TestClient

from gateway.connection import connect
from gateway.http import create_app
from gateway.settings import Settings
from tests.conftest import feed_records, free_port
from tests.twilio_standin import PUBLIC_URL, LiveApp, StandIn, new_sid, sample, sign

MESSAGES = "/twilio/messages"


def post(
    client: httpx.Client | TestClient,
    form: dict[str, str],
    path: str = MESSAGES,
    signed_for: str | None = None,
    signature: str | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """Post ``form`` as Twilio does, signed for ``signed_for`` (default: our public URL)."""
    all_headers = dict(headers or {})
    if signature is None:
        signature = sign(signed_for or PUBLIC_URL + path, form)
    if signature:
        all_headers["X-Twilio-Signature"] = signature
    return client.post(path, data=form, headers=all_headers)


def nothing_recorded(connection: redis.Redis, settings: Settings) -> bool:
    blobs = (
        [p for p in settings.blob_dir.rglob("*") if p.is_file()]
        if settings.blob_dir.exists()
        else []
    )
    return (
        not list(connection.scan_iter("intake:idem:*"))
        and connection.llen(f"rq:queue:{settings.queue_name}") == 0
        and blobs == []
    )


@pytest.fixture
def client(sms_settings: Settings, connection: redis.Redis) -> TestClient:
    return TestClient(create_app(sms_settings, connection))


def test_a_signed_message_is_confirmed_with_empty_twiml_and_becomes_one_record(
    client: TestClient,
    connection: redis.Redis,
    sms_drain: Callable[[], None],
    twilio: StandIn,
) -> None:
    form = sample("sms_inbound.json", MessageSid=new_sid("SM"))
    response = post(client, form)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/xml")
    assert response.text.endswith("<Response></Response>")
    assert twilio.media_requests == [] and twilio.messages == []  # nothing slow at the edge
    sms_drain()
    [record] = feed_records(connection)
    assert record.channel.value == "sms"
    assert record.source.transport == "twilio"
    assert record.source.message_id == form["MessageSid"]
    assert record.customer.phone == "+447700900123"
    assert record.text == form["Body"]


@pytest.mark.parametrize(
    "signature",
    ["", "bm90IGEgc2lnbmF0dXJl", "forged-signature="],
    ids=["missing", "forged", "garbage"],
)
def test_a_request_without_a_valid_signature_is_refused_and_nothing_recorded(
    client: TestClient, connection: redis.Redis, sms_settings: Settings, signature: str
) -> None:
    response = post(client, sample("sms_inbound.json"), signature=signature)
    assert response.status_code == 403
    assert nothing_recorded(connection, sms_settings)


def test_a_signature_made_with_another_token_is_refused(
    client: TestClient, connection: redis.Redis, sms_settings: Settings
) -> None:
    form = sample("sms_inbound.json")
    other = sign(PUBLIC_URL + MESSAGES, form, token="someone-elses-token")
    assert post(client, form, signature=other).status_code == 403
    assert nothing_recorded(connection, sms_settings)


def test_a_tampered_body_breaks_the_signature(
    client: TestClient, connection: redis.Redis, sms_settings: Settings
) -> None:
    form = sample("sms_inbound.json")
    signature = sign(PUBLIC_URL + MESSAGES, form)
    form["Body"] = "Please send the repair team to a different address."
    assert post(client, form, signature=signature).status_code == 403
    assert nothing_recorded(connection, sms_settings)


@pytest.mark.parametrize(
    "signed_for",
    [
        PUBLIC_URL + "/twilio/status",
        "https://attacker.example/twilio/messages",
        PUBLIC_URL + MESSAGES + "?extra=1",
    ],
    ids=["other-path", "other-host", "other-query"],
)
def test_a_valid_signature_for_a_different_url_is_refused(
    client: TestClient, connection: redis.Redis, sms_settings: Settings, signed_for: str
) -> None:
    form = sample("sms_inbound.json")
    assert post(client, form, signed_for=signed_for).status_code == 403
    assert nothing_recorded(connection, sms_settings)


def test_a_replayed_request_is_a_repeat_delivery_one_record_one_acknowledgement(
    client: TestClient,
    connection: redis.Redis,
    sms_drain: Callable[[], None],
    twilio: StandIn,
) -> None:
    form = sample("sms_inbound.json", MessageSid=new_sid("SM"))
    signature = sign(PUBLIC_URL + MESSAGES, form)
    for _ in range(3):
        assert post(client, form, signature=signature).status_code == 200
    sms_drain()
    assert post(client, form, signature=signature).status_code == 200  # a late replay
    sms_drain()
    assert len(feed_records(connection)) == 1
    assert len(twilio.messages) == 1


def test_behind_a_tls_proxy_the_public_https_url_is_what_is_checked(
    sms_settings: Settings, connection: redis.Redis, sms_drain: Callable[[], None]
) -> None:
    """The app is served on http://127.0.0.1:PORT; Twilio signed https://intake.example.org."""
    form = sample("sms_inbound.json", MessageSid=new_sid("SM"))
    with LiveApp(sms_settings, connection) as app, httpx.Client(base_url=app.url) as http:
        internal = app.url + MESSAGES
        refused = post(http, form, signed_for=internal)
        spoofed = post(
            http,
            form,
            signed_for=internal,
            headers={"X-Forwarded-Proto": "http", "X-Forwarded-Host": f"127.0.0.1:{app.port}"},
        )
        assert (refused.status_code, spoofed.status_code) == (403, 403)
        assert nothing_recorded(connection, sms_settings)
        accepted = post(
            http,
            form,
            signed_for=PUBLIC_URL + MESSAGES,
            headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"},
        )
        assert accepted.status_code == 200
    sms_drain()
    assert [r.source.message_id for r in feed_records(connection)] == [form["MessageSid"]]


def test_the_same_message_sid_three_times_at_once_gives_one_record_and_one_acknowledgement(
    sms_settings: Settings,
    connection: redis.Redis,
    sms_drain: Callable[[], None],
    twilio: StandIn,
) -> None:
    form = sample("sms_inbound.json", MessageSid=new_sid("SM"))
    signature = sign(PUBLIC_URL + MESSAGES, form)
    start = threading.Barrier(3)
    statuses: list[int] = []

    with LiveApp(sms_settings, connection) as app:

        def deliver() -> None:
            with httpx.Client(base_url=app.url, timeout=10) as http:
                start.wait()
                statuses.append(post(http, form, signature=signature).status_code)

        threads = [threading.Thread(target=deliver) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert statuses == [200, 200, 200]
    sms_drain()
    assert len(feed_records(connection)) == 1
    assert len(twilio.wait_for(1)) == 1
    assert len(twilio.attempts) == 1


def test_redis_down_answers_503_so_twilio_retries_and_the_retry_is_kept(
    sms_settings: Settings, connection: redis.Redis, sms_drain: Callable[[], None]
) -> None:
    dead = connect(f"redis://127.0.0.1:{free_port()}/0")  # as the gateway connects, to nothing
    form = sample("sms_inbound.json", MessageSid=new_sid("SM"))
    down = post(TestClient(create_app(sms_settings, dead)), form)
    assert down.status_code == 503
    assert "Retry-After" in down.headers
    assert not list(connection.scan_iter("intake:idem:*"))  # nothing confirmed, nothing queued
    again = post(TestClient(create_app(sms_settings, connection)), form)  # Twilio's retry
    assert again.status_code == 200
    sms_drain()
    assert [r.text for r in feed_records(connection)] == [form["Body"]]


def test_disk_down_answers_503(
    sms_settings: Settings, connection: redis.Redis, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the data directory should be")
    broken = sms_settings.model_copy(update={"data_dir": blocker / "data"})
    response = post(TestClient(create_app(broken, connection)), sample("sms_inbound.json"))
    assert response.status_code == 503
    assert not list(connection.scan_iter("intake:idem:*"))


def test_without_twilio_settings_the_webhook_refuses_temporarily(
    settings: Settings, connection: redis.Redis
) -> None:
    response = post(TestClient(create_app(settings, connection)), sample("sms_inbound.json"))
    assert response.status_code == 503
    assert "not configured" in response.text


def test_a_signed_request_without_a_message_sid_gets_a_clear_400(
    client: TestClient, connection: redis.Redis, sms_settings: Settings
) -> None:
    form = sample("sms_inbound.json")
    for name in ("MessageSid", "SmsMessageSid", "SmsSid"):
        del form[name]
    response = post(client, form)
    assert response.status_code == 400
    assert "MessageSid" in response.text
    assert not list(connection.scan_iter("intake:idem:*"))


def test_a_body_that_is_not_a_form_or_is_too_large_is_refused(client: TestClient) -> None:
    signature = sign(PUBLIC_URL + MESSAGES, {})
    as_json = client.post(
        MESSAGES, json={"Body": "hello"}, headers={"X-Twilio-Signature": signature}
    )
    assert as_json.status_code == 415
    huge = sample("sms_inbound.json", Body="x" * 70_000)
    assert post(client, huge).status_code == 413
