"""A job's lease on its record: renewed as the job starts only when it is running out."""

from __future__ import annotations

import time

import redis

from gateway.intake import Arrival, IntakeContext, accept
from gateway.ledger import PENDING
from tests.conftest import make_mail

LEASE = 120


def accepted(intake_ctx: IntakeContext) -> str:
    return accept(Arrival("email", "smtp", "email", make_mail(), "email:lease", {}), intake_ctx).id


def changes(connection: redis.Redis) -> int:
    """Writes Redis has taken since its last snapshot: a read adds none."""
    return int(connection.info("persistence")["rdb_changes_since_last_save"])


def test_a_fresh_lease_is_read_not_written(
    intake_ctx: IntakeContext, connection: redis.Redis
) -> None:
    """A job that starts soon after its record was accepted writes nothing to take the
    lease, so it waits for no fsync."""
    record_id = accepted(intake_ctx)
    connection.zadd(PENDING, {record_id: time.time() + LEASE}, xx=True)  # as accept leases it
    ends = connection.zscore(PENDING, record_id)
    before = changes(connection)
    entry = intake_ctx.ledger.load(record_id, lease=LEASE)
    assert entry.id == record_id and entry.reference.startswith("CX-")
    assert connection.zscore(PENDING, record_id) == ends
    assert changes(connection) == before


def test_a_lease_running_out_is_renewed_as_the_job_starts(
    intake_ctx: IntakeContext, connection: redis.Redis
) -> None:
    record_id = accepted(intake_ctx)
    connection.zadd(PENDING, {record_id: time.time() + 1}, xx=True)  # waited long in a queue
    started = time.time()
    intake_ctx.ledger.load(record_id, lease=LEASE)
    ends = connection.zscore(PENDING, record_id)
    assert ends is not None and started + LEASE - 1 < ends < time.time() + LEASE + 1


def test_a_published_record_gets_no_lease_back(
    intake_ctx: IntakeContext, connection: redis.Redis
) -> None:
    record_id = accepted(intake_ctx)
    connection.zrem(PENDING, record_id)  # finished: publish takes it off the list
    intake_ctx.ledger.load(record_id, lease=LEASE)
    assert connection.zscore(PENDING, record_id) is None
