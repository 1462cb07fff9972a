"""A poller killed with SIGKILL at each step of taking a message in loses nothing and
doubles nothing: the next poller finishes the work, and every message is one record."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from channels.imap.poller import MailboxPoller
from gateway.errors import MailboxLockLostError
from gateway.intake import IntakeContext
from gateway.settings import IMAPMailbox, Settings
from tests.conftest import feed_records, make_mail
from tests.dovecot import Dovecot, MailUser, mailbox_for, mailbox_json

ROOT = Path(__file__).resolve().parent.parent
BODIES = [f"Complaint number {n}: the heating is off." for n in range(5)]


def killed_poller(settings: Settings, mailbox: IMAPMailbox, step: str, nth: int) -> int:
    """Run one round in a child process that SIGKILLs itself after the nth ``step``."""
    env = dict(os.environ)
    env.update(
        INTAKE_REDIS_URL=settings.redis_url or "",
        INTAKE_DATA_DIR=str(settings.data_dir),
        INTAKE_DOMAINS=",".join(settings.domains),
        INTAKE_IMAP_MAILBOXES=mailbox_json(mailbox),
        INTAKE_IMAP_LOCK_SECONDS="3",  # the lease the killed poller leaves behind
    )
    child = subprocess.run(
        [sys.executable, "-m", "tests.imap_crash_entry", step, str(nth)],
        env=env,
        cwd=ROOT,
        timeout=120,
        capture_output=True,
    )
    return child.returncode


def seed(server: Dovecot, user: MailUser) -> None:
    server.append(
        user,
        [make_mail(body=body, message_id=f"<c{n}@example.net>") for n, body in enumerate(BODIES)],
    )


def finish_and_check(
    server: Dovecot,
    user: MailUser,
    mailbox: IMAPMailbox,
    settings: Settings,
    connection: redis.Redis,
    drain: Callable[[], None],
) -> list[bytes]:
    """Run a healthy poller after the killed one; every message is then one record."""
    configured = settings.model_copy(update={"imap_mailboxes": [mailbox]})
    poller = MailboxPoller(mailbox, IntakeContext.from_settings(configured, connection))
    deadline = time.monotonic() + 30
    while True:  # as a restarted poller does: wait for the dead one's lease to run out
        try:
            poller.run_once()
            break
        except MailboxLockLostError:
            assert time.monotonic() < deadline, "the killed poller's lease never ran out"
            time.sleep(0.2)
    drain()
    records = feed_records(connection)
    assert sorted(r.text for r in records) == sorted(BODIES)
    assert len({r.reference for r in records}) == len(BODIES)
    assert server.uids(user) == []
    return server.bodies(user, "Processed")


@pytest.mark.parametrize(
    "step",
    [
        "fetched",  # after the fetch, before accept
        "accepted",  # after accept, before the move
        "moved",  # after the move, before the checkpoint
        "checkpointed",  # after the checkpoint
    ],
)
def test_killed_at_each_step_loses_and_doubles_nothing(
    step: str,
    dovecot: Dovecot,
    mail_user: MailUser,
    settings: Settings,
    connection: redis.Redis,
    drain: Callable[[], None],
) -> None:
    seed(dovecot, mail_user)
    mailbox = mailbox_for(dovecot, mail_user)
    assert killed_poller(settings, mailbox, step, nth=2) == -signal.SIGKILL
    processed = finish_and_check(dovecot, mail_user, mailbox, settings, connection, drain)
    assert len(processed) == len(BODIES)  # each message moved once


def test_killed_between_copy_and_expunge_on_a_server_without_move(
    basic_dovecot: Dovecot,
    settings: Settings,
    connection: redis.Redis,
    drain: Callable[[], None],
) -> None:
    user = basic_dovecot.new_user()
    seed(basic_dovecot, user)
    mailbox = mailbox_for(basic_dovecot, user)
    assert killed_poller(settings, mailbox, "copied", nth=1) == -signal.SIGKILL
    processed = finish_and_check(basic_dovecot, user, mailbox, settings, connection, drain)
    # The gap the move module names: the copies made before the kill are made again, so
    # the processed folder holds each message twice; each is still one record.
    assert len(processed) == 2 * len(BODIES)
    assert {body.split(b"\r\n\r\n", 1)[1].strip() for body in processed} == {
        b.encode() for b in BODIES
    }
