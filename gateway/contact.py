"""Contact details typed by people, checked and put in the one form the record holds.

Customers and staff write phone numbers as they say them (``07700 900123``,
``+44 (0)7700 900123``); the record holds E.164 so that the back office and deduplication
compare like with like. A number without a country code is read as a UK number. A number
is accepted when it has a possible length for its country: refusing a complaint over a
number range the metadata does not know yet would be worse than keeping it.

Email addresses are checked for shape only (one ``@``, a dotted domain, nothing that could
smuggle a second address); whether the mailbox exists only a delivery can tell.
"""

from __future__ import annotations

import re

import phonenumbers

DEFAULT_REGION = "GB"
MAX_PHONE_CHARS = 40
MAX_EMAIL_CHARS = 254
_LOCAL_PART = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


def phone_e164(text: str, region: str = DEFAULT_REGION) -> str:
    """``text`` as an E.164 number; ValueError when it cannot be one."""
    text = text.strip()
    if not text or len(text) > MAX_PHONE_CHARS:
        raise ValueError("not a phone number")
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        raise ValueError("not a phone number") from None
    if not phonenumbers.is_possible_number(number):
        raise ValueError("not a phone number: wrong number of digits")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def email_address(text: str) -> str:
    """``text`` as ``local@domain`` with the domain in lower case; ValueError if malformed."""
    address = text.strip()
    local, at, domain = address.rpartition("@")
    if not at or len(address) > MAX_EMAIL_CHARS or len(local) > 64:
        raise ValueError("not an email address")
    if not _LOCAL_PART.match(local):
        raise ValueError("not an email address")
    try:
        ascii_domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        raise ValueError("not an email address") from None
    labels = ascii_domain.split(".")
    if len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        raise ValueError("not an email address")
    if labels[-1].isdigit():
        raise ValueError("not an email address")
    return f"{local}@{domain.lower()}"
