"""The worker's heartbeat: what rq writes, in one round trip, and only when it matters.

rq's monitoring (``rq info``, dashboards, its clean-up of dead workers) reads the worker's
``last_heartbeat`` and the expiry of its keys, so those must be as rq's own SimpleWorker
leaves them. Round trips are counted with Redis's own count of the reads it served
(``total_reads_processed``): each is one fsync of the append-only file when it carries a
write.
"""

from __future__ import annotations

import redis
from rq import Queue, SimpleWorker, Worker
from rq.serializers import JSONSerializer

from workers.worker import IntakeWorker


def reads(connection: redis.Redis) -> int:
    """Round trips Redis has served so far, not counting the one that asks."""
    return int(connection.info("stats")["total_reads_processed"]) + 1


def beat(worker: SimpleWorker, connection: redis.Redis) -> int:
    """Round trips one heartbeat of ``worker`` took."""
    before = reads(connection)
    worker.heartbeat()
    return reads(connection) - before - 1


def new_worker(kind: type[SimpleWorker], connection: redis.Redis, name: str) -> SimpleWorker:
    queue = Queue("beats", connection=connection, serializer=JSONSerializer)
    worker = kind([queue], connection=connection, serializer=JSONSerializer, name=name)
    worker.register_birth()
    connection.sadd(worker.executions_key, "placeholder")  # so its expiry can be read
    return worker


def test_a_heartbeat_is_one_round_trip_where_rqs_own_takes_three(
    connection: redis.Redis,
) -> None:
    ours = new_worker(IntakeWorker, connection, "ours")
    theirs = new_worker(SimpleWorker, connection, "theirs")
    assert beat(theirs, connection) == 3
    assert beat(ours, connection) == 1


def test_a_beat_that_would_change_nothing_is_not_sent(connection: redis.Redis) -> None:
    ours = new_worker(IntakeWorker, connection, "ours")
    assert beat(ours, connection) == 1
    assert beat(ours, connection) == 0  # a moment later: the expiry would move by ms
    assert beat(ours, connection) == 0


def test_a_beat_after_a_shorter_one_is_sent(connection: redis.Redis) -> None:
    """While a job runs rq sets a shorter expiry (with the job's other writes); the beat
    after the job must put the long one back, or an idle worker would seem dead."""
    ours = new_worker(IntakeWorker, connection, "ours")
    ours.heartbeat()
    with connection.pipeline() as pipe:
        ours.heartbeat(90, pipeline=pipe)
        pipe.execute()
    assert 88 <= connection.ttl(ours.key) <= 90
    assert beat(ours, connection) == 1
    assert connection.ttl(ours.key) >= ours.worker_ttl + 58


def test_jobs_leave_the_worker_as_rqs_own_worker_does(connection: redis.Redis) -> None:
    """Both workers drain the same jobs; between jobs and after, rq sees the same."""
    seen = {}
    for kind, name in ((IntakeWorker, "ours"), (SimpleWorker, "theirs")):
        queue = Queue(f"jobs-{name}", connection=connection, serializer=JSONSerializer)
        for number in range(5):
            queue.enqueue_call("os.getpid", job_id=f"{name}-{number}", result_ttl=0)
        worker = kind([queue], connection=connection, serializer=JSONSerializer, name=name)
        assert worker.work(burst=True, with_scheduler=False)
        seen[name] = (
            queue.count,
            int(connection.hget(worker.key, "successful_job_count") or 0),
            connection.ttl(worker.key),  # rq sets 60 s on a worker's death
            {w.name for w in Worker.all(connection=connection)},
        )
    assert seen["ours"][:2] == seen["theirs"][:2] == (0, 5)
    assert abs(seen["ours"][2] - seen["theirs"][2]) <= 1
    assert seen["ours"][3] == seen["theirs"][3] == set()


def test_a_heartbeat_leaves_the_keys_as_rqs_own_does(connection: redis.Redis) -> None:
    ours = new_worker(IntakeWorker, connection, "ours")
    theirs = new_worker(SimpleWorker, connection, "theirs")
    for worker in (ours, theirs):
        connection.persist(worker.key)
        connection.persist(worker.executions_key)
        worker.heartbeat()
    expected_ttl = theirs.worker_ttl + 60
    for worker in (ours, theirs):
        assert expected_ttl - 2 <= connection.ttl(worker.key) <= expected_ttl
        assert expected_ttl - 2 <= connection.ttl(worker.executions_key) <= expected_ttl
    # rq's own view of the workers: what `rq info` and dashboards show.
    found = {w.name: w for w in SimpleWorker.all(connection=connection)}
    ours_seen, theirs_seen = found["ours"].last_heartbeat, found["theirs"].last_heartbeat
    assert ours_seen is not None and theirs_seen is not None
    assert ours_seen == ours.last_heartbeat.replace(tzinfo=ours_seen.tzinfo)  # type: ignore[union-attr]
    assert abs((ours_seen - theirs_seen).total_seconds()) < 5


def test_a_heartbeat_with_a_timeout_sets_that_expiry(connection: redis.Redis) -> None:
    worker = new_worker(IntakeWorker, connection, "ours")
    worker.heartbeat(timeout=90)
    assert 88 <= connection.ttl(worker.key) <= 90
