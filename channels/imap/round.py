"""One round: take in every message above the checkpoint, each exactly once.

For each message, in UID order: fetch it, ``accept`` it, move it to the processed folder,
then advance the checkpoint. A crash between any two of those steps is safe. Before the
move the message is still in the folder and is taken in again, as a repeat (its
idempotency keys); after the move it is gone from the folder, so a checkpoint left behind
finds nothing. A message is never moved before ``accept`` has returned, so nothing leaves
the mailbox that is not durably ours.

The steps run over batches of up to ``BATCH`` messages — one FETCH, then ``accept`` for
each (a few at a time), then one MOVE and one checkpoint write for the batch — since every
IMAP command and every Redis write costs a round trip and, on the server, an fsync. The
order per message, and so the crash safety, is unchanged.

``UID SEARCH UID n:*`` returns the highest message even when every UID is below ``n``
(``*`` is the highest UID, and ``n:*`` is a range either way round), so the answer is
filtered: that message was taken in long ago.

Bodies are fetched with ``BODY.PEEK[]``: reading a message leaves its ``\\Seen`` flag as
it was, and a message another client has already read is taken in like any other. A
message the server cannot hand over, or one larger than ``INTAKE_MAX_MESSAGE_BYTES``, is
moved to the unreadable folder, logged and counted, for a person to deal with.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from imapclient.exceptions import IMAPClientAbortError, IMAPClientError

from channels.imap.arrival import imap_arrival, position_key
from channels.imap.checkpoint import Checkpoint, Checkpoints
from channels.imap.move import move_messages
from channels.imap.session import Session
from gateway import ledger as keys
from gateway.intake import IntakeContext, accept
from gateway.logs import get_logger

log = get_logger("channels.imap.round")

BATCH = 20
ACCEPT_THREADS = 4
BODY = b"BODY[]"
SIZE = b"RFC822.SIZE"

# Called as observer(step, uid) after each step: "fetched", "accepted", "copied" (servers
# without MOVE), "moved", "checkpointed". Tests use it to stop a poller at a chosen step.
StepObserver = Callable[[str, int], None]


@dataclass
class Round:
    """What one round needs; ``renew`` keeps the lease and raises once it is lost."""

    session: Session
    intake: IntakeContext
    checkpoints: Checkpoints
    renew: Callable[[], None]
    observer: StepObserver | None = None
    stop: threading.Event | None = None  # checked between batches: SIGTERM waits for one only
    _pool: ThreadPoolExecutor = field(init=False, repr=False)

    def run(self) -> int:
        """Take in what is new; the number of messages newly taken in."""
        at = self._checkpoint(self.session.select())
        found = self.session.client.search(["UID", f"{at.last_uid + 1}:*"])
        uids = sorted(int(uid) for uid in found if int(uid) > at.last_uid)
        taken = 0
        # accept waits on fsync: a few at once let the disk and Redis group their syncs.
        with ThreadPoolExecutor(ACCEPT_THREADS, thread_name_prefix="imap-accept") as pool:
            self._pool = pool
            for batch in _chunks(uids, BATCH):
                if self.stop is not None and self.stop.is_set():
                    break
                self.renew()
                taken += self._batch(at, batch)
        return taken

    def _checkpoint(self, uidvalidity: int) -> Checkpoint:
        mailbox = self.session.mailbox
        at = self.checkpoints.load(mailbox.name)
        if at is not None and at.folder == mailbox.folder and at.uidvalidity == uidvalidity:
            return at
        if at is not None and at.folder == mailbox.folder:
            # The mailbox was rebuilt or restored: every UID is new. The content keys keep
            # the messages already taken in from being taken in twice.
            log.warning(
                "imap.uidvalidity_changed",
                mailbox=mailbox.name,
                previous=at.uidvalidity,
                current=uidvalidity,
            )
            self.intake.ledger.count(f"imap_uidvalidity_changes:{mailbox.name}")
        return self.checkpoints.start(mailbox.name, mailbox.folder, uidvalidity)

    def _batch(self, at: Checkpoint, uids: Sequence[int]) -> int:
        mailbox = self.session.mailbox
        client = self.session.client
        position = [keys.idempotency_key(position_key(mailbox, at.uidvalidity, u)) for u in uids]
        hits = self.intake.connection.mget(position)
        known = {u for u, hit in zip(uids, hits, strict=True) if hit}
        sizes = {u: int(d.get(SIZE, 0)) for u, d in client.fetch(uids, [SIZE]).items()}
        limit = self.intake.settings.max_message_bytes
        wanted = [u for u in uids if u in sizes and u not in known and sizes[u] <= limit]
        bodies = self._bodies(wanted)
        done: list[int] = []  # taken in (now or before a crash): to the processed folder
        aside: list[int] = []  # cannot be taken in: to the unreadable folder
        accepting: list[Future[bool]] = []
        for uid in uids:
            if uid not in sizes:
                continue  # expunged by another client since the search: nothing to take in
            if uid in known:
                done.append(uid)
            elif uid in bodies:
                self._note("fetched", uid)
                accepting.append(self._pool.submit(self._accept, at, uid, bodies[uid]))
                done.append(uid)
            else:
                aside.append(uid)
                reason = "too_large" if sizes[uid] > limit else "not_fetched"
                log.warning(
                    "imap.unreadable",
                    mailbox=mailbox.name,
                    uid=uid,
                    reason=reason,
                    size=sizes[uid],
                )
                self.intake.ledger.count(f"imap_unreadable:{mailbox.name}")
        wait(accepting)
        taken = sum(future.result() for future in accepting)  # raises the first failure
        self.renew()  # the last moment to find another poller has taken over
        self._move(done, mailbox.processed_folder)
        self._move(aside, mailbox.unreadable_folder)
        self.checkpoints.advance(mailbox.name, at, uids[-1])
        for uid in uids:
            self._note("checkpointed", uid)
        return taken

    def _accept(self, at: Checkpoint, uid: int, raw: bytes) -> bool:
        """``accept`` one message; True when it was new, not a repeat."""
        mailbox = self.session.mailbox
        self.renew()
        receipt = accept(imap_arrival(mailbox, at.uidvalidity, uid, raw), self.intake)
        self._note("accepted", uid)
        log.info(
            "imap.accepted",
            mailbox=mailbox.name,
            uid=uid,
            record_id=receipt.id,
            repeat=receipt.duplicate,
            size=len(raw),
        )
        return not receipt.duplicate

    def _note(self, step: str, uid: int) -> None:
        if self.observer is not None:
            self.observer(step, uid)

    def _move(self, uids: Sequence[int], folder: str) -> None:
        def copied() -> None:
            for uid in uids:
                self._note("copied", uid)

        move_messages(self.session, uids, folder, copied=copied)
        for uid in uids:
            self._note("moved", uid)

    def _bodies(self, uids: Sequence[int]) -> dict[int, bytes]:
        """The raw messages; one by one when the server refuses the batch, so that one
        broken message does not hold back the others."""
        if not uids:
            return {}
        try:
            return _raw(self.session.client.fetch(uids, [b"BODY.PEEK[]"]))
        except IMAPClientAbortError:
            raise
        except IMAPClientError:
            found: dict[int, bytes] = {}
            for uid in uids:
                try:
                    found.update(_raw(self.session.client.fetch([uid], [b"BODY.PEEK[]"])))
                except IMAPClientAbortError:
                    raise
                except IMAPClientError:
                    continue
            return found


def _raw(response: dict[int, dict[bytes, Any]]) -> dict[int, bytes]:
    return {
        int(uid): bytes(data[BODY]) for uid, data in response.items() if data.get(BODY) is not None
    }


def _chunks(items: Sequence[int], size: int) -> Iterator[Sequence[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
