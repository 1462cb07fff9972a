"""Publish: append the finished record to the back-office feed, exactly once.

The stream entry, the ledger's note of it and the end of the record's lease are written by
one atomic script, so a publish that runs twice adds one entry.
"""

from __future__ import annotations

from gateway.ledger import LedgerEntry
from gateway.schema import IntakeRecord
from workers.context import WorkerContext


class Publish:
    name = "publish"
    always_runs = True

    def process(self, record: IntakeRecord, entry: LedgerEntry, ctx: WorkerContext) -> IntakeRecord:
        ctx.ledger.publish_once(record)
        return record
