"""Sending SMS and WhatsApp messages to customers: acknowledgements and redirects.

The pipeline writes the message; this delivers it through the official ``twilio``
client, and refuses to when it must not be sent: to a number on our suppression list,
or in answer to a STOP or START keyword (Twilio's own confirmation answers those, and
they are not complaints). A refusal is a :class:`SuppressedError` carrying the reason.
Twilio's error 21610 means the customer opted out with Twilio or the carrier: the number
goes on our list, so it is not tried again. Texts are kept to two segments. The SID
Twilio returns is noted beside the message's delivery status at once, since Twilio's
status callbacks may arrive before this call has even returned.

A notifier is built by name with the settings only, so it opens its own Redis client
(one per Redis URL, shared within the process) for the suppression list and statuses.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache

import redis
from twilio.base.exceptions import TwilioException

from channels import Delivery, Notice
from channels.sms.api import configured, twilio_client
from channels.sms.numbers import WHATSAPP_PREFIX, address_for, e164
from channels.sms.segments import fit
from channels.sms.status import DeliveryStatuses
from channels.sms.suppression import SuppressionList
from gateway.connection import connect
from gateway.errors import DeliveryError, SuppressedError
from gateway.logs import get_logger
from gateway.schema import IntakeRecord
from gateway.settings import Settings

log = get_logger("channels.sms.notify")

MAX_SEGMENTS = 2
OPTED_OUT = 21610
TEMPORARY_STATUSES = frozenset({401, 403, 408, 429})  # may succeed once fixed or later
KEYWORD_REFUSALS = {
    "opt_out": "an opt-out request (STOP), not a complaint: nothing is sent in answer, and "
    "the number gets no messages until it sends START",
    "opt_in": "a request to receive messages again (START), not a complaint: Twilio "
    "confirms it, and nothing more is sent in answer",
}


@lru_cache(maxsize=4)
def _redis(url: str) -> redis.Redis:
    return connect(url)


def redis_url(settings: Settings) -> str:
    """INTAKE_REDIS_URL, or the embedded Redis's socket under the data directory."""
    if settings.redis_url:
        return settings.redis_url
    return f"unix://{(settings.data_dir / 'redis' / 'redis.sock').resolve()}"


class SMSNotifier:
    """Delivers notices by SMS."""

    channel = "sms"

    def __init__(self, settings: Settings, connection: redis.Redis | None = None) -> None:
        self.settings = settings
        self.connection = connection or _redis(redis_url(settings))

    def recipient_for(self, record: IntakeRecord) -> str | None:
        return record.customer.phone

    def refusal(self, record: IntakeRecord, recipient: str) -> str | None:
        """Why nothing may be sent: the record is a keyword, or the number opted out."""
        keyword = record.source.extra.get("keyword")
        if keyword in KEYWORD_REFUSALS:
            return KEYWORD_REFUSALS[keyword]
        number = e164(recipient)
        suppressed = SuppressionList(self.connection).get(number) if number else None
        if suppressed is not None:
            return f"the number has opted out ({suppressed.reason})"
        return None

    def send(self, notice: Notice) -> Delivery:
        record = notice.record
        refusal = self.refusal(record, notice.recipient)  # a step may send without asking
        if refusal:
            raise SuppressedError(refusal)
        number = e164(notice.recipient)
        if number is None:
            raise DeliveryError("the recipient is not a phone number", permanent=True)
        suppressions = SuppressionList(self.connection)
        if not configured(self.settings):
            raise DeliveryError(
                "Twilio is not configured (INTAKE_TWILIO_ACCOUNT_SID, INTAKE_TWILIO_AUTH_TOKEN)",
                permanent=True,
            )
        sender = self.sender_for(record)
        if sender is None:
            raise DeliveryError("there is no number to send from", permanent=True)
        body = fit(notice.short_text or notice.text, MAX_SEGMENTS)
        callback = f"{self.settings.public_url}/twilio/status" if self.settings.public_url else None
        try:
            message = twilio_client(self.settings).messages.create(
                to=address_for(self.channel, number),
                from_=sender,
                body=body,
                **({"status_callback": callback} if callback else {}),
            )
        except TwilioException as exc:
            code = getattr(exc, "code", None)
            status = int(getattr(exc, "status", 0) or 0)
            if code == OPTED_OUT:
                suppressions.add(number, f"Twilio error {OPTED_OUT}")
                raise SuppressedError(
                    f"the number has opted out (Twilio error {OPTED_OUT})"
                ) from exc
            permanent = 400 <= status < 500 and status not in TEMPORARY_STATUSES
            raise DeliveryError(
                f"Twilio refused the message (HTTP {status}, error {code})", permanent=permanent
            ) from exc
        except OSError as exc:  # the HTTP library's connection errors and timeouts
            raise DeliveryError(f"Twilio unavailable ({type(exc).__name__})") from exc
        sid = str(message.sid)
        try:
            DeliveryStatuses(self.connection).link(
                sid, record.id, notice.purpose, self.channel, str(message.status or "")
            )
        except redis.RedisError as exc:  # the message is sent: a missing note must not resend it
            log.warning("sms.link_failed", record_id=record.id, error=type(exc).__name__)
        return Delivery(
            channel=self.channel, sent_at=datetime.now(UTC), message_id=sid, via="twilio"
        )

    def sender_for(self, record: IntakeRecord) -> str | None:
        """Our configured number, else the one the customer wrote to."""
        configured_from = self.settings.twilio_from
        if configured_from:
            return configured_from
        return record.source.recipients[0] if record.source.recipients else None


class WhatsAppNotifier(SMSNotifier):
    """Delivers notices by WhatsApp: the same API, ``whatsapp:`` addresses.

    An acknowledgement goes within minutes of the customer's message, inside WhatsApp's
    24-hour window for free-form replies; a later message would need an approved template.
    """

    channel = "whatsapp"

    def sender_for(self, record: IntakeRecord) -> str | None:
        sender = self.settings.twilio_whatsapp_from or (
            record.source.recipients[0] if record.source.recipients else None
        )
        if sender is None:
            return None
        return sender if sender.startswith(WHATSAPP_PREFIX) else WHATSAPP_PREFIX + sender
