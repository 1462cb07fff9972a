"""The acknowledgement as a mail program sees it: headers decoded, both parts intact.

Each case sends through ``EmailNotifier`` to a real aiosmtpd server standing in for the
relay (SMTPUTF8 enabled, as Postfix and Exim offer it) and reads what arrived.
"""

from __future__ import annotations

import random
import string
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from email import message_from_bytes, message_from_string, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from channels import Notice
from channels.email.outbound import EmailNotifier
from channels.email.policy import PLAIN_HEADERS
from gateway.schema import IntakeRecord, Source, Thread
from gateway.settings import Settings, load_settings
from tests.conftest import free_port

WELSH_NAME = "Cymdeithas Tai Tŷ Glas – Gogledd Cymru"
TEXT = (
    "Annwyl Siân,\n\nDiolch am eich neges. Eich cyfeirnod yw CX-2026-000123.\n"
    "From now on we will write to you in Welsh.\n.\nA line that is far longer than any "
    "mail program would fold by itself, " * 3 + "\nand a = sign.\n"
    "--=_0123456789abcdef\n--=_0123456789abcdef--\n"
)
HTML = "<p>Annwyl Siân,</p><p>Diolch — cyfeirnod <strong>CX-2026-000123</strong>.</p>"


class Received:
    def __init__(self) -> None:
        self.raw: list[tuple[list[str], bytes, list[str]]] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.raw.append((list(envelope.rcpt_tos), envelope.content, envelope.mail_options))
        return "250 OK"

    def only(self) -> tuple[list[str], bytes, EmailMessage, list[str]]:
        [(rcpts, raw, options)] = self.raw
        message = message_from_bytes(raw, policy=policy.default)
        assert isinstance(message, EmailMessage)
        return rcpts, raw, message, options


@pytest.fixture
def relay() -> Iterator[tuple[Received, str]]:
    handler = Received()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, enable_SMTPUTF8=True)
    controller.start()
    yield handler, f"smtp://127.0.0.1:{port}"
    controller.stop()


def settings_for(relay_url: str | None, tmp_path: Path) -> Settings:
    return load_settings(
        data_dir=tmp_path,
        domains=["housing.test"],
        smtp_relay_url=relay_url,
        organisation_name=WELSH_NAME,
    )


def notice(recipient: str, html: str | None = HTML) -> Notice:
    record = IntakeRecord(
        id="01J0000000000000000000000C",
        reference="CX-2026-000123",
        channel="email",
        received_at=datetime.now(UTC),
        source=Source(transport="smtp", raw_sha256="0" * 64, message_id="<m3@example.net>"),
        thread=Thread(references=["<m1@example.net>", "<m2@example.net>"]),
    )
    return Notice(
        record=record,
        purpose="acknowledgement",
        recipient=recipient,
        subject="Rydym wedi cael eich cwyn – cyfeirnod CX-2026-000123",
        text=TEXT,
        html=html,
        message_id="<ack.01J0000000000000000000000C@housing.test>",
    )


def test_welsh_names_and_subjects_arrive_readable_in_seven_bit_headers(
    relay: tuple[Received, str], tmp_path: Path
) -> None:
    handler, url = relay
    EmailNotifier(settings_for(url, tmp_path)).send(notice("sian@example.net"))
    rcpts, raw, message, options = handler.only()
    assert rcpts == ["sian@example.net"] and "SMTPUTF8" not in options
    headers = raw.split(b"\r\n\r\n", 1)[0]
    assert headers.isascii()  # RFC 2047 words for a relay without SMTPUTF8
    assert message["From"].addresses[0].display_name == WELSH_NAME
    assert message["From"].addresses[0].addr_spec == "hello@housing.test"
    assert message["Subject"] == "Rydym wedi cael eich cwyn – cyfeirnod CX-2026-000123"
    assert message["Auto-Submitted"] == "auto-replied"
    assert message["In-Reply-To"] == "<m3@example.net>"
    assert message["References"].split() == [
        "<m1@example.net>",
        "<m2@example.net>",
        "<m3@example.net>",
    ]


def test_both_parts_decode_to_exactly_what_was_written(
    relay: tuple[Received, str], tmp_path: Path
) -> None:
    handler, url = relay
    EmailNotifier(settings_for(url, tmp_path)).send(notice("sian@example.net"))
    _, _, message, _ = handler.only()
    assert message.get_content_type() == "multipart/alternative"
    plain, html = message.get_body(("plain",)), message.get_body(("html",))
    assert plain is not None and html is not None
    assert plain.get_content().replace("\r\n", "\n") == TEXT
    assert html.get_content().replace("\r\n", "\n").rstrip("\n") == HTML
    assert plain.get_content_charset() == "utf-8"


def test_a_text_only_notice_is_a_single_part(relay: tuple[Received, str], tmp_path: Path) -> None:
    handler, url = relay
    EmailNotifier(settings_for(url, tmp_path)).send(notice("sian@example.net", html=None))
    _, _, message, _ = handler.only()
    assert message.get_content_type() == "text/plain"
    assert message.get_content().replace("\r\n", "\n") == TEXT
    assert message["MIME-Version"] == "1.0"


@pytest.mark.parametrize("html", [HTML, None])
def test_each_header_appears_once(
    relay: tuple[Received, str], tmp_path: Path, html: str | None
) -> None:
    handler, url = relay
    EmailNotifier(settings_for(url, tmp_path)).send(notice("sian@example.net", html=html))
    _, _, message, _ = handler.only()
    names = [name.lower() for name in message]
    assert len(names) == len(set(names)), names
    assert "mime-version" in names


def test_an_internationalised_address_is_sent_with_smtputf8(
    relay: tuple[Received, str], tmp_path: Path
) -> None:
    handler, url = relay
    EmailNotifier(settings_for(url, tmp_path)).send(notice("siân@enghraifft.cymru"))
    rcpts, raw, _, options = handler.only()
    message = message_from_string(raw.decode(), policy=policy.default)
    assert rcpts == ["siân@enghraifft.cymru"]
    assert "SMTPUTF8" in options
    assert "To: siân@enghraifft.cymru".encode() in raw
    assert message["To"].addresses[0].addr_spec == "siân@enghraifft.cymru"
    assert message["From"].addresses[0].display_name == WELSH_NAME


def test_without_a_relay_the_message_is_written_to_the_outbox(tmp_path: Path) -> None:
    settings = settings_for(None, tmp_path)
    EmailNotifier(settings).send(notice("sian@example.net"))
    [written] = list(settings.outbox_dir.glob("*.eml"))
    message = message_from_bytes(written.read_bytes(), policy=policy.default)
    assert message["Subject"] == "Rydym wedi cael eich cwyn – cyfeirnod CX-2026-000123"
    body = message.get_body(("plain",))
    assert body is not None and body.get_content().replace("\r\n", "\n") == TEXT


def test_the_message_is_written_byte_for_byte_as_compat32_writes_it(tmp_path: Path) -> None:
    notifier = EmailNotifier(settings_for(None, tmp_path))
    for recipient, html in (("sian@example.net", HTML), ("a.tenant@example.net", None)):
        message = notifier.build(notice(recipient, html))
        assert message.as_bytes(policy=PLAIN_HEADERS) == message.as_bytes(policy=policy.compat32)


def test_header_values_of_every_shape_are_folded_as_compat32_folds_them() -> None:
    shapes = random.Random(2026)
    letters = string.ascii_letters + string.digits + " \t<>@.=?-_:;,\"'()[]"
    names = ("Subject", "To", "Message-ID", "References", "X-Intake-Reference")
    for _ in range(4_000):
        length = shapes.choice((0, 1, 12, 40, 60, 64, 65, 66, 67, 68, 70, 76, 77, 78, 79, 120))
        value = "".join(shapes.choice(letters) for _ in range(length))
        for variant in (value, value.replace("\t", " "), f" {value}", value + "é", value + "\n x"):
            name = shapes.choice(names)
            expected = policy.compat32.fold_binary(name, variant)
            assert PLAIN_HEADERS.fold_binary(name, variant) == expected, (name, variant)


def test_the_boundary_cannot_occur_in_the_parts(tmp_path: Path) -> None:
    """Whatever a template writes, no line of a part can be taken for the boundary."""
    message = EmailNotifier(settings_for(None, tmp_path)).build(notice("sian@example.net"))
    boundary = message.get_boundary()
    assert boundary is not None and boundary.startswith("=_")
    raw = message.as_bytes(policy=PLAIN_HEADERS).decode("ascii")
    lines_with_marker = [line for line in raw.splitlines() if "=_" in line]
    assert all(boundary in line for line in lines_with_marker)  # TEXT holds "--=_..." lines
    assert len(lines_with_marker) == 4  # the Content-Type parameter, two openers, the closer
