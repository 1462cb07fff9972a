"""A record's job is the one rq itself would write, whether rq or its template builds it."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

import redis
from redis.typing import EncodableT
from rq import Queue
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer
from ulid import ULID

from gateway.jobtemplate import PROBES, STAMP
from gateway.queue import IMMEDIATE_RETRIES, JOB_FUNCTION, IntakeQueue, job_id
from gateway.settings import Settings


def commands(flat: list[EncodableT]) -> list[list[EncodableT]]:
    """``count, command, arguments...`` back into one list per command."""
    split, at = [], 0
    while at < len(flat):
        count = int(flat[at])  # type: ignore[arg-type]
        split.append(flat[at + 1 : at + 1 + count])
        at += 1 + count
    return split


def without_time(flat: list[EncodableT]) -> list[EncodableT]:
    return ["<time>" if isinstance(v, str) and STAMP.fullmatch(v) else v for v in flat]


def test_a_records_job_is_rqs_own_with_the_time_it_was_queued(
    connection: redis.Redis, settings: Settings
) -> None:
    queue = IntakeQueue(connection, settings)
    record_id = str(ULID())
    before = datetime.now(UTC).replace(tzinfo=None)
    filled = queue.enqueue_commands(record_id)
    assert queue._template is not None  # built from rq's own, and used
    assert without_time(filled) == without_time(queue._rq_commands(record_id))
    stamps = [v for v in filled if isinstance(v, str) and STAMP.fullmatch(v)]
    assert stamps and all(
        before - timedelta(seconds=1)
        <= datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ")
        <= datetime.now(UTC).replace(tzinfo=None)
        for s in stamps
    )
    assert not any(probe in str(filled) for probe in PROBES)


def test_a_job_queued_from_the_template_is_what_a_worker_reads(
    connection: redis.Redis, settings: Settings
) -> None:
    queue = IntakeQueue(connection, settings)
    record_id = str(ULID())
    for command in commands(queue.enqueue_commands(record_id)):
        connection.execute_command(*command)
    job = Job.fetch(job_id(record_id), connection=connection, serializer=JSONSerializer)
    assert (job.func_name, job.args, job.kwargs) == (JOB_FUNCTION, [record_id], {})
    assert job.description == f"{JOB_FUNCTION}('{record_id}')"
    assert job.get_status() == JobStatus.QUEUED and job.origin == settings.queue_name
    assert (job.timeout, job.result_ttl) == (600, 0)
    assert job.failure_ttl == settings.failed_job_ttl_days * 86400
    assert job.retries_left == IMMEDIATE_RETRIES
    assert job.id in Queue(settings.queue_name, connection=connection).job_ids


class VaryingQueue(IntakeQueue):
    """A queue whose rq puts a value of its own into every job, as a later release might."""

    def _rq_commands(self, record_id: str) -> list[EncodableT]:
        return [*super()._rq_commands(record_id), 4, "HSET", f"rq:job:rec-{record_id}",
                "nonce", secrets.token_hex(8)]  # fmt: skip


def test_when_the_template_cannot_give_rqs_job_rq_builds_each_one(
    connection: redis.Redis, settings: Settings
) -> None:
    queue = VaryingQueue(connection, settings)
    record_id = str(ULID())
    first, second = queue.enqueue_commands(record_id), queue.enqueue_commands(record_id)
    assert queue._template is None
    assert first[-1] != second[-1]  # each one rq's own, with a value of its own
    assert without_time(first[:-1]) == without_time(second[:-1])
    assert without_time(first[:-5]) == without_time(
        IntakeQueue(connection, settings)._rq_commands(record_id)
    )
