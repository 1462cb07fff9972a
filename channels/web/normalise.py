"""Web form input to ``intake/v1``: the stored answers, already checked, mapped by name.

The form's answers were checked before they were stored, so this only maps them. Files
were stored before the answers, so each one named should be in the blob store; one that
is not is listed for a person rather than silently left out.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from gateway.blobstore import BlobStore
from gateway.language import detect_language
from gateway.ledger import LedgerEntry
from gateway.schema import Attachment, Customer, Disposition, IntakeRecord, Representative

_PREFERRED = {"email": "email", "phone": "phone", "post": "post"}


def normalise_web(
    raw: bytes, entry: LedgerEntry, record: IntakeRecord, blobs: BlobStore
) -> IntakeRecord:
    answers: dict[str, Any] = json.loads(raw)
    acting = answers.get("representative")
    customer = Customer(
        name=answers.get("name") or None,
        email=answers.get("email"),
        phone=answers.get("phone"),
        preferred_contact=_PREFERRED.get(answers.get("contact") or ""),  # type: ignore[arg-type]
        address=answers.get("address"),
        representative=Representative(**acting) if acting else None,
        support_needs=answers.get("support"),
    )
    attachments = [Attachment(**item) for item in answers.get("attachments") or []]
    missing = [a for a in attachments if not blobs.exists(a.sha256)]
    text = str(answers.get("details") or "")
    when = answers.get("incident_date")
    update: dict[str, Any] = {
        "customer": customer,
        "text": text,
        "language": detect_language(text),
        "attachments": attachments,
        "incident_date": date.fromisoformat(when) if when else None,
        "desired_outcome": answers.get("outcome"),
    }
    if missing:
        update["disposition"] = Disposition.NEEDS_REVIEW
        update["review_reasons"] = [
            *record.review_reasons,
            *(f"attachment {a.sha256} is missing from the blob store" for a in missing),
        ]
    return record.model_copy(update=update)
