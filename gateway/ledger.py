"""The intake ledger: what arrived, what each pipeline step decided, what is unfinished.

Every record has one Redis hash holding how it arrived (channel, transport, raw blob,
transport facts), its customer reference, its normalised record as it stands after the
last finished step, and one marker per finished step. That is what makes the steps
idempotent: a job that runs twice skips what the first run already finished.

Unfinished records sit in a sorted set scored by a lease deadline. A job renews the
lease as it goes and removes the record when it is published; a record whose lease runs
out (its worker was killed, its job was lost) is queued again by the reaper.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import redis
from redis.typing import EncodableT, FieldT

from gateway.errors import RecordNotFoundError
from gateway.schema import IntakeRecord

PREFIX = "intake"
PENDING = f"{PREFIX}:pending"
DEAD = f"{PREFIX}:dead"
STATS = f"{PREFIX}:stats"
CASES_STREAM = f"{PREFIX}:cases"
LEASE_KEPT = 0.9  # a lease with more than this share of its time left is not renewed


def text(value: bytes | str) -> str:
    """Redis replies are bytes on our connections; the typing allows str too."""
    return value.decode() if isinstance(value, bytes) else value


def record_key(record_id: str) -> str:
    return f"{PREFIX}:rec:{record_id}"


def idempotency_key(key: str) -> str:
    return f"{PREFIX}:idem:{key}"


def reference_counter_key(year: int) -> str:
    return f"{PREFIX}:refseq:{year}"


@dataclass
class LedgerEntry:
    """How one message arrived, and how far the pipeline has got with it."""

    id: str
    reference: str
    channel: str
    transport: str
    normaliser: str
    received_at: datetime
    raw_sha256: str
    raw_size: int
    meta: dict[str, Any]
    record: IntakeRecord | None = None
    steps: set[str] = field(default_factory=set)
    stream_id: str | None = None
    attempts: int = 0

    def to_hash(self) -> dict[Any, Any]:
        return {
            "id": self.id,
            "reference": self.reference,
            "channel": self.channel,
            "transport": self.transport,
            "normaliser": self.normaliser,
            "received_at": self.received_at.isoformat(),
            "raw_sha256": self.raw_sha256,
            "raw_size": str(self.raw_size),
            "meta": json.dumps(self.meta, separators=(",", ":")),
        }


# Publish a record exactly once: the stream entry and the ledger's note of it, with the
# marks of the steps saved with it (ARGV from 3), are written by one atomic script, so a
# retried publish finds the note and adds nothing.
_PUBLISH_ONCE = """
local existing = redis.call('HGET', KEYS[1], 'stream_id')
if existing then return existing end
local id = redis.call('XADD', KEYS[2], '*', 'record', ARGV[1])
redis.call('HSET', KEYS[1], 'stream_id', id, 'record', ARGV[1], 'step:publish', '1',
  unpack(ARGV, 3))
redis.call('ZREM', KEYS[3], ARGV[2])
redis.call('HINCRBY', KEYS[4], 'published', 1)
return id
"""

# Read a record's entry and, when its lease ends sooner than ARGV[2], renew it to ARGV[3].
# A lease with most of its time left is not written again: reading changes nothing in
# Redis's append-only file, so a job that starts soon after its record was accepted waits
# for no fsync here.
_LOAD_LEASED = """
local ends = redis.call('ZSCORE', KEYS[2], ARGV[1])
if ends and tonumber(ends) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[2], 'XX', ARGV[3], ARGV[1])
end
return redis.call('HGETALL', KEYS[1])
"""

# Claim expired leases atomically so that two reapers never queue one record twice.
_CLAIM_EXPIRED = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(ids) do redis.call('ZADD', KEYS[1], ARGV[2], id) end
return ids
"""


class Ledger:
    """Reads and writes ledger entries; every method is one or two round trips."""

    def __init__(self, connection: redis.Redis) -> None:
        self.redis = connection
        self._publish = connection.register_script(_PUBLISH_ONCE)
        self._claim = connection.register_script(_CLAIM_EXPIRED)
        self._load_leased = connection.register_script(_LOAD_LEASED)

    def load(self, record_id: str, lease: int | None = None) -> LedgerEntry:
        """The entry of ``record_id``; with ``lease``, its lease renewed in the same trip to
        ``lease`` seconds from now, unless more than ``LEASE_KEPT`` of that is left."""
        if lease is None:
            raw = self.redis.hgetall(record_key(record_id))
        else:
            now = time.time()
            flat = self._load_leased(
                keys=[record_key(record_id), PENDING],
                args=[record_id, now + lease * LEASE_KEPT, now + lease],
            )
            raw = dict(zip(flat[::2], flat[1::2], strict=True))
        if not raw:
            raise RecordNotFoundError(record_id)
        data = {text(k): text(v) for k, v in raw.items()}
        record = IntakeRecord.from_json(data["record"]) if "record" in data else None
        return LedgerEntry(
            id=data["id"],
            reference=data["reference"],
            channel=data["channel"],
            transport=data["transport"],
            normaliser=data["normaliser"],
            received_at=datetime.fromisoformat(data["received_at"]),
            raw_sha256=data["raw_sha256"],
            raw_size=int(data.get("raw_size", "0")),
            meta=json.loads(data.get("meta", "{}")),
            record=record,
            steps={k.removeprefix("step:") for k in data if k.startswith("step:")},
            stream_id=data.get("stream_id"),
            attempts=int(data.get("attempts", "0")),
        )

    def reference_of(self, record_id: str) -> str | None:
        value = self.redis.hget(record_key(record_id), "reference")
        return text(value) if value else None

    def finish_steps(
        self, record_id: str, steps: Sequence[str], record: IntakeRecord, lease: int
    ) -> None:
        """Keep the record as the steps left it, mark them done, renew the lease."""
        fields: dict[FieldT, EncodableT] = {f"step:{step}": "1" for step in steps}
        fields["record"] = record.to_json()
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(record_key(record_id), mapping=fields)
            pipe.zadd(PENDING, {record_id: time.time() + lease}, xx=True)
            pipe.execute()

    def publish_once(
        self, record: IntakeRecord, steps: Sequence[str] = (), stream: str = CASES_STREAM
    ) -> str:
        """Append the record to the feed unless it is already there, marking ``steps``
        done with it; return its entry id."""
        marks = [item for step in steps for item in (f"step:{step}", "1")]
        result: bytes | str = self._publish(
            keys=[record_key(record.id), stream, PENDING, STATS],
            args=[record.to_json(), record.id, *marks],
        )
        return text(result)

    def claim_expired(self, lease: int, limit: int = 100) -> list[str]:
        now = time.time()
        ids = self._claim(keys=[PENDING], args=[now, now + lease, limit])
        return [text(i) for i in ids]

    def count_attempt(self, record_id: str) -> int:
        return int(self.redis.hincrby(record_key(record_id), "attempts", 1))

    def give_up(self, record_id: str, reason: str) -> None:
        """Stop retrying a record: it stays in the ledger and is listed for a person."""
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.zrem(PENDING, record_id)
            pipe.hset(DEAD, record_id, reason)
            pipe.hincrby(STATS, "dead", 1)
            pipe.execute()

    def count(self, name: str, amount: int = 1) -> None:
        self.redis.hincrby(STATS, name, amount)

    def stats(self) -> dict[str, int]:
        return {text(k): int(v) for k, v in self.redis.hgetall(STATS).items()}
