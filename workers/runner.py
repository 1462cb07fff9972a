"""Running workers: rq's SimpleWorker, plus a reaper for records whose job was lost.

Workers run jobs in their own process (``IntakeWorker``, rq's SimpleWorker): the forking
Worker pays a fork per job (about a fifth of the throughput here) for isolation the
pipeline does not need, since every step is idempotent and a crash is recovered from the
ledger.

The reaper covers what rq cannot see quickly: a worker killed with SIGKILL leaves its job
"started" until rq's own clean-up notices, minutes later. Each record holds a lease on
the ledger that its job renews at every step; when a lease runs out and the record's job
is not simply waiting in the queue, the reaper queues the record again.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from rq.serializers import JSONSerializer

from channels import load_all
from gateway.connection import connect
from gateway.ledger import Ledger
from gateway.logs import get_logger
from gateway.queue import IntakeQueue
from gateway.settings import Settings
from gateway.working_days import compute_deadlines
from workers.context import WorkerContext
from workers.directory import load_directory
from workers.entry import configure
from workers.messages import compile_all
from workers.triage.rules import load_rules
from workers.worker import IntakeWorker

log = get_logger("workers.runner")

MAX_REQUEUES = 8


class Reaper:
    """Requeues records whose lease expired; stops after MAX_REQUEUES and flags them."""

    def __init__(self, settings: Settings, redis_url: str) -> None:
        self.settings = settings
        connection = connect(redis_url)
        self.ledger = Ledger(connection)
        self.queue = IntakeQueue(connection, settings)
        self.stop_event = threading.Event()

    def sweep(self) -> int:
        requeued = 0
        for record_id in self.ledger.claim_expired(self.settings.job_lease_seconds):
            entry = self.ledger.load(record_id)
            if self.queue.is_waiting(record_id, entry.attempts):
                continue  # a backlog, not a loss: the lease was renewed by the claim
            attempt = self.ledger.count_attempt(record_id)
            if attempt > MAX_REQUEUES:
                self.ledger.give_up(record_id, f"requeued {MAX_REQUEUES} times without finishing")
                log.error("reaper.gave_up", record_id=record_id)
                continue
            self.queue.enqueue(record_id, attempt=attempt)
            log.warning("reaper.requeued", record_id=record_id, attempt=attempt)
            requeued += 1
        return requeued

    def run(self) -> None:
        while not self.stop_event.wait(self.settings.reaper_interval_seconds):
            try:
                self.sweep()
            except Exception as exc:  # Redis down: try again next round
                log.warning("reaper.sweep_failed", error=type(exc).__name__)

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.run, name="reaper", daemon=True)
        thread.start()
        return thread


def check_rules(settings: Settings) -> None:
    """Load every rules file and compile every message template now, so a mistake in one
    stops start-up, naming file and line, instead of failing each record that uses it."""
    load_rules(settings.rules_dir)
    load_directory(settings.rules_dir)
    compile_all(settings.templates_dir)


def warm_up(settings: Settings) -> None:
    """Load, before the first job, what the first job would otherwise load while its
    customer waits: the rules and templates, the channels' parsers and senders, and this
    year's calendar of bank holidays (rq's job function, ``workers.entry``, comes in with
    this module). Left to the first record after each start, that is about a fifth of a
    second."""
    check_rules(settings)
    load_all()
    compute_deadlines(datetime.now(UTC), settings)


def run_worker(settings: Settings, redis_url: str, burst: bool = False) -> None:
    """Work the intake queue until stopped (SIGTERM finishes the current job first)."""
    warm_up(settings)
    connection = connect(redis_url)
    ctx = WorkerContext.from_settings(settings, connection)
    configure(ctx)
    reaper = Reaper(settings, redis_url)
    if burst:
        reaper.sweep()
    else:
        reaper.start()
    worker = IntakeWorker([ctx.queue.queue], connection=connection, serializer=JSONSerializer)
    log.info("worker.started", name=worker.name, queue=settings.queue_name)
    try:
        worker.work(burst=burst, with_scheduler=False, logging_level="WARNING")
    finally:
        reaper.stop_event.set()
        log.info("worker.stopped", name=worker.name)
