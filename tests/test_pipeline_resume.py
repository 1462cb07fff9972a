"""A job that fails part-way resumes: nothing is lost, nothing is done twice.

Steps that only compute from the record (normalise, triage) are saved together with the
step after them; a failure before that save makes the next attempt compute them again.
"""

from __future__ import annotations

import smtplib
from collections.abc import Callable, Iterator

import pytest
import redis

from gateway.ledger import Ledger, LedgerEntry
from gateway.schema import IntakeRecord
from tests.conftest import Relay, feed_records, make_mail
from workers.context import WorkerContext
from workers.pipeline import PIPELINE, STEPS


def send(smtp_server: tuple[str, int]) -> None:
    with smtplib.SMTP(*smtp_server, timeout=10) as client:
        client.sendmail("sam.taylor@example.net", ["hello@housing.test"], make_mail())


class FailOnce:
    """Wraps a step: its first call fails as a lost Redis connection would."""

    def __init__(self, name: str) -> None:
        self.step = STEPS[name]
        self.calls = 0

    def __getattr__(self, attribute: str) -> object:
        return getattr(self.step, attribute)

    def process(self, record: IntakeRecord, entry: LedgerEntry, ctx: WorkerContext) -> IntakeRecord:
        self.calls += 1
        if self.calls == 1:
            raise redis.ConnectionError("connection lost")
        return self.step.process(record, entry, ctx)


@pytest.fixture
def failing_dedupe(monkeypatch: pytest.MonkeyPatch) -> Iterator[FailOnce]:
    wrapper = FailOnce("dedupe")
    monkeypatch.setitem(STEPS, "dedupe", wrapper)
    yield wrapper


def test_every_step_is_marked_done_on_the_ledger(
    smtp_server: tuple[str, int], relay: Relay, connection: redis.Redis, drain: Callable[[], None]
) -> None:
    send(smtp_server)
    drain()
    [record] = feed_records(connection)
    entry = Ledger(connection).load(record.id)
    assert entry.steps == set(PIPELINE)
    assert entry.record is not None and entry.record.triage is not None
    assert entry.stream_id is not None


def test_a_failure_after_the_computed_steps_redoes_them_and_acknowledges_once(
    smtp_server: tuple[str, int],
    relay: Relay,
    connection: redis.Redis,
    drain: Callable[[], None],
    failing_dedupe: FailOnce,
) -> None:
    send(smtp_server)
    drain()
    assert failing_dedupe.calls == 2  # rq retried the job at once
    [record] = feed_records(connection)
    assert record.triage is not None and record.triage.kind == "complaint"
    assert "boiler has been broken" in record.text
    assert record.acknowledgement is not None and record.acknowledgement.status == "sent"
    relay.wait_for(1)
    assert len(relay.messages) == 1
