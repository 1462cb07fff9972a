"""The email normaliser through the real path: SMTP in, worker, one record on the feed.

What a complaints officer reads in the record: the text of HTML-only mail without its
markup, attachments kept with names that are safe to show, the thread a reply belongs
to, the language, and text in whatever character set the customer's mail program chose.
Mail that cannot be read still arrives, flagged for a person with the reason; it never
stops the worker. Input that no SMTP relay transmits (an unfolded megabyte header line,
bytes with no line structure) is handed to ``accept`` as the IMAP poller does.
"""

from __future__ import annotations

import hashlib
import random
import smtplib
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
import redis

from channels.email.identity import email_identity
from gateway.blobstore import BlobStore
from gateway.intake import Arrival, IntakeContext, accept
from gateway.schema import AckStatus, Disposition, IntakeRecord
from tests.conftest import Relay, feed_records, make_mail

CRAFTED = Path(__file__).parent / "data" / "mail" / "crafted"
OURS = "complaints@housing.test"


@dataclass
class Gateway:
    """The running gateway, and the two ways mail reaches it."""

    server: tuple[str, int]
    connection: redis.Redis
    drain: Callable[[], None]
    ctx: IntakeContext
    relay: Relay

    def mail(self, *messages: bytes, sender: str = "resident@example.net") -> list[IntakeRecord]:
        """Send over one SMTP connection, drain, and return the records in sending order."""
        references = []
        with smtplib.SMTP(*self.server, timeout=30) as client:
            client.ehlo("mail.example.net")
            for raw in messages:
                client.mail(sender)
                client.rcpt(OURS)
                code, reply = client.data(raw)
                assert code == 250, reply
                references.append(reply.decode().rsplit(" ", 1)[-1])
        return self._records(references)

    def hand_in(self, raw: bytes) -> IntakeRecord:
        """Hand a message to ``accept`` as a mailbox poller does, no SMTP line limits."""
        key, message_id = email_identity(raw)
        arrival = Arrival(
            channel="email",
            transport="imap",
            normaliser="email",
            raw=raw,
            idempotency_key=key,
            meta={"recipients": [OURS], "message_id": message_id},
        )
        receipt = accept(arrival, self.ctx)
        [record] = self._records([receipt.reference])
        return record

    def _records(self, references: list[str]) -> list[IntakeRecord]:
        self.drain()
        found = {record.reference: record for record in feed_records(self.connection)}
        assert set(references) <= set(found), "a message did not reach the feed"
        return [found[reference] for reference in references]


@pytest.fixture
def gateway(
    smtp_server: tuple[str, int],
    connection: redis.Redis,
    drain: Callable[[], None],
    intake_ctx: IntakeContext,
    relay: Relay,
) -> Gateway:
    return Gateway(smtp_server, connection, drain, intake_ctx, relay)


def crafted(name: str) -> bytes:
    return (CRAFTED / name).read_bytes()


def assert_readable(text: str) -> None:
    """No control characters, no undecodable bytes, no mojibake of UTF-8 or cp1252."""
    controls = {ch for ch in text if unicodedata.category(ch) in ("Cc", "Cs")} - {"\n", "\t"}
    assert not controls, f"control characters {sorted(controls)!r} in {text[:80]!r}"
    for sign in ("\ufffd", "Ã", "â€", "Â"):
        assert sign not in text, f"{sign!r} in {text[:200]!r}"


def test_html_only_mail_becomes_readable_text(gateway: Gateway) -> None:
    [record] = gateway.mail(crafted("html_only.eml"))
    assert record.disposition == Disposition.NEW_CASE
    assert record.customer.name == "Priya Shah"
    assert "The damp in my bedroom is getting worse & the mould is now on the ceiling." in (
        " ".join(record.text.split())
    )
    assert "went up by £40 last month because the windows don’t close." in record.text
    assert "14B Mill Lane" in record.text
    assert "Priya Shah" in record.text  # &nbsp; is a space to a reader
    for markup in ("<", ">", "&amp;", "&pound;", "font-family", "do-not-show", "DOCTYPE"):
        assert markup not in record.text
    assert record.language == "en"
    assert_readable(record.text)


def test_attachments_are_stored_and_their_names_made_safe(gateway: Gateway) -> None:
    raw = crafted("attachments.eml")
    [record] = gateway.mail(raw)
    assert record.disposition == Disposition.NEW_CASE
    assert record.text == (
        "Photos of the mould and the letter from the surveyor are attached.\n"
        "Sam Taylor, 3 Riverside Court"
    )
    sent = message_from_bytes(raw, policy=policy.default)
    assert isinstance(sent, EmailMessage)
    files = list(sent.iter_parts())[1:]  # all but the body text, in message order
    assert [a.content_type for a in record.attachments] == [f.get_content_type() for f in files]
    blobs = BlobStore(gateway.ctx.settings.blob_dir)
    for attachment, part in zip(record.attachments, files, strict=True):
        data = part.get_payload(decode=True)
        assert isinstance(data, bytes) and data
        assert attachment.size == len(data)
        assert attachment.sha256 == hashlib.sha256(data).hexdigest()
        assert blobs.get(attachment.sha256) == data
    assert [a.filename for a in record.attachments] == [
        "photo of mould.jpg",
        "passwd",  # "../../etc/passwd": the last path element only
        "repairs log [31m.txt",  # CR LF, BEL and the escape of a terminal colour code gone
        "invoice fdp.exe",  # a right-to-left override would have shown "invoiceexe.pdf"
        "damp.jpg",  # a Windows path, C:\Users\sam\Desktop\damp.jpg
    ]


def test_threading_headers_place_a_reply_in_its_thread(gateway: Gateway) -> None:
    [record] = gateway.mail(crafted("reply.eml"))
    assert record.source.message_id == "<reply-2@example.net>"
    assert record.thread.in_reply_to == "<ack.01JD0000000000000000000000@housing.test>"
    assert record.thread.references == [
        "<first-1@example.net>",
        "<ack.01JD0000000000000000000000@housing.test>",
    ]
    [ack] = gateway.relay.wait_for(1)
    assert ack["In-Reply-To"] == "<reply-2@example.net>"
    assert ack["References"].split() == [*record.thread.references, "<reply-2@example.net>"]


def test_a_long_references_chain_keeps_its_root_and_latest(gateway: Gateway) -> None:
    chain = [f"<m{i}@example.net>" for i in range(500)]
    references = "References: " + "\r\n ".join(chain)
    raw = make_mail(extra_headers={"In-Reply-To": chain[-1]}).replace(
        b"MIME-Version", references.encode() + b"\r\nMIME-Version"
    )
    [record] = gateway.mail(raw)
    assert record.thread.in_reply_to == "<m499@example.net>"
    assert record.thread.references == [chain[0], *chain[-49:]]


@pytest.mark.parametrize(
    ("name", "language"),
    [
        ("welsh.eml", "cy"),
        ("polish_iso_8859_2.eml", "pl"),
        ("koi8_r.eml", "ru"),
        ("iso_8859_1.eml", "fr"),
        ("windows_1252.eml", "en"),
    ],
)
def test_language_is_detected(gateway: Gateway, name: str, language: str) -> None:
    [record] = gateway.mail(crafted(name))
    assert record.language == language


def test_a_very_short_message_has_no_language(gateway: Gateway) -> None:
    [record] = gateway.mail(make_mail(body="Leak again!", subject="Leak"))
    assert record.text == "Leak again!"
    assert record.language is None


@pytest.mark.parametrize(
    ("name", "subject", "customer", "fragments"),
    [
        (
            "windows_1252.eml",
            "Repair – still waiting",
            "Mark O'Brien",
            ["they’d come on Monday – nobody came", "£60", "€25", "“We’ll sort it”"],
        ),
        (  # labelled iso-8859-1, written in windows-1252, as Outlook long did
            "latin1_label_windows_1252_text.eml",
            "Heater costs",
            "Mark O'Brien",
            ["they’d come on Monday – nobody came", "£60", "€25", "“We’ll sort it”"],
        ),
        (
            "iso_8859_1.eml",
            "Réparation de la chaudière",
            "Hélène Lefèvre",
            ["Ça fait trois semaines", "l'humidité", "très froid"],
        ),
        (
            "koi8_r.eml",
            "Жалоба: сырость в квартире",
            "Ольга Иванова",
            ["пожаловаться на сырость и плесень", "ребёнок постоянно кашляет"],
        ),
        (
            "polish_iso_8859_2.eml",
            "Skarga: wilgoć i pleśń w mieszkaniu",
            "Agnieszka Kowalska",
            ["Piszę, aby złożyć skargę", "ściany w sypialni są mokre"],
        ),
    ],
)
def test_non_utf8_charsets_decode(
    gateway: Gateway, name: str, subject: str, customer: str, fragments: list[str]
) -> None:
    [record] = gateway.mail(crafted(name))
    assert record.disposition == Disposition.NEW_CASE
    assert record.subject == subject
    assert record.customer.name == customer
    for fragment in fragments:
        assert fragment in record.text
    assert_readable(record.text)
    assert_readable(record.subject or "")


def test_broken_boundaries_are_flagged_not_lost(gateway: Gateway) -> None:
    raw = crafted("broken_boundary.eml")
    [record] = gateway.mail(raw)
    assert record.disposition == Disposition.NEEDS_REVIEW
    assert any("MIME structure is broken" in r for r in record.review_reasons)
    assert record.subject == "Broken window"
    assert record.customer.email == "tom.reid@example.net"
    assert BlobStore(gateway.ctx.settings.blob_dir).get(record.source.raw_sha256) == raw


def test_garbage_bytes_in_a_text_body_are_flagged(gateway: Gateway) -> None:
    noise = bytes(b for b in random.Random(7).randbytes(6000) if b not in b"\r\n")
    body = b"\r\n".join(noise[i : i + 70] for i in range(0, len(noise), 70))
    raw = make_mail(body="").replace(b"\r\n\r\n\r\n", b"\r\n\r\n" + body + b"\r\n")
    [record] = gateway.mail(raw)
    assert record.disposition == Disposition.NEEDS_REVIEW
    assert any("binary data" in r for r in record.review_reasons)
    assert record.text == ""
    assert record.subject == "Broken boiler"  # what can be read is kept
    assert record.customer.email == "sam.taylor@example.net"


def test_bytes_that_are_no_message_at_all_are_flagged(gateway: Gateway) -> None:
    record = gateway.hand_in(random.Random(11).randbytes(20_000))
    assert record.disposition == Disposition.NEEDS_REVIEW
    reasons = " | ".join(record.review_reasons)
    assert "no headers" in reasons and "no sender address" in reasons
    assert record.text == "" and record.customer.email is None
    assert record.acknowledgement is not None
    assert record.acknowledgement.status == AckStatus.NOT_APPLICABLE


def test_a_message_with_no_headers_keeps_its_text_for_a_person(gateway: Gateway) -> None:
    [record] = gateway.mail(crafted("no_headers.eml"))
    assert record.disposition == Disposition.NEEDS_REVIEW
    reasons = " | ".join(record.review_reasons)
    assert "no headers" in reasons and "no sender address" in reasons
    assert record.text.startswith("my kitchen ceiling has been leaking since march")


def test_a_header_only_message_is_flagged(gateway: Gateway) -> None:
    [record] = gateway.mail(crafted("header_only.eml"))
    assert record.disposition == Disposition.NEEDS_REVIEW
    assert any("no readable text" in r for r in record.review_reasons)
    assert record.subject == "Lift broken again"
    assert record.customer.email == "dee.brown@example.net"


def test_a_message_without_from_is_flagged_and_not_answered(gateway: Gateway) -> None:
    [record] = gateway.mail(crafted("no_from.eml"), sender="night.owl@example.net")
    assert record.disposition == Disposition.NEEDS_REVIEW
    assert any("no sender address" in r for r in record.review_reasons)
    assert "loud music every night" in record.text
    assert record.customer.email is None  # the envelope sender is not the author
    assert record.acknowledgement is not None
    assert record.acknowledgement.status == AckStatus.NOT_APPLICABLE
    assert gateway.relay.wait_for(1, timeout=0.3) == []


def test_nul_bytes_are_removed_and_the_message_read(gateway: Gateway) -> None:
    raw = make_mail(
        subject="Leak\x00 in the bathroom",
        body="Water is coming\x00 through the ceiling of the bathroom again.",
    )
    [record] = gateway.mail(raw)
    assert record.subject == "Leak in the bathroom"
    assert record.text == "Water is coming through the ceiling of the bathroom again."
    assert record.disposition == Disposition.NEW_CASE  # readable, so nobody need look


def test_an_enormous_folded_header_is_cut_short(gateway: Gateway) -> None:
    words = " ".join(["mould"] * 40_000)
    folded = "\r\n ".join(words[i : i + 900] for i in range(0, len(words), 900))
    raw = make_mail(subject=folded)
    [record] = gateway.mail(raw)
    assert record.subject is not None and len(record.subject) == 998
    assert record.subject.startswith("mould mould")
    assert "boiler has been broken" in record.text
    assert record.disposition == Disposition.NEW_CASE


def test_an_enormous_single_header_line_is_read(gateway: Gateway) -> None:
    raw = make_mail(subject="Damp " * 20_000, extra_headers={"X-Tracking": "A" * 2_000_000})
    record = gateway.hand_in(raw)
    assert record.subject is not None and len(record.subject) <= 998
    assert record.subject.startswith("Damp Damp")
    assert "boiler has been broken" in record.text
    assert record.customer.email == "sam.taylor@example.net"


def test_hostile_nesting_is_flagged_and_the_worker_survives(gateway: Gateway) -> None:
    depth = 3000
    body = b"".join(
        b"--b%d\r\nContent-Type: multipart/mixed; boundary=b%d\r\n\r\n" % (i, i + 1)
        for i in range(depth)
    )
    raw = make_mail(body="").replace(
        b"Content-Type: text/plain; charset=utf-8", b"Content-Type: multipart/mixed; boundary=b0"
    )
    nested, plain = gateway.mail(raw + body, make_mail(message_id="<after@example.net>"))
    assert nested.disposition == Disposition.NEEDS_REVIEW
    assert any("nested too deeply" in r for r in nested.review_reasons)
    assert nested.customer.email == "sam.taylor@example.net"
    assert plain.disposition == Disposition.NEW_CASE  # the next message is worked as usual


def test_8bit_garbage_in_identifying_headers_is_cleaned(gateway: Gateway) -> None:
    raw = (
        b'From: "Sam \xff\xfe Taylor" <sam.taylor@example.net>\r\n'
        b"To: complaints@housing.test\r\n"
        b"Subject: Rent \xa3 overcharged\r\n"
        b"Message-ID: <abc\xff\xfe@mail.example.net>\r\n"
        b"In-Reply-To: <p\xc3\x28q@example.net>\r\n"
        b"References: <a@example.net> <c\xffd@example.net>\r\n"
        b"\r\nI was charged twice for November's rent.\r\n"
    )
    [record] = gateway.mail(raw)
    assert record.customer.email == "sam.taylor@example.net"
    assert record.subject == "Rent £ overcharged"
    assert record.source.message_id is not None and record.source.message_id.startswith("<abc")
    for value in (
        record.customer.name or "",
        record.source.message_id,
        record.thread.in_reply_to or "",
        *record.thread.references,
    ):
        assert value.encode("utf-8")  # no lone surrogates left to break a JSON consumer
        assert all(unicodedata.category(ch) not in ("Cc", "Cs") for ch in value)
    assert len(record.thread.references) == 2


def test_more_attachments_than_the_limit_are_kept_in_the_raw(gateway: Gateway) -> None:
    message = EmailMessage()
    message["From"] = "Sam Taylor <sam.taylor@example.net>"
    message["To"] = OURS
    message["Subject"] = "All my repair receipts"
    message.set_content("Receipts attached, one per repair.")
    for i in range(60):
        message.add_attachment(f"receipt {i}".encode(), "application", "pdf", filename=f"r{i}.pdf")
    [record] = gateway.mail(message.as_bytes(policy=policy.SMTP))
    assert len(record.attachments) == 50
    assert [a.filename for a in record.attachments[:2]] == ["r0.pdf", "r1.pdf"]
    assert record.disposition == Disposition.NEEDS_REVIEW
    assert any("more than 50 attachments" in r for r in record.review_reasons)
