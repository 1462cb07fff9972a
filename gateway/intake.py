"""``accept``: the one way any channel hands a message to the gateway.

An adapter may confirm receipt to its sender only after ``accept`` has returned: by then
the raw bytes are fsynced in the blob store, the ledger entry and the idempotency key are
written, and one job is queued, all in one Redis transaction. If storage or Redis fails,
``accept`` raises a :class:`~gateway.errors.TemporaryError` and nothing is confirmed, so
the sender retries. A repeated delivery (same idempotency key) returns the first
delivery's receipt and queues nothing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import redis
from ulid import ULID

from gateway import ledger as keys
from gateway.blobstore import BlobStore
from gateway.errors import QueueError
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
            blobs=BlobStore(settings.blob_dir),
            queue=IntakeQueue(connection, settings),
            ledger=Ledger(connection),
        )


def accept(arrival: Arrival, ctx: IntakeContext) -> Receipt:
    """Store, record and queue ``arrival``; return its receipt once all of it is durable."""
    raw_sha256 = ctx.blobs.put(arrival.raw)
    received_at = arrival.received_at or datetime.now(UTC)
    idem = keys.idempotency_key(arrival.idempotency_key)
    ttl = ctx.settings.idempotency_ttl_days * 86400
    try:
        with ctx.connection.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(idem)  # type: ignore[no-untyped-call]
                    existing = pipe.get(idem)
                    if existing is not None:
                        pipe.unwatch()
                        return _repeat_receipt(ctx, keys.text(existing))
                    record_id = str(ULID())
                    reference = _next_reference(pipe, ctx.settings.reference_prefix, received_at)
                    entry = LedgerEntry(
                        id=record_id,
                        reference=reference,
                        channel=arrival.channel,
                        transport=arrival.transport,
                        normaliser=arrival.normaliser,
                        received_at=received_at,
                        raw_sha256=raw_sha256,
                        raw_size=len(arrival.raw),
                        meta=arrival.meta,
                    )
                    pipe.multi()
                    pipe.set(idem, record_id, ex=ttl)
                    pipe.hset(keys.record_key(record_id), mapping=entry.to_hash())
                    pipe.zadd(
                        keys.PENDING, {record_id: time.time() + ctx.settings.job_lease_seconds}
                    )
                    pipe.hincrby(keys.STATS, f"accepted:{arrival.channel}", 1)
                    ctx.queue.enqueue(record_id, pipeline=pipe)
                    pipe.execute()
                    return Receipt(id=record_id, reference=reference, duplicate=False)
                except redis.WatchError:
                    continue
    except redis.RedisError as exc:
        raise QueueError(f"could not record the message: {type(exc).__name__}") from exc


def _repeat_receipt(ctx: IntakeContext, record_id: str) -> Receipt:
    ctx.ledger.count("repeated_deliveries")
    reference = ctx.ledger.reference_of(record_id) or ""
    return Receipt(id=record_id, reference=reference, duplicate=True)


def _next_reference(pipe: redis.client.Pipeline, prefix: str, when: datetime) -> str:
    """Allocate ``PREFIX-YEAR-NNNNNN``; numbers restart each year and are never reused."""
    number = int(pipe.incr(keys.reference_counter_key(when.year)))
    return f"{prefix}-{when.year}-{number:06d}"
