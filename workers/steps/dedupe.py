"""Dedupe: recognise follow-ups to existing cases, repeats and campaigns.

A message that answers our acknowledgement or quotes a reference of the same customer is
a follow-up (``thread.case_reference``); the same customer sending the same or nearly the
same text again within the window is a duplicate (``duplicate_of``); the same text from
many customers is a campaign, each customer keeping their own case. Nothing is dropped:
a follow-up or a duplicate is published like any record, linked, and the acknowledge step
does not answer it as a new case. Every decision carries its reasons (``dedupe``).

The step is idempotent: its decision is stored with the record's index entry in one
atomic write, and a second run returns that decision instead of deciding again, so a
retried job neither counts a customer twice in a campaign nor finds itself as a repeat.
"""

from __future__ import annotations

from gateway.ledger import LedgerEntry
from gateway.logs import get_logger
from gateway.schema import IntakeRecord, Kind
from workers.context import WorkerContext
from workers.dedupe import followup, outcome
from workers.dedupe.customers import customer_keys, load_directory
from workers.dedupe.decide import Subject, decide
from workers.dedupe.index import DedupeIndex, Entry, Registered
from workers.dedupe.references import pointers
from workers.dedupe.signature import signature_of

log = get_logger("workers.steps.dedupe")

DAY = 86400
_MACHINE_KINDS = {Kind.SPAM, Kind.AUTO_REPLY}


class Deduplicate:
    name = "dedupe"
    always_runs = False

    def process(self, record: IntakeRecord, entry: LedgerEntry, ctx: WorkerContext) -> IntakeRecord:
        settings = ctx.settings
        window = settings.duplicate_window_days * DAY
        index = DedupeIndex(ctx.connection, window, settings.follow_up_days * DAY)
        subject = Subject(
            record=record,
            signature=signature_of(record.subject, record.text),
            customers=customer_keys(load_directory(settings).identities(record.customer)),
            by_person=by_person(record),
        )
        received = record.received_at.timestamp()
        follow_up = followup.resolve(
            pointers(record, settings.reference_prefix, settings.domains), subject.customers, index
        )

        def decided(candidates: list[Entry]) -> tuple[Entry, str]:
            decision = decide(
                subject,
                candidates,
                follow_up,
                settings.duplicate_similarity,
                settings.duplicate_window_days,
            )
            return subject.entry(decision), decision.to_json()

        # Decided as if no earlier message were similar: the index keeps that decision at
        # once unless a candidate is similar enough to change it.
        found = index.settle(
            *decided([]),
            settings.campaign_min_customers,
            received - window,
            settings.duplicate_similarity,
        )
        if isinstance(found, Registered):
            registered = found
        else:
            registered = index.register(*decided(found), settings.campaign_min_customers)
        result = outcome.apply(
            record, registered, settings.campaign_min_customers, settings.duplicate_window_days
        )
        log.info(
            "dedupe.decided",
            record_id=record.id,
            disposition=result.disposition.value,
            duplicate_of=result.duplicate_of,
            case_reference=result.thread.case_reference,
            campaign=result.campaign.id if result.campaign else None,
            campaign_count=result.campaign.count if result.campaign else None,
        )
        return result


def by_person(record: IntakeRecord) -> bool:
    """False for what a machine sent: automated mail, and what triage found to be an
    auto-reply or spam."""
    if record.source.automated:
        return False
    return record.triage is None or record.triage.kind not in _MACHINE_KINDS
