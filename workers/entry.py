"""The rq entry point: ``process_record(record_id)``.

rq calls this by name with the record id as its only argument. The worker runner
configures the context once per process; a process that was not configured (rq started
by hand) builds it from the environment on first use.
"""

from __future__ import annotations

from gateway.connection import connect
from gateway.settings import load_settings
from workers.context import WorkerContext
from workers.pipeline import run_pipeline

_context: WorkerContext | None = None


def configure(ctx: WorkerContext) -> None:
    global _context
    _context = ctx


def context() -> WorkerContext:
    global _context
    if _context is None:
        settings = load_settings()
        if not settings.redis_url:
            raise RuntimeError("INTAKE_REDIS_URL must be set for a worker started outside `intake`")
        _context = WorkerContext.from_settings(settings, connect(settings.redis_url))
    return _context


def process_record(record_id: str) -> None:
    run_pipeline(record_id, context())
