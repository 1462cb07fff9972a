"""Waiting for mail: IDLE delivers new mail within seconds, a restarted server or a
connection that dies without a word is reconnected to, and servers without IDLE are
polled."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import redis

from channels.imap.service import IMAPService
from channels.imap.status import MailboxStatus, read_statuses
from channels.imap.watchdog import Watchdog
from gateway.ledger import STATS
from gateway.settings import IMAPMailbox, Settings
from tests.conftest import make_mail
from tests.dovecot import Dovecot, MailUser, mailbox_for


@contextmanager
def running(
    settings: Settings, connection: redis.Redis, *mailboxes: IMAPMailbox, **changes: object
) -> Iterator[IMAPService]:
    configured = settings.model_copy(update={"imap_mailboxes": list(mailboxes), **changes})
    service = IMAPService(configured, connection)
    service.start()
    try:
        yield service
    finally:
        service.stop()


def wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> float:
    """Seconds until ``condition`` held; fails the test at ``timeout``."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, "timed out"
        time.sleep(0.02)
    return time.monotonic() - started


def accepted(connection: redis.Redis) -> int:
    return int(connection.hget(STATS, "accepted:email") or 0)


def status_of(connection: redis.Redis, mailbox: IMAPMailbox) -> MailboxStatus | None:
    return read_statuses(connection).get(mailbox.name)


def in_state(connection: redis.Redis, mailbox: IMAPMailbox, state: str) -> Callable[[], bool]:
    def check() -> bool:
        status = status_of(connection, mailbox)
        return status is not None and status.state == state

    return check


def test_mail_delivered_during_idle_is_taken_in_within_seconds(
    dovecot: Dovecot, mail_user: MailUser, settings: Settings, connection: redis.Redis
) -> None:
    mailbox = mailbox_for(dovecot, mail_user)
    with running(settings, connection, mailbox):
        wait_for(in_state(connection, mailbox, "idle"))
        for number in range(3):
            time.sleep(0.5)
            dovecot.append(mail_user, [make_mail(body=f"Arrived while idle {number}.")])
            took = wait_for(lambda n=number: accepted(connection) == n + 1)
            assert took < 5.0
        assert dovecot.uids(mail_user) == []


def test_a_server_restarted_during_idle_is_reconnected_to(
    own_dovecot: Dovecot, settings: Settings, connection: redis.Redis
) -> None:
    user = own_dovecot.new_user()
    mailbox = mailbox_for(own_dovecot, user)
    with running(settings, connection, mailbox, imap_backoff_max_seconds=1.0):
        wait_for(in_state(connection, mailbox, "idle"))
        own_dovecot.restart()
        own_dovecot.append(user, [make_mail(body="Sent while the server restarted.")])
        wait_for(lambda: accepted(connection) == 1, timeout=30)
        wait_for(in_state(connection, mailbox, "idle"))
    assert int(connection.hget(STATS, f"imap_failures:{mailbox.name}") or 0) >= 1
    status = status_of(connection, mailbox)
    assert status is not None and status.failures == 0  # reconnected: no longer failing


class FreezingProxy:
    """A TCP relay to the server that can go silent on every open connection at once,
    as a connection whose far end vanished without a FIN (a NAT box forgot it)."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.frozen: list[socket.socket] = []
        self.live: list[tuple[socket.socket, socket.socket]] = []
        self.lock = threading.Lock()
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            with self.lock:
                self.live.append((client, server))
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                with self.lock:
                    if source in self.frozen:
                        return  # swallow: nothing more passes, nothing is closed
                sink.sendall(data)
        except OSError:
            return

    def freeze(self) -> None:
        with self.lock:
            for pair in self.live:
                self.frozen.extend(pair)
            self.live = []

    def close(self) -> None:
        self.closed = True
        self.listener.close()
        with self.lock:
            for sock in self.frozen + [s for pair in self.live for s in pair]:
                sock.close()


def test_a_connection_that_dies_silently_during_idle_is_replaced(
    dovecot: Dovecot, mail_user: MailUser, settings: Settings, connection: redis.Redis
) -> None:
    proxy = FreezingProxy((dovecot.host, dovecot.port))
    mailbox = mailbox_for(dovecot, mail_user, port=proxy.port)
    try:
        with running(
            settings,
            connection,
            mailbox,
            imap_idle_renew_seconds=2.0,
            imap_timeout_seconds=2.0,
            imap_backoff_max_seconds=1.0,
        ):
            wait_for(in_state(connection, mailbox, "idle"))
            proxy.freeze()
            dovecot.append(mail_user, [make_mail(body="Behind a dead connection.")])
            # Nothing reaches the frozen connection; the renewal finds it dead.
            wait_for(lambda: accepted(connection) == 1, timeout=30)
        assert int(connection.hget(STATS, f"imap_failures:{mailbox.name}") or 0) >= 1
    finally:
        proxy.close()


def test_a_server_without_idle_is_polled(
    basic_dovecot: Dovecot, settings: Settings, connection: redis.Redis
) -> None:
    user = basic_dovecot.new_user()
    mailbox = mailbox_for(basic_dovecot, user)
    with running(settings, connection, mailbox, imap_poll_seconds=0.5):
        wait_for(in_state(connection, mailbox, "polling"))
        basic_dovecot.append(user, [make_mail(body="Found by polling.")])
        wait_for(lambda: accepted(connection) == 1, timeout=10)
    assert basic_dovecot.uids(user) == []


def test_stopping_ends_idle_promptly_and_lets_go_of_the_mailbox(
    dovecot: Dovecot, mail_user: MailUser, settings: Settings, connection: redis.Redis
) -> None:
    mailbox = mailbox_for(dovecot, mail_user)
    with running(settings, connection, mailbox) as service:
        wait_for(in_state(connection, mailbox, "idle"))
        started = time.monotonic()
        service.stop()
        assert time.monotonic() - started < 5
    assert connection.exists(f"intake:imap:{mailbox.name}:lock") == 0
    assert in_state(connection, mailbox, "stopped")()


def test_the_watchdog_breaks_a_call_stuck_past_its_deadline() -> None:
    left, right = socket.socketpair()
    stalls: list[float] = []

    def on_stall() -> None:
        stalls.append(time.monotonic())
        left.shutdown(socket.SHUT_RDWR)

    watchdog = Watchdog("test", on_stall)
    watchdog.start()
    try:
        started = time.monotonic()
        with watchdog.guard(0.5):
            assert left.recv(10) == b""  # blocked until the watchdog shut the socket down
        assert len(stalls) == 1 and 0.4 < stalls[0] - started < 5
        with watchdog.guard(5):
            time.sleep(0.1)  # finished in time: the watchdog stays quiet
        time.sleep(0.5)
        assert len(stalls) == 1
    finally:
        watchdog.stop()
        left.close()
        right.close()
