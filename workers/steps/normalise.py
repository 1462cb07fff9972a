"""Normalise: turn the stored raw input into the ``intake/v1`` record.

The channel's own normaliser does the work (found by name in the ledger entry); this step
only guarantees that nothing is lost when it fails: the record is kept, flagged for a
person with the reason, and goes on through the pipeline.
"""

from __future__ import annotations

from channels import normaliser_for
from gateway.errors import TemporaryError
from gateway.ledger import LedgerEntry
from gateway.logs import get_logger
from gateway.schema import Disposition, IntakeRecord
from workers.context import WorkerContext

log = get_logger("workers.steps.normalise")


class Normalise:
    name = "normalise"
    always_runs = False

    def process(self, record: IntakeRecord, entry: LedgerEntry, ctx: WorkerContext) -> IntakeRecord:
        raw = ctx.blobs.get(entry.raw_sha256)
        try:
            normaliser = normaliser_for(entry.normaliser, ctx.settings)
            return normaliser(raw, entry, record, ctx.blobs)
        except TemporaryError:
            raise  # storage or Redis trouble: retry the job, do not flag the message
        except Exception as exc:
            log.warning("normalise.failed", record_id=record.id, error=type(exc).__name__)
            return record.model_copy(
                update={
                    "disposition": Disposition.NEEDS_REVIEW,
                    "review_reasons": [
                        *record.review_reasons,
                        f"the input could not be read ({type(exc).__name__}); the raw is kept",
                    ],
                }
            )
