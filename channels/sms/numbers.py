"""Phone numbers as Twilio gives them, turned into E.164 and a channel.

Twilio writes WhatsApp senders as ``whatsapp:+447700900123`` and SMS senders in E.164,
except short codes and alphanumeric sender IDs, which are not numbers anyone can be
answered on. Numbers without a country code are read as UK numbers. A number that
cannot be read gives None, never a guess: a wrong number would send a reply to a
stranger.
"""

from __future__ import annotations

import hashlib

import phonenumbers

WHATSAPP_PREFIX = "whatsapp:"
DEFAULT_REGION = "GB"


def channel_of(address: str) -> str:
    """``whatsapp`` for a WhatsApp address, else ``sms``."""
    return "whatsapp" if address.strip().lower().startswith(WHATSAPP_PREFIX) else "sms"


def e164(address: str | None) -> str | None:
    """The E.164 form of a Twilio address (``whatsapp:`` or not), or None if it is none.

    A number given with its country code (as Twilio gives every long code) need only be
    possible; one without must be a valid UK number, so that a short code such as
    ``80070`` is not taken for a phone number.
    """
    text = (address or "").strip()
    if text.lower().startswith(WHATSAPP_PREFIX):
        text = text[len(WHATSAPP_PREFIX) :].strip()
    if not text or len(text) > 40:
        return None
    try:
        number = phonenumbers.parse(text, DEFAULT_REGION)
    except phonenumbers.NumberParseException:
        return None
    international = text.startswith("+") or text.startswith("00")
    if international and not phonenumbers.is_possible_number(number):
        return None
    if not international and not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def address_for(channel: str, number: str) -> str:
    """The ``To``/``From`` form Twilio expects for ``number`` on ``channel``."""
    return f"{WHATSAPP_PREFIX}{number}" if channel == "whatsapp" else number


def number_key(number: str) -> str:
    """A stable key for a number that does not show it (Redis keys, counters)."""
    return hashlib.sha256(number.encode()).hexdigest()[:32]
