"""Group commit at the edge: arrivals that come in together are stored together.

A listener serving many clients at once hands each message to ``AcceptBatcher.accept``
and awaits its receipt as it would await ``accept`` in a thread. While earlier messages
are being stored, new ones wait and then go in one batch (``accept_many``): one thread
hand-off and one Redis round trip, with one fsync of Redis's append-only file, for all of
them, instead of one each. A message that arrives when nothing is waiting is stored at
once, so a quiet listener answers as fast as before. Every sender is still told
"received" only once its own message is stored and queued.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from gateway.intake import Arrival, IntakeContext, Receipt, accept_many

MOST_PER_BATCH = 32
BATCHES_AT_ONCE = 4  # so that one batch's syncs do not hold up the next


class AcceptBatcher:
    """Batches ``accept`` for the coroutines of one event loop, in threads of its own, one
    per batch at once."""

    def __init__(
        self, ctx: IntakeContext, most: int = MOST_PER_BATCH, at_once: int = BATCHES_AT_ONCE
    ) -> None:
        self.ctx = ctx
        self.executor = ThreadPoolExecutor(at_once, thread_name_prefix="accept")
        self.most = most
        self.at_once = at_once
        self.waiting: list[tuple[Arrival, asyncio.Future[Receipt]]] = []
        self.running = 0  # tasks storing batches; each ends as soon as nothing waits
        self.tasks: set[asyncio.Task[None]] = set()  # kept, so none is collected while running
        self.runs = 0  # batches run, and the arrivals in them: what the grouping saves
        self.arrivals = 0

    async def accept(self, arrival: Arrival) -> Receipt:
        """Store, record and queue ``arrival``, as ``accept`` does.

        Should the caller be cancelled (its client hung up), the message is stored all the
        same, so that a resend is recognised as a repeat.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Receipt] = loop.create_future()
        self.waiting.append((arrival, future))
        if self.running < self.at_once:
            self.running += 1
            task = loop.create_task(self._run_batches())
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        return await future

    def shutdown(self) -> None:
        """Let the batches being stored finish, then stop the threads."""
        self.executor.shutdown(wait=True)

    async def _run_batches(self) -> None:
        """Store what waits, batch after batch, until nothing does. The count of running
        tasks drops in the same step as the last look at the waiting list, so an arrival
        never finds every task busy just as the last of them is leaving."""
        try:
            await self._store_waiting()
        finally:
            self.running -= 1

    async def _store_waiting(self) -> None:
        loop = asyncio.get_running_loop()
        while self.waiting:
            batch, self.waiting = self.waiting[: self.most], self.waiting[self.most :]
            arrivals = [arrival for arrival, _ in batch]
            self.runs, self.arrivals = self.runs + 1, self.arrivals + len(batch)
            results: Sequence[Receipt | Exception]
            try:
                results = await loop.run_in_executor(self.executor, accept_many, arrivals, self.ctx)
            except Exception as exc:  # a fault, not a refusal: each sender hears of it
                results = [exc] * len(batch)
            for (_, future), result in zip(batch, results, strict=True):
                if future.done():  # its caller was cancelled
                    continue
                if isinstance(result, Exception):
                    future.set_exception(result)
                else:
                    future.set_result(result)
