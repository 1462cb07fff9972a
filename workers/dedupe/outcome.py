"""What the dedupe step writes on a record, from its decision and the campaign's size.

Kept apart from deciding so that a second run of the step, which finds the stored
decision instead of deciding again, writes exactly what the first run wrote.
"""

from __future__ import annotations

from gateway.schema import Campaign, Deduplication, Disposition, IntakeRecord
from workers.dedupe.decide import Decision
from workers.dedupe.index import Registered


def apply(
    record: IntakeRecord, registered: Registered, campaign_threshold: int, window_days: int
) -> IntakeRecord:
    decision = Decision.from_json(registered.decision)
    reasons = list(decision.reasons)
    update: dict[str, object] = {}
    if decision.disposition:
        update["disposition"] = Disposition(decision.disposition)
    if decision.duplicate_of:
        update["duplicate_of"] = decision.duplicate_of
    if decision.case_reference:
        update["thread"] = record.thread.model_copy(
            update={"case_reference": decision.case_reference}
        )
    if decision.campaign and registered.campaign_count >= campaign_threshold:
        update["campaign"] = Campaign(
            id=decision.campaign,
            count=registered.campaign_count,
            earlier_records=list(registered.earlier),
        )
        reasons.append(
            f"near-identical text from {registered.campaign_count} customers within "
            f"{window_days} days: campaign {decision.campaign}; each customer keeps their own case"
        )
    update["dedupe"] = Deduplication(reasons=reasons, similarity=decision.similarity)
    return record.model_copy(update=update)
