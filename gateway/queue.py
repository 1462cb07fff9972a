"""The single place that queues pipeline jobs.

Jobs carry only a record id, never the complaint: the text stays in the ledger and the
blob store. The queue uses rq's JSON serializer, so nothing pickled crosses Redis. TTLs
are set on purpose: a finished job's result is dropped at once (the ledger is the
result), and a failed job is kept for ``failed_job_ttl_days`` for a person to inspect,
not rq's default of a year.
"""

from __future__ import annotations

import redis
from redis.typing import EncodableT
from rq import Queue, Retry
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer

from gateway.jobtemplate import JobTemplate
from gateway.logs import get_logger
from gateway.settings import Settings

log = get_logger("gateway.queue")

JOB_FUNCTION = "workers.entry.process_record"
# rq retries at once (a blip); longer outages are retried by the reaper when the record's
# lease runs out, which needs no scheduler process beside the worker.
IMMEDIATE_RETRIES = 2


def job_id(record_id: str, attempt: int = 0) -> str:
    return f"rec-{record_id}" if attempt == 0 else f"rec-{record_id}-{attempt}"


class IntakeQueue:
    """The rq queue named by ``INTAKE_QUEUE_NAME`` with the gateway's job policy."""

    def __init__(self, connection: redis.Redis, settings: Settings) -> None:
        self.queue = Queue(settings.queue_name, connection=connection, serializer=JSONSerializer)
        self.failure_ttl = settings.failed_job_ttl_days * 86400
        self._template: JobTemplate | None = None
        self._rq_only = False  # the template did not give what rq gives

    def enqueue(
        self, record_id: str, attempt: int = 0, pipeline: redis.client.Pipeline | None = None
    ) -> Job:
        return self.queue.enqueue_call(
            JOB_FUNCTION,
            args=[record_id],
            job_id=job_id(record_id, attempt),
            retry=Retry(max=IMMEDIATE_RETRIES),
            result_ttl=0,
            failure_ttl=self.failure_ttl,
            timeout=600,
            pipeline=pipeline,
        )

    def enqueue_commands(self, record_id: str) -> list[EncodableT]:
        """The Redis commands rq sends to queue the record's first job, flattened as
        ``count, command, arguments...`` for a script to run with other writes, atomically.

        rq builds them once, for a probe record, and each record's are that template with
        its id and the time put in (see :mod:`gateway.jobtemplate`), so the job is exactly
        the one ``enqueue`` would write.
        """
        if self._template is None and not self._rq_only:
            self._template = JobTemplate.build(self._rq_commands)
            if self._template is None:
                self._rq_only = True
                log.warning("queue.job_template_unusable", queue=self.queue.name)
        if self._template is None:
            return self._rq_commands(record_id)
        return self._template.fill(record_id)

    def _rq_commands(self, record_id: str) -> list[EncodableT]:
        """``enqueue_commands`` as rq builds them, into a pipeline that is never sent."""
        with self.queue.connection.pipeline(transaction=False) as pipe:
            self.enqueue(record_id, pipeline=pipe)
            flat: list[EncodableT] = []
            for command, _options in pipe.command_stack:
                flat += [len(command), *command]
            return flat

    def is_waiting(self, record_id: str, attempt: int) -> bool:
        """True while the record's latest job is still waiting in the queue.

        A job rq has moved to its intermediate list but never started was taken by a
        worker that died at that moment; it is not waiting, it is stranded.
        """
        identifier = job_id(record_id, attempt)
        connection = self.queue.connection
        try:
            job = Job.fetch(identifier, connection=connection, serializer=JSONSerializer)
        except NoSuchJobError:
            return False
        if job.get_status() not in (JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED):
            return False
        return connection.lpos(self.queue.intermediate_queue_key, identifier) is None

    def depth(self) -> int:
        return int(self.queue.count)
