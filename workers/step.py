"""The contract of a pipeline step, and the one signal that ends a pipeline early."""

from __future__ import annotations

from typing import Protocol

from gateway.ledger import LedgerEntry
from gateway.schema import IntakeRecord
from workers.context import WorkerContext


class Step(Protocol):
    """A named step; ``process`` returns the record as the step leaves it.

    A step must be safe to run again on the same record (a job may run twice), and it
    knows nothing of transports: it reaches a channel only through the registries in
    ``channels``.
    """

    name: str
    always_runs: bool

    def process(
        self, record: IntakeRecord, entry: LedgerEntry, ctx: WorkerContext
    ) -> IntakeRecord: ...


class StopPipeline(Exception):
    """Raised by a step to skip the remaining steps except those that always run."""

    def __init__(self, record: IntakeRecord, reason: str) -> None:
        super().__init__(reason)
        self.record = record
        self.reason = reason
