"""Reading the back-office feed, the Redis Stream ``intake:cases``, as a consumer group.

Each consumer group sees every record once; within a group, each record goes to one
consumer, which acknowledges it (XACK) once handled. Entries a dead consumer took but
never acknowledged are claimed back (XAUTOCLAIM) after ``min_idle_ms``, so nothing is left
behind when a consumer crashes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import redis

from gateway.ledger import CASES_STREAM
from gateway.schema import IntakeRecord


@dataclass(frozen=True)
class FeedEntry:
    entry_id: str
    record: IntakeRecord


class FeedConsumer:
    def __init__(
        self,
        connection: redis.Redis,
        group: str,
        consumer: str,
        stream: str = CASES_STREAM,
        min_idle_ms: int = 60_000,
    ) -> None:
        self.redis = connection
        self.group = group
        self.consumer = consumer
        self.stream = stream
        self.min_idle_ms = min_idle_ms

    def ensure_group(self, start: str = "0") -> None:
        """Create the group (from the start of the stream by default) if it is new."""
        try:
            self.redis.xgroup_create(self.stream, self.group, id=start, mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def _reclaimed(self, count: int) -> list[tuple[bytes, dict[bytes, bytes]]]:
        reply = self.redis.xautoclaim(
            self.stream, self.group, self.consumer, self.min_idle_ms, start_id="0-0", count=count
        )
        return [entry for entry in reply[1] if entry and entry[1]]

    def read(self, count: int = 100, block_ms: int | None = 5000) -> list[FeedEntry]:
        """Entries abandoned by dead consumers first, then new ones."""
        entries = self._reclaimed(count)
        if not entries:
            reply = self.redis.xreadgroup(
                self.group, self.consumer, {self.stream: ">"}, count=count, block=block_ms
            )
            entries = list(reply[0][1]) if reply else []  # type: ignore[index, arg-type]
        return [
            FeedEntry(entry_id.decode(), IntakeRecord.from_json(fields[b"record"]))
            for entry_id, fields in entries
        ]

    def ack(self, entry_id: str) -> None:
        self.redis.xack(self.stream, self.group, entry_id)

    def follow(
        self, handle: Callable[[IntakeRecord], None], stop: Callable[[], bool] = lambda: False
    ) -> Iterator[str]:
        """Hand each record to ``handle`` and acknowledge it once ``handle`` returns."""
        self.ensure_group()
        while not stop():
            for entry in self.read():
                handle(entry.record)
                self.ack(entry.entry_id)
                yield entry.entry_id
