"""Nothing lost, nothing doubled: repeats, reused Message-IDs, dropped connections and
workers killed in the middle of a job."""

from __future__ import annotations

import asyncio
import os
import signal
import smtplib
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from aiosmtpd.controller import Controller
from rq.job import Job
from rq.serializers import JSONSerializer

from gateway.intake import Arrival, IntakeContext, accept
from gateway.queue import JOB_FUNCTION, job_id
from gateway.settings import Settings
from tests.conftest import Relay, feed_records, free_port, make_mail


def deliver(server: tuple[str, int], raw: bytes) -> None:
    with smtplib.SMTP(*server, timeout=10) as client:
        client.sendmail("sam.taylor@example.net", ["hello@housing.test"], raw)


def test_the_same_message_twice_gives_one_record_and_one_acknowledgement(
    smtp_server: tuple[str, int],
    relay: Relay,
    connection: redis.Redis,
    drain: Callable[[], None],
) -> None:
    raw = make_mail()
    deliver(smtp_server, raw)
    deliver(smtp_server, raw)
    drain()
    deliver(smtp_server, raw)  # a late redelivery, after processing
    drain()
    assert len(feed_records(connection)) == 1
    time.sleep(0.3)
    assert len(relay.messages) == 1


def test_two_messages_sharing_a_message_id_are_both_kept(
    smtp_server: tuple[str, int],
    relay: Relay,
    connection: redis.Redis,
    drain: Callable[[], None],
) -> None:
    deliver(smtp_server, make_mail(body="The lift is broken again.", message_id="<same@x>"))
    deliver(smtp_server, make_mail(body="Bins not collected for 3 weeks.", message_id="<same@x>"))
    drain()
    records = feed_records(connection)
    assert len(records) == 2
    assert {r.text for r in records} == {
        "The lift is broken again.",
        "Bins not collected for 3 weeks.",
    }
    assert len({r.reference for r in records}) == 2
    assert len(relay.wait_for(2)) == 2


def test_messages_without_message_id_are_each_kept(
    smtp_server: tuple[str, int], connection: redis.Redis, drain: Callable[[], None]
) -> None:
    deliver(smtp_server, make_mail(body="First message.", message_id=None))
    deliver(smtp_server, make_mail(body="Second message.", message_id=None))
    drain()
    assert len(feed_records(connection)) == 2


def test_client_that_hangs_up_after_the_final_dot_and_resends_gets_one_record(
    smtp_server: tuple[str, int],
    relay: Relay,
    connection: redis.Redis,
    drain: Callable[[], None],
) -> None:
    raw = make_mail(body="Hung up before the reply.")
    with socket.create_connection(smtp_server, timeout=10) as sock:
        reader = sock.makefile("rb")
        assert reader.readline().startswith(b"220")
        for command in (
            b"EHLO client.example.net",
            b"MAIL FROM:<sam.taylor@example.net>",
            b"RCPT TO:<hello@housing.test>",
            b"DATA",
        ):
            sock.sendall(command + b"\r\n")
            line = reader.readline()
            while line[3:4] == b"-":
                line = reader.readline()
        sock.sendall(raw + b".\r\n")
        sock.shutdown(socket.SHUT_RDWR)  # gone before the 250 arrives
    time.sleep(0.5)
    deliver(smtp_server, raw)  # the sender did not see a 250, so it tries again
    drain()
    assert len(feed_records(connection)) == 1
    assert len(relay.wait_for(1)) == 1


def test_concurrent_deliveries_of_one_message_give_one_record(
    intake_ctx: IntakeContext, connection: redis.Redis, drain: Callable[[], None]
) -> None:
    arrival = Arrival("email", "smtp", "email", make_mail(), "email:concurrent", {})
    receipts = []
    threads = [
        threading.Thread(target=lambda: receipts.append(accept(arrival, intake_ctx)))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({r.id for r in receipts}) == 1
    assert sum(not r.duplicate for r in receipts) == 1
    assert connection.llen("rq:queue:intake") == 1


def test_the_job_accept_queues_is_the_job_rq_would_queue(
    intake_ctx: IntakeContext, connection: redis.Redis
) -> None:
    """``accept`` runs rq's own enqueue commands inside its script: the job it leaves is
    field for field the one rq's ``enqueue`` writes, and rq reads it back as ours."""
    receipt = accept(Arrival("email", "smtp", "email", make_mail(), "email:one", {}), intake_ctx)
    ours = connection.hgetall(f"rq:job:{job_id(receipt.id)}")
    assert connection.smembers("rq:queues") == {b"rq:queue:intake"}
    intake_ctx.queue.enqueue("01RQSOWNENQUEUE000000000000")
    theirs = connection.hgetall(f"rq:job:{job_id('01RQSOWNENQUEUE000000000000')}")
    differ = {b"created_at", b"enqueued_at", b"data", b"description"}
    assert set(ours) == set(theirs)
    assert {k: v for k, v in ours.items() if k not in differ} == {
        k: v for k, v in theirs.items() if k not in differ
    }
    job = Job.fetch(job_id(receipt.id), connection=connection, serializer=JSONSerializer)
    assert (job.func_name, job.args, job.get_status()) == (JOB_FUNCTION, [receipt.id], "queued")
    assert connection.lrange("rq:queue:intake", 0, -1) == [
        job_id(receipt.id).encode(),
        job_id("01RQSOWNENQUEUE000000000000").encode(),
    ]


def test_a_repeat_writes_no_job_and_no_second_reference(
    intake_ctx: IntakeContext, connection: redis.Redis
) -> None:
    arrival = Arrival("email", "smtp", "email", make_mail(), "email:twice", {})
    first, second = accept(arrival, intake_ctx), accept(arrival, intake_ctx)
    assert (second.id, second.reference, second.duplicate) == (first.id, first.reference, True)
    assert connection.llen("rq:queue:intake") == 1
    assert connection.get(f"intake:refseq:{time.gmtime().tm_year}") == b"1"
    assert len(list(connection.scan_iter("rq:job:*"))) == 1


class SlowRelayHandler:
    """Holds each message until released, so a worker can be killed in the middle of a send."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = asyncio.Event()
        self.delivered: list[bytes] = []
        self.hold = True

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.entered.set()
        while self.hold:
            await asyncio.sleep(0.05)
        self.delivered.append(envelope.content)
        return "250 OK"


@pytest.fixture
def slow_relay() -> Iterator[tuple[SlowRelayHandler, str]]:
    handler = SlowRelayHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield handler, f"smtp://127.0.0.1:{port}"
    handler.hold = False
    controller.stop()


def worker_process(settings: Settings, relay_url: str) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env.update(
        INTAKE_REDIS_URL=settings.redis_url or "",
        INTAKE_DATA_DIR=str(settings.data_dir),
        INTAKE_DOMAINS=",".join(settings.domains),
        INTAKE_SMTP_RELAY_URL=relay_url,
        INTAKE_JOB_LEASE_SECONDS="2",
        INTAKE_REAPER_INTERVAL_SECONDS="0.2",
        INTAKE_OUTBOX_CLAIM_SECONDS="2",
    )
    return subprocess.Popen([sys.executable, "-m", "gateway.cli", "worker"], env=env)


def wait_until(condition: Callable[[], bool], timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_worker_killed_while_sending_yields_one_record_and_one_acknowledgement(
    smtp_server: tuple[str, int],
    settings: Settings,
    connection: redis.Redis,
    slow_relay: tuple[SlowRelayHandler, str],
) -> None:
    handler, relay_url = slow_relay
    deliver(smtp_server, make_mail(body="Killed mid-send."))
    first = worker_process(settings, relay_url)
    try:
        assert handler.entered.wait(20), "the worker never reached the relay"
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
    time.sleep(0.3)
    assert handler.delivered == []  # the relay never confirmed: nothing was delivered
    assert feed_records(connection) == []
    handler.hold = False
    second = worker_process(settings, relay_url)
    try:
        assert wait_until(lambda: len(feed_records(connection)) >= 1)
        time.sleep(1.0)  # give a doubled job every chance to show itself
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(20)
    records = feed_records(connection)
    assert len(records) == 1
    assert records[0].acknowledgement is not None
    assert records[0].acknowledgement.status == "sent"
    assert len(handler.delivered) == 1


def test_worker_killed_after_sending_does_not_send_again(
    smtp_server: tuple[str, int],
    settings: Settings,
    connection: redis.Redis,
    relay: Relay,
) -> None:
    deliver(smtp_server, make_mail(body="Killed after the send."))
    first = worker_process(settings, relay.url)
    try:
        # Kill it as soon as the outbox has noted the send, before it can publish.
        assert wait_until(
            lambda: any(
                connection.hget(key, "status") == b"sent"
                for key in connection.scan_iter("intake:outbox:*")
            ),
            timeout=20,
        )
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
    second = worker_process(settings, relay.url)
    try:
        assert wait_until(lambda: len(feed_records(connection)) >= 1)
        time.sleep(2.5)  # past the lease: a requeue, if any, has run
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(20)
    assert len(feed_records(connection)) == 1
    assert len(relay.messages) == 1


def test_sigterm_lets_the_worker_finish_its_job(
    smtp_server: tuple[str, int],
    settings: Settings,
    connection: redis.Redis,
    slow_relay: tuple[SlowRelayHandler, str],
) -> None:
    handler, relay_url = slow_relay
    deliver(smtp_server, make_mail(body="Finish me."))
    worker = worker_process(settings, relay_url)
    try:
        assert handler.entered.wait(20)
        worker.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        handler.hold = False
        assert worker.wait(20) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
    assert len(feed_records(connection)) == 1
    assert len(handler.delivered) == 1


def test_a_record_whose_job_was_lost_is_queued_again_by_the_reaper(
    intake_ctx: IntakeContext, connection: redis.Redis, drain: Callable[[], None]
) -> None:
    arrival = Arrival("email", "smtp", "email", make_mail(), "email:lost-job", {})
    first = accept(arrival, intake_ctx)
    connection.delete(f"rq:job:rec-{first.id}", "rq:queue:intake")  # the job is gone
    again = accept(arrival, intake_ctx)
    assert again.duplicate and again.id == first.id and again.reference == first.reference
    drain()
    assert feed_records(connection) == []  # the lease has not run out yet
    time.sleep(intake_ctx.settings.job_lease_seconds + 0.5)
    drain()  # a worker's reaper finds the lease expired and no job waiting
    assert [r.id for r in feed_records(connection)] == [first.id]
