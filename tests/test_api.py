"""The JSON API, ``POST /v1/intake``, as staff tools, partners and the social team use it."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient

from gateway.connection import connect
from gateway.http import create_app
from gateway.settings import ApiKey, Settings
from tests.conftest import Relay, feed_records

CONTACT_CENTRE_KEY = "test-key-contact-centre-not-a-real-key"
SOCIAL_TEAM_KEY = "test-key-social-team-not-a-real-key"
PARTNER_KEY = "test-key-partner-not-a-real-key"


def api_key(name: str, key: str, *channels: str) -> ApiKey:
    return ApiKey(
        name=name,
        sha256=hashlib.sha256(key.encode()).hexdigest(),
        channels=list(channels),  # type: ignore[arg-type]
    )


def with_keys(settings: Settings, **changes: Any) -> Settings:
    keys = [
        api_key("contact-centre", CONTACT_CENTRE_KEY, "phone", "letter", "in_person"),
        api_key("social-team", SOCIAL_TEAM_KEY, "social"),
        api_key("partner", PARTNER_KEY, "api", "phone"),
    ]
    return settings.model_copy(update={"api_keys": keys, **changes})


def auth(key: str = CONTACT_CENTRE_KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def api_settings(settings: Settings) -> Settings:
    return with_keys(settings)


@pytest.fixture
def client(api_settings: Settings, connection: redis.Redis) -> Iterator[TestClient]:
    with TestClient(create_app(api_settings, connection)) as test_client:
        yield test_client


def queued(connection: redis.Redis) -> int:
    return int(connection.llen("rq:queue:intake"))


PHONE_CALL = {
    "channel": "phone",
    "customer": {
        "name": "Sam Taylor",
        "email": "sam.taylor@example.net",
        "phone": "07700 900123",
        "preferred_contact": "phone",
        "support_needs": "Please call after 2pm; I work nights.",
    },
    "subject": "Leak through the kitchen ceiling",
    "text": "Water has been coming through the kitchen ceiling since Monday.",
    "incident_date": "2026-11-23",
    "desired_outcome": "Fix the leak and repaint the ceiling.",
}


def test_a_phone_complaint_becomes_a_record_and_an_email_acknowledgement(
    client: TestClient, connection: redis.Redis, drain: Callable[[], None], relay: Relay
) -> None:
    response = client.post("/v1/intake", json=PHONE_CALL, headers=auth())
    assert response.status_code == 201
    receipt = response.json()
    assert receipt["reference"].startswith("CX-2026-") and receipt["repeat"] is False
    drain()
    [record] = feed_records(connection)
    assert record.id == receipt["id"] and record.reference == receipt["reference"]
    assert record.channel == "phone"
    assert record.source.transport == "http"
    assert record.source.extra["api_key"] == "contact-centre"
    assert CONTACT_CENTRE_KEY not in record.to_json()
    assert record.customer.name == "Sam Taylor"
    assert record.customer.phone == "+447700900123"
    assert record.customer.email == "sam.taylor@example.net"
    assert record.customer.preferred_contact == "phone"
    assert record.customer.support_needs == "Please call after 2pm; I work nights."
    assert record.subject == "Leak through the kitchen ceiling"
    assert record.text == PHONE_CALL["text"]
    assert record.incident_date == date(2026, 11, 23)
    assert record.desired_outcome == "Fix the leak and repaint the ceiling."
    assert record.acknowledgement is not None and record.acknowledgement.status == "sent"
    [ack] = relay.wait_for(1)
    assert record.reference in ack["Subject"]
    assert relay.messages[0][1] == ["sam.taylor@example.net"]


def test_a_social_media_post_keeps_the_platform_handle_link_and_time(
    api_settings: Settings, connection: redis.Redis, drain: Callable[[], None]
) -> None:
    client = TestClient(create_app(api_settings, connection))
    body = {
        "channel": "social",
        "customer": {"name": "Jo", "handle": "@jo_in_flat_4"},
        "text": "Third week without hot water @RiversideHomes, nobody answers the phone",
        "social": {
            "platform": "x",
            "post_url": "https://x.example/jo_in_flat_4/status/1234567890",
            "posted_at": "2026-11-26T21:14:00+00:00",
        },
    }
    response = client.post("/v1/intake", json=body, headers=auth(SOCIAL_TEAM_KEY))
    assert response.status_code == 201, response.text
    drain()
    [record] = feed_records(connection)
    assert record.channel == "social"
    assert record.customer.handle == "@jo_in_flat_4"
    assert record.social is not None
    assert record.social.platform == "x"
    assert record.social.post_url == "https://x.example/jo_in_flat_4/status/1234567890"
    assert record.social.posted_at == datetime(2026, 11, 26, 21, 14, tzinfo=UTC)
    assert record.source.extra["api_key"] == "social-team"
    assert record.acknowledgement is not None
    assert record.acknowledgement.status == "not_applicable"  # no address to write to


def test_a_letter_received_earlier_keeps_its_date_and_representative(
    client: TestClient, connection: redis.Redis, drain: Callable[[], None]
) -> None:
    received = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)
    body = {
        "channel": "letter",
        "customer": {
            "name": "Mrs E. Okafor",
            "address": "Flat 2, 1 River Street\nLeeds\nLS1 1AA",
            "preferred_contact": "post",
            "representative": {
                "name": "Cllr Ann Patel",
                "relationship": "ward councillor",
                "email": "ann.patel@example.org",
            },
        },
        "text": "I write on behalf of my constituent about damp in her flat.",
        "received_at": received.isoformat(),
    }
    response = client.post("/v1/intake", json=body, headers=auth())
    assert response.status_code == 201, response.text
    drain()
    [record] = feed_records(connection)
    assert record.received_at == received
    assert record.customer.address == "Flat 2, 1 River Street\nLeeds\nLS1 1AA"
    assert record.customer.representative is not None
    assert record.customer.representative.name == "Cllr Ann Patel"
    assert record.customer.representative.email == "ann.patel@example.org"


def test_no_key_or_an_unknown_key_is_401_and_nothing_is_queued(
    client: TestClient, connection: redis.Redis
) -> None:
    for headers in (
        {},
        {"Authorization": "Bearer test-key-nobody-has-this"},
        {"Authorization": f"Basic {CONTACT_CENTRE_KEY}"},
        {"Authorization": "Bearer"},
    ):
        response = client.post("/v1/intake", json=PHONE_CALL, headers=headers)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert "API key" in response.json()["message"]
    assert queued(connection) == 0


def test_a_key_not_allowed_the_channel_is_403(client: TestClient, connection: redis.Redis) -> None:
    response = client.post("/v1/intake", json=PHONE_CALL, headers=auth(SOCIAL_TEAM_KEY))
    assert response.status_code == 403
    assert response.json()["message"] == "This API key may not submit channel phone."
    assert queued(connection) == 0


def test_the_same_idempotency_key_and_body_give_the_same_record_once(
    client: TestClient, connection: redis.Redis, drain: Callable[[], None]
) -> None:
    headers = {**auth(), "Idempotency-Key": "call-2026-11-27-0001"}
    first = client.post("/v1/intake", json=PHONE_CALL, headers=headers)
    again = client.post("/v1/intake", json=PHONE_CALL, headers=headers)
    assert first.status_code == 201 and again.status_code == 200
    assert again.json() == {**first.json(), "repeat": True}
    assert queued(connection) == 1

    changed = client.post(
        "/v1/intake", json={**PHONE_CALL, "text": "Another thing"}, headers=headers
    )
    assert changed.status_code == 409
    assert "Idempotency-Key" in changed.json()["message"]
    assert "different request body" in changed.json()["message"]
    assert queued(connection) == 1

    # Keys are scoped by API key: another caller's identical key is another request.
    other = client.post(
        "/v1/intake",
        json=PHONE_CALL,
        headers={**auth(PARTNER_KEY), "Idempotency-Key": headers["Idempotency-Key"]},
    )
    assert other.status_code == 201 and other.json()["id"] != first.json()["id"]
    drain()
    assert len(feed_records(connection)) == 2


def test_without_an_idempotency_key_each_request_is_a_new_record(
    client: TestClient, connection: redis.Redis
) -> None:
    first = client.post("/v1/intake", json=PHONE_CALL, headers=auth())
    second = client.post("/v1/intake", json=PHONE_CALL, headers=auth())
    assert first.json()["id"] != second.json()["id"]
    assert queued(connection) == 2


def test_bad_json_wrong_content_type_and_oversize_bodies_get_clear_4xx(
    settings: Settings, connection: redis.Redis
) -> None:
    client = TestClient(create_app(with_keys(settings, api_max_body_bytes=4096), connection))
    json_headers = {**auth(), "Content-Type": "application/json"}

    bad = client.post("/v1/intake", content=b'{"channel": "phone", "text": ', headers=json_headers)
    assert bad.status_code == 400
    assert bad.json()["error"] == "bad_json"
    assert bad.json()["message"].startswith("The body is not valid JSON")

    not_utf8 = client.post("/v1/intake", content=b'{"text": "\xff\xfe"}', headers=json_headers)
    assert not_utf8.status_code == 400
    assert not_utf8.json()["message"] == "The body is not valid JSON."

    form = client.post("/v1/intake", data={"channel": "phone"}, headers=auth())
    assert form.status_code == 415
    assert form.json()["message"] == "Send the body as application/json."
    no_type = client.post("/v1/intake", content=b"{}", headers=auth())
    assert no_type.status_code == 415

    big = {**PHONE_CALL, "text": "x" * 5000}
    oversize = client.post("/v1/intake", json=big, headers=auth())
    assert oversize.status_code == 413
    assert oversize.json()["message"] == "The body must be at most 4096 bytes."

    empty = client.post("/v1/intake", content=b"", headers=json_headers)
    assert empty.status_code == 422
    assert empty.json()["errors"] == [{"field": "(body)", "message": "the request has no body"}]
    not_object = client.post("/v1/intake", content=b"[1, 2]", headers=json_headers)
    assert not_object.status_code == 422
    assert queued(connection) == 0


@pytest.mark.parametrize(
    ("change", "field", "says"),
    [
        ({"channel": "fax"}, "channel", "Input should be"),
        ({"text": "   \n  "}, "text", "at least 1 character"),
        ({"text": "\u0000\u0007"}, "text", "must contain some text"),
        ({"text": "x" * 100_001}, "text", "at most 100000 characters"),
        ({"customer": {"email": "sam.taylor@example"}}, "customer.email", "not an email address"),
        ({"customer": {"email": "a@b.co, c@d.co"}}, "customer.email", "not an email address"),
        ({"customer": {"phone": "12"}}, "customer.phone", "not a phone number"),
        ({"customer": {"name": 42}}, "customer.name", "valid string"),
        ({"colour": "blue"}, "colour", "Extra inputs are not permitted"),
        ({"incident_date": "2026-02-30"}, "incident_date", "valid date"),
        ({"incident_date": "2999-01-01"}, "incident_date", "today or in the past"),
        ({"received_at": "2999-01-01T00:00:00Z"}, "received_at", "not be in the future"),
        ({"received_at": "2026-11-27T10:00:00"}, "received_at", "timezone"),
        ({"social": {"platform": "x"}}, "social.post_url", "Field required"),
        (
            {
                "social": {
                    "platform": "x",
                    "post_url": "https://x.example/1",
                    "posted_at": "2026-11-26T21:14:00Z",
                }
            },
            "social",
            "only for channel social",
        ),
    ],
)
def test_schema_violations_name_the_field_and_why(
    client: TestClient, connection: redis.Redis, change: dict[str, Any], field: str, says: str
) -> None:
    body = {**PHONE_CALL, **change}
    response = client.post("/v1/intake", json=body, headers=auth())
    assert response.status_code == 422, response.text
    problems = response.json()["errors"]
    assert any(p["field"] == field and says in p["message"] for p in problems), problems
    assert field in response.json()["message"]
    assert queued(connection) == 0


def test_social_needs_its_post_and_the_authors_handle(
    client: TestClient, connection: redis.Redis
) -> None:
    no_post = {"channel": "social", "customer": {"handle": "@jo"}, "text": "No hot water"}
    response = client.post("/v1/intake", json=no_post, headers=auth(SOCIAL_TEAM_KEY))
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "social"
    no_handle = {
        "channel": "social",
        "text": "No hot water",
        "social": {
            "platform": "x",
            "post_url": "https://x.example/1",
            "posted_at": "2026-11-26T21:14:00Z",
        },
    }
    response = client.post("/v1/intake", json=no_handle, headers=auth(SOCIAL_TEAM_KEY))
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"field": "customer.handle", "message": "required for channel social"}
    ]


def test_a_bad_idempotency_key_header_is_422(client: TestClient) -> None:
    response = client.post(
        "/v1/intake", json=PHONE_CALL, headers={**auth(), "Idempotency-Key": "x" * 300}
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "Idempotency-Key"


def test_emoji_right_to_left_text_and_very_long_messages_arrive_intact(
    client: TestClient, connection: redis.Redis, drain: Callable[[], None]
) -> None:
    texts = {
        "emoji": "The boiler 🔥 is broken again 😡🏚️ — three weeks now. 👨‍👩‍👧 cold",
        "arabic": "الماء يتسرب من السقف منذ أسبوعين ولم يأت أحد لإصلاحه",
        "hebrew": "יש עובש בחדר השינה של הילדים",
        "mixed": "My flat (شقة 4) — דירה 4 — has mould",
        "long": ("The damp has spread across the bedroom wall. " * 2200).strip(),
    }
    ids = {}
    for name, text in texts.items():
        body = {**PHONE_CALL, "text": text, "customer": {"name": "عائشة 🌸 Rahman"}}
        response = client.post("/v1/intake", json=body, headers=auth())
        assert response.status_code == 201, name
        ids[response.json()["id"]] = name
    drain()
    records = {r.id: r for r in feed_records(connection)}
    assert len(records) == len(texts)
    for record_id, name in ids.items():
        assert records[record_id].text == texts[name], name
        assert records[record_id].customer.name == "عائشة 🌸 Rahman"
    assert len(texts["long"]) > 90_000


def test_control_and_bidi_override_characters_do_not_reach_one_line_fields(
    client: TestClient, connection: redis.Redis, drain: Callable[[], None]
) -> None:
    body = {
        **PHONE_CALL,
        "customer": {"name": "Sam\u202e\u0000 Taylor"},
        "subject": "Leak\r\nBcc: someone",
    }
    response = client.post("/v1/intake", json=body, headers=auth())
    assert response.status_code == 201, response.text
    drain()
    [record] = feed_records(connection)
    assert record.customer.name == "Sam Taylor"
    assert record.subject == "Leak Bcc: someone"


def test_a_lone_surrogate_is_refused_not_stored(
    client: TestClient, connection: redis.Redis
) -> None:
    # JSON may escape half of a surrogate pair; such a string cannot be stored as UTF-8.
    body = json.dumps({**PHONE_CALL, "customer": {"name": "Sam \ud800"}})
    headers = {**auth(), "Content-Type": "application/json"}
    response = client.post("/v1/intake", content=body.encode(), headers=headers)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "customer.name"
    assert queued(connection) == 0


def test_redis_down_is_503_with_retry_after(api_settings: Settings, tmp_path: Path) -> None:
    gone = connect(f"unix://{tmp_path}/no-such.sock")
    client = TestClient(create_app(api_settings, gone))
    for headers in (auth(), {**auth(), "Idempotency-Key": "retry-me-1"}):
        response = client.post("/v1/intake", json=PHONE_CALL, headers=headers)
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "30"
        assert "Nothing was recorded" in response.json()["message"]


def test_disk_down_is_503(settings: Settings, connection: redis.Redis, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    broken = with_keys(settings, data_dir=blocker / "data")
    client = TestClient(create_app(broken, connection))
    response = client.post("/v1/intake", json=PHONE_CALL, headers=auth())
    assert response.status_code == 503
    assert queued(connection) == 0


def test_openapi_documents_the_endpoint(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    operation = spec["paths"]["/v1/intake"]["post"]
    body_schema = operation["requestBody"]["content"]["application/json"]["schema"]
    assert body_schema["$ref"].endswith("/IntakeRequest")
    assert {"200", "201", "400", "401", "403", "409", "413", "415", "422", "503"} <= set(
        operation["responses"]
    )
    assert any("HTTPBearer" in requirement for requirement in operation["security"])
    assert "/" not in spec["paths"]  # the HTML form is not part of the API
