"""The pipeline, declared once, and the one loop that runs it.

Each finished step is recorded on the ledger with the record as it left it, so a job that
runs again (its worker was killed, rq retried it, the reaper requeued it) resumes after the
last finished step instead of repeating work. Steps whose second run repeats nothing
(``SAVED_WITH_NEXT``) are saved with the step after them: running one again after a crash
costs less than a durable write to the ledger on every record. Normalise and triage only
compute from the record; dedupe keeps its decision in its index and gives it back when run
again; redirect and acknowledge send their messages through the outbox, which sends each
once; publish writes the marks of the steps saved with it in its own write. ``StopPipeline``
is caught here and only here: the remaining steps are skipped except those that always
run (publish), since a record that is not answered must still reach the back office.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from gateway.ledger import LedgerEntry
from gateway.logs import get_logger
from gateway.schema import IntakeRecord, Source
from workers.context import WorkerContext
from workers.step import Step, StopPipeline
from workers.steps import acknowledge, dedupe, normalise, publish, redirect, triage

log = get_logger("workers.pipeline")

PIPELINE: tuple[str, ...] = (
    "normalise",
    "triage",
    "dedupe",
    "redirect",
    "acknowledge",
    "publish",
)

SAVED_WITH_NEXT: frozenset[str] = frozenset(
    {"normalise", "triage", "dedupe", "redirect", "acknowledge"}
)

STEPS: dict[str, Step] = {
    step.name: step
    for step in (
        normalise.Normalise(),
        triage.TriageStep(),
        dedupe.Deduplicate(),
        redirect.RedirectStep(),
        acknowledge.Acknowledge(),
        publish.Publish(),
    )
}


def skeleton(entry: LedgerEntry) -> IntakeRecord:
    """The record before normalising: what the ledger knows of how the message arrived."""
    return IntakeRecord(
        id=entry.id,
        reference=entry.reference,
        channel=entry.channel,  # type: ignore[arg-type]
        received_at=entry.received_at,
        source=Source(
            transport=entry.transport,  # type: ignore[arg-type]
            raw_sha256=entry.raw_sha256,
            raw_size=entry.raw_size,
            extra=dict(entry.meta.get("extra") or {}),  # facts only the transport knows
        ),
    )


def run_pipeline(record_id: str, ctx: WorkerContext) -> IntakeRecord:
    lease = ctx.settings.job_lease_seconds
    # Claim the lease as the job starts (written only when much of it has run out); each
    # saved step renews it in the same write.
    entry = ctx.ledger.load(record_id, lease=lease)
    record = entry.record or skeleton(entry)
    stopped: str | None = None
    unsaved: list[str] = []
    for name in PIPELINE:
        step = STEPS[name]
        if name in entry.steps or (stopped and not step.always_runs):
            continue
        started = time.perf_counter()
        try:
            if isinstance(step, publish.Publish):  # the marks go with the feed entry
                record, unsaved = step.publish(record, ctx, saved=unsaved), []
            else:
                record = step.process(record, entry, ctx)
        except StopPipeline as stop:
            record, stopped = stop.record, stop.reason
            log.info("pipeline.stopped", record_id=record_id, step=name, reason=stop.reason)
        if name != "publish":  # publish records its own completion atomically
            unsaved.append(name)
            if name not in SAVED_WITH_NEXT or stopped:
                ctx.ledger.finish_steps(record_id, unsaved, record, lease)
                unsaved = []
        log.debug(
            "pipeline.step",
            record_id=record_id,
            step=name,
            ms=round((time.perf_counter() - started) * 1000, 2),
        )
    if unsaved:  # a pipeline that ends without publish
        ctx.ledger.finish_steps(record_id, unsaved, record, lease)
    log.info(
        "pipeline.done",
        record_id=record_id,
        disposition=record.disposition.value,
        at=datetime.now(UTC).isoformat(),
    )
    return record
