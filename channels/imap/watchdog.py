"""A watchdog that breaks a connection stuck past its deadline, so the poller reconnects.

IDLE is where IMAP clients hang: a socket that died without a FIN (a NAT table forgot us,
a laptop slept) leaves a reader waiting for ever, and imapclient has known cases of it
(issues #349, #449 and #565). Socket timeouts catch most of them; the watchdog catches
the rest. The poller arms it with a deadline before each step that could hang
(connecting, each IDLE wait, ending IDLE) and disarms it after; a deadline that passes
shuts the socket down from this thread, which makes the stuck call raise.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from gateway.logs import get_logger

log = get_logger("channels.imap.watchdog")


class Watchdog:
    def __init__(self, mailbox: str, on_stall: Callable[[], None]) -> None:
        self.mailbox = mailbox
        self.on_stall = on_stall
        self.deadline: float | None = None
        self.fired = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._run, name=f"imap-watchdog-{self.mailbox}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    @contextmanager
    def guard(self, seconds: float) -> Iterator[None]:
        with self._lock:
            self.deadline = time.monotonic() + seconds
        try:
            yield
        finally:
            with self._lock:
                self.deadline = None

    def _run(self) -> None:
        while not self._stop.wait(0.25):
            with self._lock:
                overdue = self.deadline is not None and time.monotonic() > self.deadline
                if overdue:
                    self.deadline = None
            if overdue:
                self.fired += 1
                log.warning("imap.watchdog_fired", mailbox=self.mailbox)
                try:
                    self.on_stall()
                except Exception as exc:  # the poller's own error handling takes over
                    log.warning(
                        "imap.watchdog_failed", mailbox=self.mailbox, error=type(exc).__name__
                    )
