"""One mailbox's poller: take the lease, connect, take in, wait, and again, until stopped.

Failures of any kind — the server gone, a refused login, an untrusted certificate, Redis
or the disk unavailable during ``accept`` — end the connection, are logged once with a
cause a person can act on, are counted, and are followed by a wait that grows with each
failure in a row (``backoff``). The lease is let go during that wait, so a poller on
another machine that can reach the server may take over. A mailbox that keeps failing
shows in ``/healthz`` and ``/metrics``; it never stops the pollers of other mailboxes,
which run in their own threads.
"""

from __future__ import annotations

import contextlib
import threading

from channels.imap.backoff import Backoff
from channels.imap.checkpoint import Checkpoints
from channels.imap.lock import MailboxLock
from channels.imap.round import Round, StepObserver
from channels.imap.session import Session, open_session
from channels.imap.status import MailboxStatus, write_status
from channels.imap.wait import SLICE_SECONDS, wait_for_mail
from channels.imap.watchdog import Watchdog
from gateway.errors import (
    MailboxAuthError,
    MailboxCertificateError,
    MailboxError,
    MailboxLockLostError,
)
from gateway.intake import IntakeContext
from gateway.logs import get_logger
from gateway.settings import IMAPMailbox

log = get_logger("channels.imap.poller")


class MailboxPoller:
    def __init__(
        self,
        mailbox: IMAPMailbox,
        intake: IntakeContext,
        stop: threading.Event | None = None,
        observer: StepObserver | None = None,
    ) -> None:
        self.mailbox = mailbox
        self.intake = intake
        self.settings = intake.settings
        self.stop = stop or threading.Event()
        self.observer = observer
        self.lock = MailboxLock(intake.connection, mailbox.name, self.settings.imap_lock_seconds)
        self.checkpoints = Checkpoints(intake.connection)
        self.backoff = Backoff(1.0, self.settings.imap_backoff_max_seconds)
        self.watchdog = Watchdog(mailbox.name, self._stalled)
        self.session: Session | None = None
        self.status = MailboxStatus(state="starting")
        self.taken_in = 0

    # -- the loop --------------------------------------------------------------------

    def run(self) -> None:
        """Poll until ``stop`` is set; never raises."""
        self.watchdog.start()
        standby_logged = False
        try:
            while not self.stop.is_set():
                if not self._acquire():
                    if not standby_logged:
                        log.info("imap.standby", mailbox=self.mailbox.name)
                        standby_logged = True
                    self.stop.wait(min(SLICE_SECONDS, self.settings.imap_lock_seconds / 3))
                    continue
                standby_logged = False
                delay = 0.0
                try:
                    self._serve()
                except MailboxLockLostError:
                    log.warning("imap.lease_lost", mailbox=self.mailbox.name)
                except Exception as exc:
                    delay = self.note_failure(exc)
                finally:
                    self._disconnect()
                if delay:
                    self.stop.wait(delay)
        finally:
            self.watchdog.stop()

    def run_once(self) -> int:
        """One round on a fresh connection; the number of messages newly taken in.

        For ``intake imap --once`` and tests. Raises what ``run`` would have retried.
        """
        if not self._acquire():
            raise MailboxLockLostError(self.lock.key)
        try:
            self._connect()
            return self._round()
        finally:
            self._disconnect()

    def _serve(self) -> None:
        self._connect()
        while not self.stop.is_set():
            self._round()
            assert self.session is not None
            self._report("idle" if self.session.can_idle else "polling", failures=0)
            self.backoff.reset()
            wait_for_mail(
                self.session,
                poll_seconds=self.settings.imap_poll_seconds,
                renew_seconds=self.settings.imap_idle_renew_seconds,
                timeout=self.settings.imap_timeout_seconds,
                stop=self.stop,
                tick=self.lock.keep,
                watchdog=self.watchdog,
            )
        self._report("stopped")  # while the lease is still ours: a successor reports next

    # -- steps -----------------------------------------------------------------------

    def _acquire(self) -> bool:
        try:
            return self.lock.acquire()
        except Exception as exc:  # Redis unavailable: counts as a failure, then wait
            self.stop.wait(self.note_failure(exc, report=False))
            return False

    def _connect(self) -> None:
        self._report("connecting")
        timeout = self.settings.imap_timeout_seconds
        with self.watchdog.guard(4 * timeout + 5):
            self.session = open_session(self.mailbox, timeout)
        log.info(
            "imap.connected",
            mailbox=self.mailbox.name,
            idle=self.session.can_idle,
            move=self.session.can_move,
        )

    def _round(self) -> int:
        assert self.session is not None
        taken = Round(
            self.session,
            self.intake,
            self.checkpoints,
            self.lock.keep,
            self.observer,
            self.stop,
        ).run()
        self.taken_in += taken
        return taken

    def _disconnect(self) -> None:
        session, self.session = self.session, None
        if session is not None:
            session.close()
        try:
            self.lock.release()
        except Exception:  # Redis gone: the lease runs out by itself
            self.lock.held = False

    def _stalled(self) -> None:
        session = self.session
        if session is not None:
            session.abort()

    # -- reporting -------------------------------------------------------------------

    def note_failure(self, exc: BaseException, report: bool = True) -> float:
        """Log and count one failure; how long to wait before the next attempt."""
        failures = self.status.failures + 1
        if isinstance(exc, MailboxError):
            cause = str(exc)
        else:
            cause = f"connection or storage failed ({type(exc).__name__})"
        delay = self.backoff.next_delay()
        level = (
            log.error
            if isinstance(exc, MailboxAuthError | MailboxCertificateError)
            else log.warning
        )
        level(
            "imap.failed",
            mailbox=self.mailbox.name,
            error=type(exc).__name__,
            cause=cause,
            failures=failures,
            retry_in=round(delay, 1),
        )
        with contextlib.suppress(Exception):
            self.intake.ledger.count(f"imap_failures:{self.mailbox.name}")
        if report:  # only while holding the lease: the status is the lease holder's to write
            self._report("backing_off", failures=failures, cause=cause, error=type(exc).__name__)
        else:
            self.status.failures = failures
        return delay

    def _report(
        self,
        state: str,
        failures: int | None = None,
        cause: str | None = None,
        error: str | None = None,
    ) -> None:
        if failures is None:
            failures = self.status.failures
            cause, error = cause or self.status.cause, error or self.status.error
        new = MailboxStatus(state=state, failures=failures, cause=cause, error=error)
        changed = (new.state, new.failures, new.cause) != (
            self.status.state,
            self.status.failures,
            self.status.cause,
        )
        self.status = new
        if changed:
            # Redis down: the next change is written once it is back.
            with contextlib.suppress(Exception):
                write_status(self.intake.connection, self.mailbox.name, new)
