"""JSON API input to ``intake/v1``: the stored body, read back through the request model.

The body was checked at the edge before it was stored, so this only maps names; the
checks that depend on the clock are skipped (``STORED``), since a backlog must not turn
a request that was valid when it arrived into one that is not.
"""

from __future__ import annotations

import json

from channels.api.models import STORED, IntakeRequest
from gateway.blobstore import BlobStore
from gateway.language import detect_language
from gateway.ledger import LedgerEntry
from gateway.schema import Customer, IntakeRecord, Representative, SocialPost


def normalise_api(
    raw: bytes, entry: LedgerEntry, record: IntakeRecord, blobs: BlobStore
) -> IntakeRecord:
    body = IntakeRequest.model_validate(json.loads(raw), context=STORED)
    given = body.customer
    representative = None
    if given.representative is not None:
        acting = given.representative
        representative = Representative(
            name=acting.name,
            relationship=acting.relationship or None,
            email=acting.email,
            phone=acting.phone,
        )
    customer = Customer(
        name=given.name or None,
        email=given.email,
        phone=given.phone,
        handle=given.handle or None,
        preferred_contact=given.preferred_contact,
        address=given.address or None,
        representative=representative,
        support_needs=given.support_needs or None,
    )
    social = None
    if body.social is not None:
        social = SocialPost(
            platform=body.social.platform,
            post_url=str(body.social.post_url),
            posted_at=body.social.posted_at,
        )
    return record.model_copy(
        update={
            "customer": customer,
            "subject": body.subject or None,
            "text": body.text,
            "language": detect_language(body.text),
            "incident_date": body.incident_date,
            "desired_outcome": body.desired_outcome or None,
            "social": social,
        }
    )
