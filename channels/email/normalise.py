"""Email to ``intake/v1``: runs in the worker as the pipeline's first step for email.

Parsing MIME is most of the cost of taking in mail, so the SMTP edge only stores the raw
message and this runs later. It must never raise for bad input: a message it cannot read
still becomes a record, flagged ``needs_review`` with the reasons, its raw bytes kept.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import parseaddr
from typing import Any

import mailparser
from inscriptis import get_text

from channels.email.automated import automated_reasons
from channels.email.identity import split_headers
from gateway.blobstore import BlobStore
from gateway.language import detect_language
from gateway.ledger import LedgerEntry
from gateway.schema import Attachment, Customer, Disposition, IntakeRecord, Thread

MAX_ATTACHMENTS = 50
MAX_TEXT_CHARS = 200_000
_MSGID = re.compile(r"<[^<>\s]+>")
_SERIOUS_DEFECTS = {
    "StartBoundaryNotFoundDefect",
    "CloseBoundaryNotFoundDefect",
    "MultipartInvariantViolationDefect",
    "NoBoundaryInMultipartDefect",
    "MissingHeaderBodySeparatorDefect",
}


def normalise_email(
    raw: bytes, entry: LedgerEntry, record: IntakeRecord, blobs: BlobStore
) -> IntakeRecord:
    """Fill ``record`` from the raw message; flag it for review where that is not possible."""
    envelope_from = entry.meta.get("envelope_from")
    head, _ = split_headers(raw)
    headers = BytesHeaderParser(policy=compat32).parsebytes(head)
    review: list[str] = []
    try:
        mail = mailparser.parse_from_bytes(raw)
    except Exception as exc:  # mail-parser raises many kinds on hostile input
        mail = None
        review.append(f"the message could not be parsed as MIME ({type(exc).__name__})")

    name, address = _sender(mail, headers)
    if not address:
        review.append("no sender address could be read")

    fields: dict[str, Any] = {
        "customer": Customer(name=name or None, email=address, preferred_contact="email"),
        "subject": _subject(mail, headers),
        "thread": _thread(headers),
    }
    if mail is not None:
        text = _text(mail)
        fields["text"] = text
        fields["attachments"] = _attachments(mail, blobs, review)
        defects = set(getattr(mail, "defects_categories", set()) or set())
        serious = sorted(defects & _SERIOUS_DEFECTS)
        if serious and not text.strip():
            review.append("the MIME structure is broken: " + ", ".join(serious))
        fields["language"] = detect_language(text)
    reasons = automated_reasons(headers, envelope_from, address)
    source = record.source.model_copy(
        update={
            "message_id": entry.meta.get("message_id"),
            "envelope_from": envelope_from,
            "recipients": entry.meta.get("recipients", []),
            "automated": bool(reasons),
            "automated_reasons": reasons,
        }
    )
    fields["source"] = source
    if review:
        fields["review_reasons"] = review
        fields["disposition"] = Disposition.NEEDS_REVIEW
    return record.model_copy(update=fields)


def _sender(mail: Any, headers: Any) -> tuple[str, str | None]:
    candidates: list[tuple[str, str]] = []
    if mail is not None:
        try:
            candidates = [(str(pair[0]), str(pair[1])) for pair in (mail.from_ or [])]
        except Exception:
            candidates = []
    if not candidates:
        candidates = [parseaddr(str(headers.get("From", "")))]
    for name, address in candidates:
        address = (address or "").strip()
        if "@" in address and " " not in address and len(address) <= 254:
            local, _, domain = address.rpartition("@")
            if local and "." in domain:
                return (name or "").strip(), f"{local}@{domain.lower()}"
    return "", None


def _subject(mail: Any, headers: Any) -> str | None:
    subject = getattr(mail, "subject", None) if mail is not None else headers.get("Subject")
    if not subject:
        return None
    return " ".join(str(subject).split())[:998]


def _thread(headers: Any) -> Thread:
    in_reply_to = _MSGID.findall(str(headers.get("In-Reply-To", "")))
    references = _MSGID.findall(str(headers.get("References", "")))
    return Thread(in_reply_to=in_reply_to[0] if in_reply_to else None, references=references[:50])


def _text(mail: Any) -> str:
    plain = [part for part in (mail.text_plain or []) if part and part.strip()]
    if plain:
        text = "\n\n".join(plain)
    else:
        html = "\n".join(mail.text_html or [])
        text = get_text(html) if html.strip() else ""
    text = text.replace("\r\n", "\n").replace("\x00", "")
    return text.strip()[:MAX_TEXT_CHARS]


def _attachments(mail: Any, blobs: BlobStore, review: list[str]) -> list[Attachment]:
    found: list[Attachment] = []
    for index, part in enumerate(mail.attachments or []):
        if index >= MAX_ATTACHMENTS:
            review.append(f"more than {MAX_ATTACHMENTS} attachments; the rest kept only in the raw")
            break
        payload = part.get("payload") or ""
        try:
            data = base64.b64decode(payload) if part.get("binary") else str(payload).encode("utf-8")
        except (binascii.Error, ValueError):
            review.append(f"attachment {index + 1} could not be decoded")
            continue
        filename = _safe_filename(part.get("filename"))
        content_type = str(part.get("mail_content_type") or "application/octet-stream").lower()
        sha256 = blobs.put(data) if data else hashlib.sha256(b"").hexdigest()
        found.append(
            Attachment(
                filename=filename, content_type=content_type[:100], size=len(data), sha256=sha256
            )
        )
    return found


def _safe_filename(name: object) -> str | None:
    """The last path element only, without control characters: shown to people, never opened."""
    if not name:
        return None
    text = str(name).replace("\\", "/").rsplit("/", 1)[-1]
    text = "".join(ch for ch in text if ch.isprintable()).strip()
    return text[:255] or None
