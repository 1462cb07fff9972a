"""The idempotency key of an email, read from its headers without parsing the MIME.

A redelivered message must be recognised, but two different messages that reuse one
Message-ID (some mailers do) must both be kept. So the key is the Message-ID *and* a hash
of what makes the message itself: the headers that identify it and the body. Trace
headers (Received, DKIM signatures) are left out, since a relay adds its own on a retry.
"""

from __future__ import annotations

import hashlib
from email.parser import BytesHeaderParser
from email.policy import compat32

_IDENTIFYING = ("message-id", "from", "to", "cc", "date", "subject", "in-reply-to")


def split_headers(raw: bytes) -> tuple[bytes, bytes]:
    """Header block and body of a raw message; the body is empty when no blank line ends it."""
    for separator in (b"\r\n\r\n", b"\n\n"):
        index = raw.find(separator)
        if index != -1:
            return raw[:index], raw[index + len(separator) :]
    return raw, b""


def email_identity(raw: bytes) -> tuple[str, str | None]:
    """``(idempotency key, Message-ID)`` of a raw message."""
    head, body = split_headers(raw)
    headers = BytesHeaderParser(policy=compat32).parsebytes(head)
    message_id = headers.get("Message-ID")
    message_id = str(message_id).strip() if message_id else None
    digest = hashlib.sha256()
    for name in _IDENTIFYING:
        for value in headers.get_all(name, []):
            digest.update(name.encode() + b":" + str(value).strip().encode("utf-8", "replace"))
            digest.update(b"\n")
    digest.update(b"\n")
    digest.update(body.replace(b"\r\n", b"\n").rstrip())  # trailing blank lines: transport noise
    return f"email:{digest.hexdigest()}", message_id
