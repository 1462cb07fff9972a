"""The public complaint form, driven over HTTP as a browser would post it."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from html import unescape
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from fastapi.testclient import TestClient
from pydantic import SecretStr

from gateway.blobstore import BlobStore
from gateway.connection import connect
from gateway.http import create_app
from gateway.settings import Settings
from gateway.working_days import compute_deadlines, uk_date
from tests.conftest import Relay, feed_records

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 64
PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << >>\n%%EOF\n"
WHEN = uk_date(datetime.now(UTC)) - timedelta(days=10)
ANSWERS = {
    "name": "Sam Taylor",
    "contact": "email",
    "email": "sam.taylor@example.net",
    "phone": "07700 900123",
    "details": "The mould in my son's bedroom is back.\nHe has asthma and it is getting worse.",
    "incident_day": str(WHEN.day),
    "incident_month": str(WHEN.month),
    "incident_year": str(WHEN.year),
    "outcome": "Treat the mould and fix the extractor fan.",
    "support": "I am deaf: please email rather than phone.",
}


class Visit:
    """One person opening the form: their cookie, the form's CSRF token and submission key."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        page = client.get("/")
        assert page.status_code == 200
        self.page = page.text
        self.csrf = hidden(page.text, "csrf_token")
        self.key = hidden(page.text, "submission_key")

    def send(
        self,
        answers: dict[str, str],
        files: list[tuple[str, bytes, str]] | None = None,
        **extra: Any,
    ) -> httpx.Response:
        data = {"csrf_token": self.csrf, "submission_key": self.key, **answers, **extra}
        parts = [("attachments", (name, body, ctype)) for name, body, ctype in files or []]
        if not parts:  # still multipart, as a browser sends a form with a file input
            parts = [("attachments", ("", b"", "application/octet-stream"))]
        return self.client.post("/", data=data, files=parts)


def hidden(html: str, name: str) -> str:
    """The value of the input called ``name`` as the page shows it."""
    tag = re.search(rf'<input[^>]*\bname="{name}"[^>]*>', html)
    assert tag, name
    found = re.search(r'\bvalue="([^"]*)"', tag.group(0))
    assert found, name
    return unescape(found.group(1))


def summary(html: str) -> list[tuple[str, str]]:
    """The error summary's links: (target field, message)."""
    return [
        (target, unescape(text))
        for target, text in re.findall(r'<li><a href="#([\w-]+)">([^<]*)</a></li>', html)
    ]


def queued(connection: redis.Redis) -> int:
    return int(connection.llen("rq:queue:intake"))


@pytest.fixture
def client(settings: Settings, connection: redis.Redis) -> TestClient:
    return TestClient(create_app(settings, connection))


class _Controls(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.controls: list[dict[str, str | None]] = []
        self.labels: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag in ("input", "textarea", "select") and attributes.get("type") != "hidden":
            self.controls.append(attributes)
        if tag == "label" and attributes.get("for"):
            self.labels.add(str(attributes["for"]))


def test_the_form_labels_every_field_and_protects_itself(client: TestClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    html = response.text
    assert '<html lang="en">' in html and "<h1" in html and "<main" in html
    parser = _Controls()
    parser.feed(html)
    unlabelled = [c for c in parser.controls if c.get("id") not in parser.labels]
    assert unlabelled == []
    names = {c.get("name") for c in parser.controls}
    assert {"name", "contact", "email", "phone", "address", "rep_name", "details"} <= names
    assert {"incident_day", "incident_month", "incident_year", "outcome", "support"} <= names
    assert 'type="file" multiple' in html and "novalidate" in html
    assert "<script" not in html
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp
    assert response.headers["Cache-Control"] == "no-store"
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie
    css = client.get("/assets/form.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")


def test_a_complaint_sent_with_the_form_is_confirmed_recorded_and_acknowledged(
    client: TestClient,
    settings: Settings,
    connection: redis.Redis,
    drain: Callable[[], None],
    relay: Relay,
) -> None:
    visit = Visit(client)
    files = [("bedroom wall.png", PNG, "image/png"), ("letter.pdf", PDF, "application/pdf")]
    response = visit.send({**ANSWERS, "contact": "phone"}, files)
    assert response.status_code == 200
    page = response.text
    assert "Complaint sent" in page
    [reference] = re.findall(r"CX-\d{4}-\d{6}", page)
    deadlines = compute_deadlines(
        datetime.now(UTC), settings, acknowledged_on=uk_date(datetime.now(UTC))
    )
    assert deadlines.acknowledge_by.strftime("%A %-d %B %Y") in page
    assert deadlines.respond_by.strftime("%A %-d %B %Y") in page
    assert "We are sending a copy of this to the email address you gave us" in page

    drain()
    [record] = feed_records(connection)
    assert record.reference == reference
    assert record.channel == "web" and record.source.transport == "http"
    assert record.customer.name == "Sam Taylor"
    assert record.customer.email == "sam.taylor@example.net"
    assert record.customer.phone == "+447700900123"
    assert record.customer.preferred_contact == "phone"
    assert record.customer.support_needs == ANSWERS["support"]
    assert record.text == ANSWERS["details"]
    assert record.incident_date == WHEN
    assert record.desired_outcome == ANSWERS["outcome"]
    assert [(a.filename, a.content_type, a.size) for a in record.attachments] == [
        ("bedroom wall.png", "image/png", len(PNG)),
        ("letter.pdf", "application/pdf", len(PDF)),
    ]
    blobs = BlobStore(settings.blob_dir)
    assert blobs.get(record.attachments[0].sha256) == PNG
    assert record.deadlines == deadlines
    [ack] = relay.wait_for(1)
    assert relay.messages[0][1] == ["sam.taylor@example.net"]
    assert reference in ack["Subject"]


def test_a_representative_or_a_postal_address_is_asked_for_when_chosen(
    client: TestClient, connection: redis.Redis, drain: Callable[[], None]
) -> None:
    visit = Visit(client)
    bare = {"name": "Mrs Okafor", "details": "Damp in the hall"}
    response = visit.send({**bare, "contact": "representative"})
    assert response.status_code == 422
    assert summary(response.text) == [
        ("rep_name", "Enter the name of the person acting for you"),
        ("rep_email", "Enter an email address or phone number for the person acting for you"),
    ]
    response = visit.send({**bare, "contact": "post"})
    assert summary(response.text) == [
        ("address", "Enter your postal address, including the postcode")
    ]
    response = visit.send(
        {
            **bare,
            "contact": "representative",
            "rep_name": "Cllr Ann Patel",
            "rep_relationship": "ward councillor",
            "rep_phone": "0113 496 0000",
        }
    )
    assert response.status_code == 200
    drain()
    [record] = feed_records(connection)
    assert record.customer.representative is not None
    assert record.customer.representative.name == "Cllr Ann Patel"
    assert record.customer.representative.phone == "+441134960000"
    assert record.customer.preferred_contact is None
    assert record.acknowledgement is not None
    assert record.acknowledgement.status == "not_applicable"  # no email address given


def test_a_double_click_or_a_resubmission_gives_one_record(
    client: TestClient, connection: redis.Redis, drain: Callable[[], None]
) -> None:
    visit = Visit(client)
    first = visit.send(ANSWERS, [("photo.png", PNG, "image/png")])
    second = visit.send(ANSWERS, [("photo.png", PNG, "image/png")])
    [reference] = set(re.findall(r"CX-\d{4}-\d{6}", first.text))
    assert re.findall(r"CX-\d{4}-\d{6}", second.text)[0] == reference
    assert queued(connection) == 1
    # Going back and sending something different is a new complaint, not a repeat.
    changed = visit.send({**ANSWERS, "details": "And the window will not close."})
    assert re.findall(r"CX-\d{4}-\d{6}", changed.text)[0] != reference
    drain()
    assert len(feed_records(connection)) == 2


def test_a_post_without_a_valid_csrf_token_is_refused_with_the_answers_kept(
    client: TestClient, settings: Settings, connection: redis.Redis
) -> None:
    visit = Visit(client)
    missing = client.post("/", data={**ANSWERS, "submission_key": visit.key})
    assert missing.status_code == 400
    assert "Your complaint has not been sent yet" in missing.text
    assert hidden(missing.text, "name") == "Sam Taylor"

    # A token fetched by another browser (an attacker's page) does not work with this one.
    other = Visit(TestClient(create_app(settings, connection)))
    forged = client.post(
        "/", data={**ANSWERS, "csrf_token": other.csrf, "submission_key": other.key}
    )
    assert forged.status_code == 400

    flipped = "1" if visit.csrf.endswith("0") else "0"
    tampered = visit.send(ANSWERS, csrf_token=visit.csrf[:-1] + flipped)
    assert tampered.status_code == 400

    cookieless = TestClient(create_app(settings, connection))
    cookieless.cookies.clear()
    no_cookie = cookieless.post(
        "/", data={**ANSWERS, "csrf_token": visit.csrf, "submission_key": visit.key}
    )
    assert no_cookie.status_code == 400
    assert "allow cookies" in no_cookie.text
    assert queued(connection) == 0

    # The page that refused gave a fresh token: sending again works.
    again = Visit(client)
    again.csrf, again.key = (
        hidden(missing.text, "csrf_token"),
        hidden(missing.text, "submission_key"),
    )
    assert again.send(ANSWERS).status_code == 200


def test_a_filled_honeypot_is_refused_and_nothing_is_queued(
    client: TestClient, connection: redis.Redis
) -> None:
    response = Visit(client).send(ANSWERS, website="http://spam.example")
    assert response.status_code == 400
    assert "Your complaint has not been sent yet" in response.text
    assert 'name="website" type="text" tabindex="-1" autocomplete="off" value=""' in response.text
    assert queued(connection) == 0


def test_script_tags_come_back_as_text_never_as_markup(
    client: TestClient, connection: redis.Redis, drain: Callable[[], None]
) -> None:
    hostile = {
        **ANSWERS,
        "name": "<script>alert('name')</script>",
        "details": '</textarea><script>alert("details")</script><img src=x onerror=alert(1)>',
        "email": '"><script>alert(1)</script>',
    }
    response = Visit(client).send(hostile)
    assert response.status_code == 422
    assert "<script>" not in response.text and "<img src=x" not in response.text
    assert "&lt;script&gt;alert(&#39;name&#39;)&lt;/script&gt;" in response.text
    assert "&lt;/textarea&gt;&lt;script&gt;" in response.text
    fixed = Visit(client).send({**hostile, "email": "sam.taylor@example.net"})
    assert fixed.status_code == 200
    assert "<script>" not in fixed.text
    drain()
    [record] = feed_records(connection)
    assert record.customer.name == "<script>alert('name')</script>"  # kept as typed
    assert record.text == hostile["details"]


def test_junk_answers_get_a_message_next_to_each_field(
    client: TestClient, connection: redis.Redis
) -> None:
    visit = Visit(client)
    response = visit.send(
        {
            "name": "",
            "contact": "carrier pigeon",
            "email": "sam.taylor@example",
            "phone": "12",
            "details": "x" * 102_400,
            "incident_day": "31",
            "incident_month": "2",
            "incident_year": "2026",
            "outcome": "y" * 5001,
        }
    )
    assert response.status_code == 422
    assert summary(response.text) == [
        ("name", "Enter your name"),
        ("contact", "Select how you would like us to contact you"),
        ("email", "Enter an email address in the correct format, like name@example.com"),
        ("phone", "Enter a phone number, like 01632 960 001, 07700 900 982 or +44 808 157 0192"),
        ("details", "What happened must be 20,000 characters or fewer"),
        ("incident_day", "The date must be a real date, like 27 3 2026"),
        ("outcome", "What would put things right must be 5,000 characters or fewer"),
    ]
    html = response.text
    assert response.text.startswith("<!DOCTYPE html>") and "<title>Error: " in html
    assert 'id="email-error"' in html and 'aria-describedby="email-error"' in html
    assert "x" * 102_400 in html  # what they wrote is not lost
    future = WHEN + timedelta(days=400)
    later = visit.send(
        {
            **ANSWERS,
            "incident_day": str(future.day),
            "incident_month": str(future.month),
            "incident_year": str(future.year),
        }
    )
    assert summary(later.text) == [("incident_day", "The date must be today or in the past")]
    assert queued(connection) == 0


def test_emoji_and_right_to_left_answers_arrive_intact(
    client: TestClient, connection: redis.Redis, drain: Callable[[], None]
) -> None:
    answers = {
        **ANSWERS,
        "name": "عائشة 🌸 Rahman",
        "details": "الماء يتسرب من السقف 💧😡\nיש עובש בחדר השינה\nThe boiler 🔥 is broken",
    }
    response = Visit(client).send(answers)
    assert response.status_code == 200
    drain()
    [record] = feed_records(connection)
    assert record.customer.name == "عائشة 🌸 Rahman"
    assert record.text == answers["details"]


def test_too_many_posts_from_one_address_get_a_friendly_429(
    settings: Settings, connection: redis.Redis
) -> None:
    limited = settings.model_copy(update={"web_rate_limit": 2})
    client = TestClient(create_app(limited, connection))
    assert Visit(client).send(ANSWERS).status_code == 200
    assert Visit(client).send({**ANSWERS, "details": "Second"}).status_code == 200
    third = Visit(client).send({**ANSWERS, "details": "Third complaint text"})
    assert third.status_code == 429
    assert int(third.headers["Retry-After"]) > 0
    assert "We have had a lot of forms from your internet connection" in third.text
    assert "Third complaint text" in third.text
    assert queued(connection) == 2


def test_redis_down_is_503_with_the_answers_kept(
    settings: Settings, tmp_path: Path, connection: redis.Redis
) -> None:
    gone = connect(f"unix://{tmp_path}/no-such.sock")
    without_secret = TestClient(create_app(settings, gone))
    assert without_secret.get("/").status_code == 503  # the form's secret lives in Redis
    without_secret.cookies.set("intake_form", "b" * 24)  # a form opened before the outage
    fields = {**ANSWERS, "submission_key": "k" * 24, "csrf_token": f"{int(time.time())}.{'0' * 64}"}
    posted = without_secret.post("/", data=fields, files={"attachments": ("a.png", PNG)})
    assert posted.status_code == 503
    assert hidden(posted.text, "name") == "Sam Taylor"

    secret = settings.model_copy(update={"web_secret": SecretStr("test-secret-not-a-real-one")})
    client = TestClient(create_app(secret, gone))
    response = Visit(client).send(ANSWERS)
    assert response.status_code == 503
    assert "we could not send your complaint just now" in response.text
    assert hidden(response.text, "name") == "Sam Taylor"


def test_disk_down_is_503(settings: Settings, connection: redis.Redis, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    broken = settings.model_copy(update={"data_dir": blocker / "data"})
    response = Visit(TestClient(create_app(broken, connection))).send(ANSWERS)
    assert response.status_code == 503
    assert queued(connection) == 0


def test_junk_posts_are_refused_clearly(client: TestClient, connection: redis.Redis) -> None:
    as_json = client.post("/", json=ANSWERS)
    assert as_json.status_code == 400
    cut_off = client.post(
        "/",
        content=b'--xyz\r\nContent-Disposition: form-data; name="name"\r\n\r\nSam',
        headers={"Content-Type": "multipart/form-data; boundary=xyz"},
    )
    assert cut_off.status_code == 400
    assert "Your complaint has not been sent yet" in cut_off.text
    no_boundary = client.post(
        "/", content=b"name=Sam", headers={"Content-Type": "multipart/form-data"}
    )
    assert no_boundary.status_code == 400
    assert "Your form could not be read" in no_boundary.text
    assert queued(connection) == 0


def test_an_oversize_post_is_413(settings: Settings, connection: redis.Redis) -> None:
    small = settings.model_copy(update={"upload_max_files": 1, "upload_max_bytes": 2048})
    client = TestClient(create_app(small, connection))
    visit = Visit(client)
    response = visit.send(
        ANSWERS, [("huge.pdf", PDF + b"0" * (3 * 1024 * 1024), "application/pdf")]
    )
    assert response.status_code == 413
    assert "Your files are too big to send" in response.text
    assert queued(connection) == 0


def test_the_date_is_optional_and_must_be_whole(client: TestClient) -> None:
    visit = Visit(client)
    undated = {k: v for k, v in ANSWERS.items() if not k.startswith("incident_")}
    partial = visit.send({**undated, "incident_month": "3"})
    assert summary(partial.text) == [
        ("incident_day", "The date must include a day, month and year")
    ]
    assert visit.send(undated).status_code == 200


def test_the_cookie_is_secure_when_the_service_is_public_over_https(
    settings: Settings, connection: redis.Redis
) -> None:
    public = settings.model_copy(update={"public_url": "https://intake.example.org"})
    response = TestClient(create_app(public, connection)).get("/")
    assert "secure" in response.headers["set-cookie"].lower()
