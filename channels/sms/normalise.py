"""A Twilio message (SMS or WhatsApp) to ``intake/v1``: runs in the worker.

The webhook stored Twilio's form as it arrived; reading it is quick, but fetching its
media is not, so both happen here rather than while Twilio waits. Nothing in the input
makes this raise: a sender that is not a phone number, an empty message or media that
could not be kept is recorded and flagged for a person with the reason. The text is kept
as the customer wrote it (emoji, right-to-left scripts, 1,600-character concatenated
messages); only control characters that no phone sends are removed.
"""

from __future__ import annotations

import re
from typing import Any

from channels.sms.keywords import Keyword, keyword_of
from channels.sms.media import MediaFetcher
from channels.sms.numbers import e164
from channels.sms.payload import Form, media_items, parse_form
from gateway.blobstore import BlobStore
from gateway.language import detect_language
from gateway.ledger import LedgerEntry
from gateway.schema import Customer, Disposition, IntakeRecord
from gateway.settings import Settings

MAX_TEXT_CHARS = 200_000
MAX_NAME_CHARS = 200
_CONTROLS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
_BIDI_AND_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
KEYWORD_NOTES = {
    Keyword.OPT_OUT: "an opt-out request (STOP), not a complaint",
    Keyword.OPT_IN: "a request to receive messages again (START), not a complaint",
}


class TwilioNormaliser:
    """Built once per job with the settings, which say how to fetch media."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def __call__(
        self, raw: bytes, entry: LedgerEntry, record: IntakeRecord, blobs: BlobStore
    ) -> IntakeRecord:
        form = parse_form(raw)
        review: list[str] = []
        sender = form.first("From") or ""
        phone = e164(sender)
        if phone is None:
            review.append(
                "the sender is not a phone number we can reply to (missing, a short code or a name)"
            )
        body = form.first("Body") or ""
        text = clean_text(body)
        items = media_items(form)
        attachments, not_kept = MediaFetcher(self.settings, blobs).fetch_all(items)
        for item in not_kept:
            review.append(
                f"media {item.index + 1} of {len(items)} was not kept: {item.reason} "
                f"(it may still be at {item.url})"
            )
        if not text.strip() and not items:
            review.append("the message has no text and no media")
        extra = _extra(form, record.source.extra)
        keyword = keyword_of(body, form.first("OptOutType"))
        if keyword is not None:
            extra["keyword"] = keyword.value
            extra["keyword_note"] = KEYWORD_NOTES[keyword]
        if not_kept:
            extra["media_not_kept"] = [
                {"index": n.index, "url": n.url, "content_type": n.content_type, "reason": n.reason}
                for n in not_kept
            ]
        to = form.first("To") or ""
        source = record.source.model_copy(
            update={
                "message_id": form.first("MessageSid"),
                "recipients": [e164(to) or _clean_line(to)] if to else [],
                "extra": extra,
            }
        )
        update: dict[str, Any] = {
            "customer": Customer(
                name=_clean_line(form.first("ProfileName") or "")[:MAX_NAME_CHARS] or None,
                phone=phone,
                preferred_contact="whatsapp" if record.channel.value == "whatsapp" else "sms",
            ),
            "source": source,
            "text": text,
            "language": detect_language(text),
            "attachments": attachments,
            "review_reasons": review,
        }
        if review:
            update["disposition"] = Disposition.NEEDS_REVIEW
        return record.model_copy(update=update)


def clean_text(body: str) -> str:
    """The message as written, with line endings made one kind and stray controls gone."""
    text = body.replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROLS.sub("", text)[:MAX_TEXT_CHARS]


def _clean_line(value: str) -> str:
    return " ".join(_BIDI_AND_CONTROLS.sub(" ", value).split())


def _extra(form: Form, existing: dict[str, Any]) -> dict[str, Any]:
    """Transport facts worth keeping; never the number again (it is in ``customer``)."""
    facts: dict[str, Any] = dict(existing)
    for name, field in (
        ("AccountSid", "account_sid"),
        ("MessagingServiceSid", "messaging_service_sid"),
        ("NumSegments", "num_segments"),
        ("NumMedia", "num_media"),
        ("MessageType", "message_type"),
    ):
        value = form.first(name)
        if value:
            facts[field] = _clean_line(value)[:100]
    return facts
