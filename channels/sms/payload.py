"""Twilio's webhook body: an ``application/x-www-form-urlencoded`` form, read as Twilio
wrote it.

The same reading serves the signature check at the edge and the normaliser in the
worker, from the raw bytes kept in the blob store, so what was checked is what is
recorded. Parameters Twilio documents for the Messaging webhook: ``MessageSid``,
``AccountSid``, ``From``, ``To``, ``Body``, ``NumMedia``, ``MediaUrlN`` and
``MediaContentTypeN``, ``NumSegments``; WhatsApp adds ``ProfileName`` and ``WaId``;
Advanced Opt-Out adds ``OptOutType``.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl

MAX_MEDIA = 10  # Twilio's own limit per message


class Form(dict[str, list[str]]):
    """Form fields, each with all its values; ``getlist`` is what RequestValidator reads."""

    def getlist(self, name: str) -> list[str]:
        return list(self.get(name, []))

    def first(self, name: str) -> str | None:
        values = self.get(name)
        return values[0] if values else None


def parse_form(raw: bytes) -> Form:
    """Every field of the body; undecodable bytes become U+FFFD rather than an error."""
    form = Form()
    for name, value in parse_qsl(
        raw.decode("utf-8", errors="replace"),
        keep_blank_values=True,
        encoding="utf-8",
        errors="replace",
    ):
        form.setdefault(name, []).append(value)
    return form


@dataclass(frozen=True)
class MediaItem:
    index: int
    url: str
    content_type: str | None


def media_items(form: Form) -> list[MediaItem]:
    """The message's media, in Twilio's order, up to Twilio's limit of ten."""
    items = []
    for index in range(MAX_MEDIA):
        url = form.first(f"MediaUrl{index}")
        if url:
            items.append(MediaItem(index, url, form.first(f"MediaContentType{index}")))
    return items
