"""Arrivals stored together: each still gets its own receipt or its own error, and a
sender is answered only once its own message is stored and queued."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import redis

from gateway.batching import AcceptBatcher
from gateway.connection import connect
from gateway.errors import QueueError, StorageError
from gateway.intake import Arrival, IntakeContext, Receipt, accept_many
from gateway.ledger import record_key
from gateway.settings import Settings
from tests.conftest import make_mail

QUEUE = "rq:queue:intake"


def arrival(text: str, key: str | None = None) -> Arrival:
    raw = make_mail(body=text)
    return Arrival("email", "smtp", "email", raw, key or f"email:{text}", {})


def records(connection: redis.Redis) -> int:
    return len(list(connection.scan_iter(record_key("*"))))


def block_folder_of(ctx: IntakeContext, raw: bytes) -> None:
    """Put a file where the blob's fan-out folder belongs: its write fails as a full or
    broken disk fails it, and only its own."""
    root = ctx.settings.blob_dir
    root.mkdir(parents=True, exist_ok=True)
    (root / hashlib.sha256(raw).hexdigest()[:2]).write_bytes(b"")


def test_each_arrival_of_a_batch_gets_its_own_outcome(
    intake_ctx: IntakeContext, connection: redis.Redis
) -> None:
    first, second = arrival("The lift is broken."), arrival("Bins not collected.")
    doomed = arrival("The heating is off.")
    block_folder_of(intake_ctx, doomed.raw)
    results = accept_many([first, second, first, doomed], intake_ctx)

    new_first, new_second, repeat, failed = results
    assert isinstance(new_first, Receipt) and isinstance(new_second, Receipt)
    assert not new_first.duplicate and not new_second.duplicate
    assert new_first.reference != new_second.reference
    assert isinstance(repeat, Receipt) and repeat.duplicate
    assert (repeat.id, repeat.reference) == (new_first.id, new_first.reference)
    assert isinstance(failed, StorageError)
    assert connection.lrange(QUEUE, 0, -1) == [
        f"rec-{new_first.id}".encode(),
        f"rec-{new_second.id}".encode(),
    ]
    assert records(connection) == 2


def test_with_redis_down_every_arrival_of_a_batch_is_refused(
    settings: Settings, tmp_path: Path
) -> None:
    gone = IntakeContext.from_settings(settings, connect(f"unix://{tmp_path}/no-such.sock"))
    results = accept_many([arrival("One."), arrival("Two.")], gone)
    assert [type(r) for r in results] == [QueueError, QueueError]


def test_arrivals_at_the_same_moment_are_stored_in_few_batches(
    intake_ctx: IntakeContext, connection: redis.Redis
) -> None:
    batcher = AcceptBatcher(intake_ctx)

    async def arrive() -> list[Receipt]:
        return await asyncio.gather(*(batcher.accept(arrival(f"Message {n}.")) for n in range(40)))

    receipts = asyncio.run(arrive())
    assert len({r.id for r in receipts}) == 40 and not any(r.duplicate for r in receipts)
    assert connection.llen(QUEUE) == 40 and records(connection) == 40
    assert batcher.arrivals == 40 and batcher.runs < 10


def test_one_failed_arrival_fails_only_its_own_sender(
    intake_ctx: IntakeContext, connection: redis.Redis
) -> None:
    batcher = AcceptBatcher(intake_ctx)
    doomed = arrival("The roof leaks.")
    block_folder_of(intake_ctx, doomed.raw)

    async def arrive() -> list[Receipt | BaseException]:
        calls = [batcher.accept(arrival(f"Message {n}.")) for n in range(5)]
        return await asyncio.gather(*calls, batcher.accept(doomed), return_exceptions=True)

    outcomes = asyncio.run(arrive())
    assert all(isinstance(o, Receipt) for o in outcomes[:5])
    assert isinstance(outcomes[5], StorageError)
    assert records(connection) == 5


def test_a_sender_that_gives_up_still_has_its_message_stored(
    intake_ctx: IntakeContext, connection: redis.Redis
) -> None:
    """A client that hangs up while its message is being stored: the message is kept, so
    that its resend is recognised as a repeat, and the others are answered."""
    batcher = AcceptBatcher(intake_ctx)
    impatient = arrival("I will not wait.")

    async def arrive() -> tuple[Receipt, Receipt]:
        gone = asyncio.ensure_future(batcher.accept(impatient))
        others = asyncio.gather(*(batcher.accept(arrival(f"Message {n}.")) for n in range(3)))
        await asyncio.sleep(0)
        gone.cancel()
        answered = await others
        resent = await batcher.accept(impatient)
        return answered[0], resent

    other, resent = asyncio.run(arrive())
    assert not other.duplicate
    assert resent.duplicate
    assert records(connection) == 4 and connection.llen(QUEUE) == 4


def test_a_fault_reaches_every_sender_of_its_batch_and_the_next_batch_works(
    intake_ctx: IntakeContext, connection: redis.Redis
) -> None:
    batcher = AcceptBatcher(intake_ctx, at_once=1)
    broken = Arrival("email", "smtp", "email", None, "email:broken", {})  # type: ignore[arg-type]

    async def arrive() -> list[Receipt | BaseException]:
        return await asyncio.gather(
            batcher.accept(broken), batcher.accept(arrival("Fine.")), return_exceptions=True
        )

    outcomes = asyncio.run(arrive())
    assert all(isinstance(o, TypeError) for o in outcomes)
    after = asyncio.run(batcher.accept(arrival("Later.")))
    assert not after.duplicate and records(connection) == 1
