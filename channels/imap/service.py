"""``intake imap``: one poller thread per configured mailbox, until SIGTERM.

Threads, not processes: a poller spends its life waiting on a socket, and a mailbox
whose server misbehaves is contained by its poller's own error handling. On SIGTERM each
poller finishes the batch in hand (accept, move, checkpoint), leaves IDLE, logs out and
lets go of its lease.
"""

from __future__ import annotations

import threading

import redis

from channels.imap.poller import MailboxPoller
from gateway.intake import IntakeContext
from gateway.logs import get_logger
from gateway.settings import Settings

log = get_logger("channels.imap.service")


class IMAPService:
    def __init__(self, settings: Settings, connection: redis.Redis) -> None:
        self.stop_event = threading.Event()
        intake = IntakeContext.from_settings(settings, connection)
        self.pollers = [
            MailboxPoller(mailbox, intake, self.stop_event) for mailbox in settings.imap_mailboxes
        ]
        self.threads: list[threading.Thread] = []

    def start(self) -> None:
        for poller in self.pollers:
            thread = threading.Thread(
                target=poller.run, name=f"imap-{poller.mailbox.name}", daemon=True
            )
            thread.start()
            self.threads.append(thread)
        log.info("imap.started", mailboxes=[p.mailbox.name for p in self.pollers])

    def stop(self, timeout: float = 30.0) -> None:
        self.stop_event.set()
        for thread in self.threads:
            thread.join(timeout)
        log.info("imap.stopped")

    def run(self) -> None:
        """Run until :meth:`stop` is called (from a signal handler)."""
        self.start()
        while not self.stop_event.wait(1.0):
            pass
        self.stop()

    def run_once(self) -> bool:
        """One round per mailbox; False when any mailbox could not be read (it is logged)."""
        ok = True
        for poller in self.pollers:
            try:
                taken = poller.run_once()
            except Exception as exc:
                poller.note_failure(exc)
                ok = False
            else:
                log.info("imap.round_done", mailbox=poller.mailbox.name, taken_in=taken)
        return ok
