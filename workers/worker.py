"""The worker class: rq's SimpleWorker, with fewer heartbeat writes per job.

rq's worker beats its heart three times for every job it takes (before and after waiting
for it, and after running it), and each beat is three writes to Redis sent one by one:
the worker's ``last_heartbeat`` and the expiry of two of its keys. With Redis's
append-only file fsynced on every write, that is nine durable writes per job that do
nothing for the record. Here a beat's writes go together, as rq already sends them when
it has a pipeline at hand: one round trip and one fsync. And a beat that would push the
worker's expiry (eight minutes ahead) on by less than a second is not sent: when jobs
are waiting, the beats before and after taking one come milliseconds after the last.
"""

from __future__ import annotations

import time
from typing import Any

from rq import SimpleWorker

# A beat that would move the worker's expiry by less than this is left out.
NEGLIGIBLE_SECONDS = 1.0


class IntakeWorker(SimpleWorker):
    """SimpleWorker (no fork per job), its heartbeats sent whole and only when they matter."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._expires_at = 0.0  # monotonic time the worker's key is known to live until

    def heartbeat(self, timeout: int | None = None, pipeline: Any = None) -> None:
        timeout = timeout or self.worker_ttl + 60  # rq's own default
        expires_at = time.monotonic() + timeout
        if pipeline is not None:
            # Sent by rq with other writes, perhaps with a shorter expiry than the last
            # beat's; until it is known to have run, count on the earlier of the two.
            super().heartbeat(timeout, pipeline=pipeline)
            self._expires_at = min(self._expires_at, expires_at)
            return
        if expires_at - self._expires_at < NEGLIGIBLE_SECONDS:
            return
        with self.connection.pipeline(transaction=False) as together:
            super().heartbeat(timeout, pipeline=together)
            together.execute()
        self._expires_at = expires_at
