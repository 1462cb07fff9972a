"""``accept``: the one way any channel hands a message to the gateway.

An adapter may confirm receipt to its sender only after ``accept`` has returned: by then
the raw bytes are durable in the blob store, the ledger entry and the idempotency key are
written, and one job is queued, all in one Redis transaction. If storage or Redis fails,
``accept`` raises a :class:`~gateway.errors.TemporaryError` and nothing is confirmed, so
the sender retries. A repeated delivery (same idempotency key) returns the first
delivery's receipt and queues nothing.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import redis
from ulid import ULID

from gateway import ledger as keys
from gateway.blobstore import BlobStore
from gateway.errors import QueueError, StorageError, TemporaryError
from gateway.ledger import Ledger, LedgerEntry
from gateway.queue import IntakeQueue
from gateway.settings import Settings


@dataclass(frozen=True)
class Arrival:
    """What an adapter hands over: the raw input and the facts its transport knows."""

    channel: str
    transport: str
    normaliser: str
    raw: bytes
    idempotency_key: str
    meta: dict[str, Any] = field(default_factory=dict)
    received_at: datetime | None = None
    # Further keys naming the same message (IMAP: its mailbox position beside its content
    # hash); a hit on any of them is a repeat, and all are recorded with the first.
    also_known_as: tuple[str, ...] = ()


@dataclass(frozen=True)
class Receipt:
    id: str
    reference: str
    duplicate: bool


@dataclass
class IntakeContext:
    """What ``accept`` needs, built once per process from the settings."""

    settings: Settings
    connection: redis.Redis
    blobs: BlobStore
    queue: IntakeQueue
    ledger: Ledger

    @classmethod
    def from_settings(cls, settings: Settings, connection: redis.Redis) -> IntakeContext:
        return cls(
            settings=settings,
            connection=connection,
            blobs=BlobStore(settings.blob_dir, settings.blob_sync),
            queue=IntakeQueue(connection, settings),
            ledger=Ledger(connection),
        )


# Record a new arrival, atomically, unless one of its idempotency keys is known: then
# nothing is written and the known record's id comes back. Otherwise allocate the
# reference, write the ledger entry, idempotency keys, lease and count, and run the queue's
# commands for the job (as rq builds them), all in one script, which Redis runs with no
# other client in between and logs to its append-only file as one transaction: one round
# trip, one fsync.
_RECORD_ARRIVAL = """
local keys_count = tonumber(ARGV[1])
for i = 1, keys_count do
  local known = redis.call('GET', KEYS[i])
  if known then return {0, known} end
end
local number = redis.call('INCR', KEYS[keys_count + 2])
local reference = ARGV[3] .. '-' .. ARGV[4] .. '-' .. string.format('%06d', number)
local fields_end = 9 + tonumber(ARGV[8])
redis.call('HSET', KEYS[keys_count + 1], 'reference', reference, unpack(ARGV, 9, fields_end - 1))
for i = 1, keys_count do
  redis.call('SET', KEYS[i], ARGV[2], 'EX', ARGV[5])
end
redis.call('ZADD', KEYS[keys_count + 3], ARGV[6], ARGV[2])
redis.call('HINCRBY', KEYS[keys_count + 4], ARGV[7], 1)
local at = fields_end
while at <= #ARGV do
  local size = tonumber(ARGV[at])
  redis.call(unpack(ARGV, at + 1, at + size))
  at = at + size + 1
end
return {1, reference}
"""


def accept(arrival: Arrival, ctx: IntakeContext) -> Receipt:
    """Store, record and queue ``arrival``; return its receipt once all of it is durable."""
    (result,) = accept_many([arrival], ctx)
    if isinstance(result, TemporaryError):
        raise result
    return result


def accept_many(arrivals: Sequence[Arrival], ctx: IntakeContext) -> list[Receipt | TemporaryError]:
    """``accept`` for several arrivals at once, in their order: for each, its receipt, or
    the error that kept it out, which leaves the others unaffected.

    The blobs are stored together, made durable by one sync for all of them; then one
    round trip runs each arrival's script, so that Redis writes and fsyncs its append-only
    file once for all of them.
    """
    slots: list[_RecordCall | TemporaryError] = []
    stored = ctx.blobs.put_many([arrival.raw for arrival in arrivals])
    for arrival, digest in zip(arrivals, stored, strict=True):
        if isinstance(digest, StorageError):
            slots.append(digest)
            continue
        try:
            slots.append(_record_call(arrival, digest, ctx))
        except redis.RedisError as exc:  # rq asks the server's version once, when first used
            slots.append(_queue_error(exc))
    replies = iter(_run_scripts([s for s in slots if isinstance(s, _RecordCall)], ctx))
    return [s if isinstance(s, TemporaryError) else _receipt(s, next(replies), ctx) for s in slots]


@dataclass(frozen=True)
class _RecordCall:
    """One arrival's script call: its arguments, its keys, the record it would make."""

    arguments: list[Any]
    idempotency_keys: list[str]
    record_id: str


def _run_scripts(calls: list[_RecordCall], ctx: IntakeContext) -> list[Any]:
    """Each call's reply, or the Redis error in its place."""
    if not calls:
        return []
    try:
        with ctx.connection.pipeline(transaction=False) as pipe:
            for call in calls:
                # EVAL with the script's text: Redis caches it by digest, and unlike a
                # registered script it costs no SCRIPT EXISTS round trip when it is not.
                pipe.eval(_RECORD_ARRIVAL, *call.arguments)
            return list(pipe.execute(raise_on_error=False))
    except redis.RedisError as exc:
        return [exc] * len(calls)


def _record_call(arrival: Arrival, raw_sha256: str, ctx: IntakeContext) -> _RecordCall:
    received_at = arrival.received_at or datetime.now(UTC)
    idems = [keys.idempotency_key(k) for k in (arrival.idempotency_key, *arrival.also_known_as)]
    settings = ctx.settings
    record_id = str(ULID())
    fields = LedgerEntry(
        id=record_id,
        reference="",
        channel=arrival.channel,
        transport=arrival.transport,
        normaliser=arrival.normaliser,
        received_at=received_at,
        raw_sha256=raw_sha256,
        raw_size=len(arrival.raw),
        meta=arrival.meta,
    ).to_hash()
    del fields["reference"]
    record_keys = [
        *idems,
        keys.record_key(record_id),
        keys.reference_counter_key(received_at.year),
        keys.PENDING,
        keys.STATS,
    ]
    arguments = [
        len(record_keys),
        *record_keys,
        len(idems),
        record_id,
        settings.reference_prefix,
        received_at.year,
        settings.idempotency_ttl_days * 86400,
        time.time() + settings.job_lease_seconds,
        f"accepted:{arrival.channel}",
        2 * len(fields),
        *(item for pair in fields.items() for item in pair),
        *ctx.queue.enqueue_commands(record_id),
    ]
    return _RecordCall(arguments, idems, record_id)


def _receipt(call: _RecordCall, reply: Any, ctx: IntakeContext) -> Receipt | TemporaryError:
    """The receipt for a script's reply: the new record's, or the first delivery's."""
    try:
        if isinstance(reply, Exception):
            raise reply
        recorded, value = reply
        if not recorded:
            return _repeat_receipt(ctx, keys.text(value), call.idempotency_keys)
    except redis.RedisError as exc:
        return _queue_error(exc)
    return Receipt(id=call.record_id, reference=keys.text(value), duplicate=False)


def _queue_error(exc: redis.RedisError) -> QueueError:
    error = QueueError(f"could not record the message: {type(exc).__name__}")
    error.__cause__ = exc
    return error


def _repeat_receipt(ctx: IntakeContext, record_id: str, idems: list[str]) -> Receipt:
    """The first delivery's receipt; its other keys are recorded too (an IMAP message seen
    again after its mailbox was rebuilt is then known by its new position as well)."""
    ttl = ctx.settings.idempotency_ttl_days * 86400
    with ctx.connection.pipeline(transaction=False) as pipe:
        for idem in idems:
            pipe.set(idem, record_id, ex=ttl, nx=True)
        pipe.hincrby(keys.STATS, "repeated_deliveries", 1)
        pipe.hget(keys.record_key(record_id), "reference")
        reference = pipe.execute()[-1]
    return Receipt(
        id=record_id, reference=keys.text(reference) if reference else "", duplicate=True
    )
