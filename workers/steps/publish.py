"""Publish: append the finished record to the back-office feed, exactly once.

The stream entry, the ledger's note of it, the marks of the steps saved with it and the end
of the record's lease are written by one atomic script, so a publish that runs twice adds
one entry.
"""

from __future__ import annotations

from collections.abc import Sequence

from gateway.ledger import LedgerEntry
from gateway.schema import IntakeRecord
from workers.context import WorkerContext


class Publish:
    name = "publish"
    always_runs = True

    def process(self, record: IntakeRecord, entry: LedgerEntry, ctx: WorkerContext) -> IntakeRecord:
        return self.publish(record, ctx)

    def publish(
        self, record: IntakeRecord, ctx: WorkerContext, saved: Sequence[str] = ()
    ) -> IntakeRecord:
        """Publish, marking done in the same write the steps whose results were saved with
        this one (``saved``): the record the feed gets is the record they left."""
        ctx.ledger.publish_once(record, saved)
        return record
