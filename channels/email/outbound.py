"""Sending mail to customers: acknowledgements and redirects, by the relay or to a folder.

Every message we send says it is automatic (RFC 3834 ``Auto-Submitted: auto-replied``,
Exchange's ``X-Auto-Response-Suppress``, our own loop header) and goes with a null
envelope sender, so that autoresponders do not answer it and bounces do not come back
as new complaints. It threads onto the customer's message with In-Reply-To/References.
With no relay configured (a first run on a fresh machine) messages are written as .eml
files to the outbox folder under the data directory, where they can be read.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from datetime import UTC, datetime
from email.charset import QP, Charset
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import SMTPUTF8
from email.utils import format_datetime, formataddr

import aiosmtplib

from channels import Delivery, Notice
from channels.email.automated import LOOP_HEADER
from channels.email.policy import PLAIN_HEADERS
from channels.email.relay import Envelope, relay_connection
from gateway.errors import DeliveryError
from gateway.schema import IntakeRecord
from gateway.settings import Settings


class EmailNotifier:
    """Delivers notices by email."""

    channel = "email"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def recipient_for(self, record: IntakeRecord) -> str | None:
        """The customer's address, or their representative's when one acts for them."""
        representative = record.customer.representative
        if representative is not None and representative.email:
            return representative.email
        return record.customer.email

    def build(self, notice: Notice) -> Message:
        """The message, built with the email package's MIME classes.

        They cost a third of ``EmailMessage``'s header objects, parsed when set and
        refolded when written, for headers we write ourselves; non-ASCII names and subjects
        are still RFC 2047-encoded, or written as UTF-8 for an SMTPUTF8 recipient.
        """
        record = notice.record
        plain = _part(notice.text, "plain")
        message = (
            MIMEMultipart(
                "alternative", boundary=_boundary(), _subparts=[plain, _part(notice.html, "html")]
            )
            if notice.html
            else plain
        )
        if "MIME-Version" not in message:  # a multipart message has it already
            message["MIME-Version"] = "1.0"
        message["From"] = formataddr(
            (self.settings.organisation_name, self.settings.ack_sender), charset="utf-8"
        )
        message["To"] = notice.recipient
        message["Subject"] = notice.subject
        message["Date"] = format_datetime(datetime.now(UTC))
        message["Message-ID"] = notice.message_id
        message["Auto-Submitted"] = "auto-replied"
        message["X-Auto-Response-Suppress"] = "All"
        message[LOOP_HEADER] = self.settings.domains[0]
        message["X-Intake-Reference"] = record.reference
        if record.source.message_id:
            message["In-Reply-To"] = record.source.message_id
            chain = [*record.thread.references, record.source.message_id]
            message["References"] = " ".join(chain[-20:])
        return message

    def send(self, notice: Notice) -> Delivery:
        message = self.build(notice)
        if self.settings.smtp_relay_url:
            self._relay(message, notice.recipient)
            via = "relay"
        else:
            self._write_outbox(message, notice)
            via = "outbox"
        return Delivery(
            channel=self.channel, sent_at=datetime.now(UTC), message_id=notice.message_id, via=via
        )

    def _relay(self, message: Message, recipient: str) -> None:
        connection = relay_connection(self.settings.smtp_relay_url or "")
        try:
            # A null envelope sender: bounces of an automatic reply must not come back.
            if recipient.isascii():
                envelope = Envelope("", [recipient], message.as_bytes(policy=PLAIN_HEADERS))
            else:  # an internationalised address needs SMTPUTF8 (RFC 6531)
                data = message.as_bytes(policy=SMTPUTF8)
                envelope = Envelope("", [recipient], data, ("SMTPUTF8",))
            connection.send(envelope)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [refusal.code for refusal in exc.recipients]
            permanent = bool(codes) and all(500 <= code < 600 for code in codes)
            raise DeliveryError(
                f"relay refused the recipient {codes}", permanent=permanent
            ) from exc
        except aiosmtplib.SMTPResponseException as exc:
            raise DeliveryError(
                f"relay answered {exc.code}", permanent=500 <= exc.code < 600
            ) from exc
        except aiosmtplib.SMTPNotSupported as exc:
            raise DeliveryError(
                "the relay cannot take this address (no SMTPUTF8)", permanent=True
            ) from exc
        except UnicodeError as exc:
            raise DeliveryError(
                "the address cannot be written in this message", permanent=True
            ) from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"relay unavailable ({type(exc).__name__})") from exc

    def _write_outbox(self, message: Message, notice: Notice) -> None:
        folder = self.settings.outbox_dir
        try:
            folder.mkdir(parents=True, exist_ok=True)
            name = notice.message_id.strip("<>").replace("/", "_") + ".eml"
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
            with os.fdopen(fd, "wb") as handle:
                handle.write(message.as_bytes(policy=PLAIN_HEADERS))
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, folder / name)
        except OSError as exc:
            raise DeliveryError(f"outbox not writable ({exc.strerror})") from exc


_UTF8 = Charset("utf-8")
_UTF8.body_encoding = QP  # readable in any mail program's source view, unlike base64


def _boundary() -> str:
    """A multipart boundary that cannot occur in the parts: they are quoted-printable, which
    writes every "=" as "=3D", so no line of theirs holds "=_". Left to the generator, a
    random boundary is checked against the text with a regular expression compiled anew
    for each message."""
    return f"=_{secrets.token_hex(8)}"  # short enough that its header needs no folding


def _part(text: str, subtype: str) -> MIMEText:
    part = MIMEText(text, subtype, _UTF8)  # type: ignore[arg-type]
    del part["MIME-Version"]  # the message has one; its parts need none
    return part
