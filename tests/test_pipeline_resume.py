"""A job that fails part-way resumes: nothing is lost, nothing is done twice.

Steps whose second run repeats nothing (normalise and triage compute; dedupe gives back
its stored decision; redirect's and acknowledge's messages go through the outbox) are
saved together with the step after them, the last of them with publish's feed entry; a
failure before that save makes the next attempt run them again.
"""

from __future__ import annotations

import smtplib
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
import redis

from gateway.ledger import Ledger, LedgerEntry
from gateway.schema import IntakeRecord
from gateway.settings import Settings
from gateway.working_days import compute_deadlines, uk_date
from tests.conftest import Relay, feed_records, make_mail
from workers.context import WorkerContext
from workers.dedupe.index import campaign_key
from workers.outbox import Outbox
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


def test_a_failure_at_acknowledge_redoes_dedupe_and_redirect_without_repeating_them(
    smtp_server: tuple[str, int],
    relay: Relay,
    connection: redis.Redis,
    drain: Callable[[], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two customers send one letter; the second's job fails at acknowledge after its
    dedupe and redirect ran: it is counted once in the campaign, and the customer gets one
    redirect notice."""
    failing = FailOnce("acknowledge")
    letter = "My council tax bill has gone up again and I think it is wrong. Who checks it?"
    for number, sender in enumerate(["sam.taylor@example.net", "alex.jones@example.net"]):
        if number == 1:
            monkeypatch.setitem(STEPS, "acknowledge", failing)
        with smtplib.SMTP(*smtp_server, timeout=10) as client:
            mail = make_mail(letter, "Council tax", sender, message_id=f"<m{number}@example.net>")
            client.sendmail(sender, ["hello@housing.test"], mail)
        drain()
    assert failing.calls == 2
    first, second = feed_records(connection)
    assert second.disposition == "redirected" and second.duplicate_of is None
    assert second.redirect is not None and second.redirect.notice is not None
    assert second.redirect.notice.status == "sent"
    assert connection.hget(campaign_key(first.id), "n") == b"2"  # counted once, not twice
    messages = relay.wait_for(2)
    assert sorted(m["To"] for m in messages) == sorted(
        ["alex.jones@example.net", "sam.taylor@example.net"]
    )
    assert Ledger(connection).load(second.id).steps == set(PIPELINE)


class FailPublishOnce(FailOnce):
    """Publish fails at its first call, after ``before_failing`` has run."""

    def __init__(self, before_failing: Callable[[IntakeRecord], None]) -> None:
        super().__init__("publish")
        self.before_failing = before_failing

    def process(self, record: IntakeRecord, entry: LedgerEntry, ctx: WorkerContext) -> IntakeRecord:
        if self.calls == 0:
            self.before_failing(record)
        return super().process(record, entry, ctx)


def test_a_failure_at_publish_redoes_the_steps_before_it_and_sends_nothing_twice(
    smtp_server: tuple[str, int],
    relay: Relay,
    connection: redis.Redis,
    settings: Settings,
    drain: Callable[[], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The job dies between the acknowledgement and the feed entry, and runs again a week
    later: the customer gets one acknowledgement, the feed one entry with every step marked,
    and the dates on the record are those the acknowledgement quoted when it was sent."""
    week_ago = time.time() - 7 * 86400

    def sent_a_week_ago(record: IntakeRecord) -> None:
        connection.hset(Outbox.key(record.id, "acknowledgement"), "sent_at", week_ago)

    failing = FailPublishOnce(sent_a_week_ago)
    monkeypatch.setitem(STEPS, "publish", failing)
    send(smtp_server)
    drain()
    assert failing.calls == 2
    [record] = feed_records(connection)
    assert Ledger(connection).load(record.id).steps == set(PIPELINE)
    assert record.acknowledgement is not None and record.acknowledgement.status == "sent"
    sent_on = uk_date(datetime.fromtimestamp(week_ago, UTC))
    quoted = compute_deadlines(record.received_at, settings, acknowledged_on=sent_on)
    today = compute_deadlines(
        record.received_at, settings, acknowledged_on=uk_date(datetime.now(UTC))
    )
    assert record.deadlines is not None and record.deadlines.respond_by == quoted.respond_by
    assert quoted.respond_by != today.respond_by
    relay.wait_for(1)
    time.sleep(0.3)
    assert len(relay.messages) == 1
