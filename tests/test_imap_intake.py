"""Mail read from a hosted mailbox over IMAP, against a real Dovecot: each message taken in
once, whatever flags or Message-IDs it has, and nothing taken in twice when the mailbox is
rebuilt, polled a thousand times or read by two pollers at once."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient

from channels.imap.checkpoint import Checkpoints
from channels.imap.poller import MailboxPoller
from channels.imap.round import Round
from channels.imap.session import open_session
from gateway.errors import MailboxLockLostError
from gateway.http import create_app
from gateway.intake import IntakeContext
from gateway.ledger import STATS
from gateway.settings import IMAPMailbox, Settings
from tests.conftest import feed_records, make_mail
from tests.dovecot import Dovecot, MailUser, mailbox_for


def poller_for(
    settings: Settings, connection: redis.Redis, mailbox: IMAPMailbox, **changes: object
) -> MailboxPoller:
    configured = settings.model_copy(update={"imap_mailboxes": [mailbox], **changes})
    return MailboxPoller(mailbox, IntakeContext.from_settings(configured, connection))


def stat(connection: redis.Redis, name: str) -> int:
    return int(connection.hget(STATS, name) or 0)


def ledger_size(connection: redis.Redis) -> int:
    return sum(1 for _ in connection.scan_iter("intake:rec:*", count=1000))


def test_new_mail_becomes_one_record_and_leaves_the_inbox(
    dovecot: Dovecot,
    mail_user: MailUser,
    settings: Settings,
    connection: redis.Redis,
    drain: Callable[[], None],
) -> None:
    mailbox = mailbox_for(dovecot, mail_user)
    poller = poller_for(settings, connection, mailbox)
    dovecot.append(mail_user, [make_mail(body="The lift has been broken for a week.")])
    assert poller.run_once() == 1
    assert poller.run_once() == 0  # a second look takes nothing in
    assert dovecot.uids(mail_user) == []
    assert len(dovecot.uids(mail_user, "Processed")) == 1
    drain()
    [record] = feed_records(connection)
    assert record.channel == "email"
    assert record.source.transport == "imap"
    assert record.source.recipients == [mail_user.name]
    assert record.source.envelope_from is None
    assert record.source.message_id == "<m1@example.net>"
    assert record.source.extra["mailbox"] == mailbox.name
    assert record.source.extra["uidvalidity"] == dovecot.uidvalidity(mail_user, "INBOX")
    assert record.source.extra["uid"] == 1
    assert record.customer.email == "sam.taylor@example.net"
    assert record.text == "The lift has been broken for a week."
    assert record.acknowledgement is not None and record.acknowledgement.status == "sent"


def test_read_messages_shared_message_ids_and_none_are_all_taken_in(
    dovecot: Dovecot,
    mail_user: MailUser,
    settings: Settings,
    connection: redis.Redis,
    drain: Callable[[], None],
) -> None:
    dovecot.append(mail_user, [make_mail(body="Already read by a colleague.")], flags=(b"\\Seen",))
    dovecot.append(
        mail_user,
        [
            make_mail(body="Damp in the hallway.", message_id="<same@example.net>"),
            make_mail(body="Fence blown down.", message_id="<same@example.net>"),
            make_mail(body="No Message-ID here.", message_id=None),
            make_mail(body="Nor here.", message_id=None),
        ],
    )
    poller = poller_for(settings, connection, mailbox_for(dovecot, mail_user))
    assert poller.run_once() == 5
    drain()
    texts = sorted(r.text for r in feed_records(connection))
    assert texts == sorted(
        [
            "Already read by a colleague.",
            "Damp in the hallway.",
            "Fence blown down.",
            "No Message-ID here.",
            "Nor here.",
        ]
    )
    assert dovecot.uids(mail_user) == []


def test_a_message_also_delivered_by_smtp_is_taken_in_once(
    dovecot: Dovecot,
    mail_user: MailUser,
    settings: Settings,
    connection: redis.Redis,
    smtp_server: tuple[str, int],
) -> None:
    import smtplib

    raw = make_mail(body="Sent to both addresses.")
    with smtplib.SMTP(*smtp_server, timeout=10) as client:
        client.sendmail("sam.taylor@example.net", ["hello@housing.test"], raw)
    dovecot.append(mail_user, [raw])
    poller = poller_for(settings, connection, mailbox_for(dovecot, mail_user))
    assert poller.run_once() == 0
    assert stat(connection, "repeated_deliveries") == 1
    assert ledger_size(connection) == 1
    assert dovecot.uids(mail_user) == []  # a repeat still leaves the inbox


def test_a_rebuilt_mailbox_gives_only_its_new_messages(
    dovecot: Dovecot,
    mail_user: MailUser,
    settings: Settings,
    connection: redis.Redis,
    suite_log: Path,
) -> None:
    old = [make_mail(body=f"Complaint {n}", message_id=f"<old{n}@example.net>") for n in range(400)]
    new = [make_mail(body=f"Newer {n}", message_id=f"<new{n}@example.net>") for n in range(100)]
    mailbox = mailbox_for(dovecot, mail_user)
    poller = poller_for(settings, connection, mailbox)
    dovecot.append(mail_user, old)
    assert poller.run_once() == 400
    before = dovecot.uidvalidity(mail_user)
    # Restored from a backup: the 400 come back beside 100 new ones, numbered afresh.
    dovecot.rebuild(mail_user, uidvalidity=before + 1000)
    dovecot.append(mail_user, old[:200] + new + old[200:])
    assert poller.run_once() == 100
    assert ledger_size(connection) == 500
    assert stat(connection, "accepted:email") == 500
    assert stat(connection, "repeated_deliveries") == 400
    assert dovecot.uids(mail_user) == []
    assert stat(connection, f"imap_uidvalidity_changes:{mailbox.name}") == 1
    assert '"event": "imap.uidvalidity_changed"' in suite_log.read_text()
    metrics = TestClient(create_app(settings, connection)).get("/metrics").text
    assert f'intake_imap_uidvalidity_changes_total{{mailbox="{mailbox.name}"}} 1.0' in metrics


def test_a_thousand_empty_polls_take_nothing_in(
    dovecot: Dovecot, mail_user: MailUser, settings: Settings, connection: redis.Redis
) -> None:
    """``UID n:*`` answers with the newest message even when nothing is new."""
    mailbox = mailbox_for(dovecot, mail_user)
    dovecot.append(mail_user, [make_mail(body="Taken in earlier.")])
    [uid] = dovecot.uids(mail_user)
    intake = IntakeContext.from_settings(settings, connection)
    checkpoints = Checkpoints(connection)
    session = open_session(mailbox, timeout=30)
    try:
        # The checkpoint says this message was taken in; it is still in the folder, as on
        # a server where another client put it back or the move could not be completed.
        checkpoints.advance(
            mailbox.name, checkpoints.start(mailbox.name, "INBOX", session.select()), uid
        )
        one_round = Round(session, intake, checkpoints, renew=lambda: None)
        taken = [one_round.run() for _ in range(1000)]
    finally:
        session.close()
    assert sum(taken) == 0
    assert ledger_size(connection) == 0
    assert dovecot.uids(mail_user) == [uid]
    assert checkpoints.load(mailbox.name) is not None
    assert checkpoints.load(mailbox.name).last_uid == uid  # type: ignore[union-attr]


def test_a_message_too_large_is_set_aside_and_the_rest_taken_in(
    dovecot: Dovecot,
    mail_user: MailUser,
    settings: Settings,
    connection: redis.Redis,
    suite_log: Path,
) -> None:
    mailbox = mailbox_for(dovecot, mail_user)
    poller = poller_for(settings, connection, mailbox, max_message_bytes=4096)
    dovecot.append(
        mail_user,
        [make_mail(body="x" * 10_000, message_id="<big@x>"), make_mail(body="Small one.")],
    )
    assert poller.run_once() == 1
    assert ledger_size(connection) == 1
    assert dovecot.uids(mail_user) == []
    assert len(dovecot.uids(mail_user, "Unreadable")) == 1
    assert b"<big@x>" in dovecot.bodies(mail_user, "Unreadable")[0]
    assert stat(connection, f"imap_unreadable:{mailbox.name}") == 1
    assert '"reason": "too_large"' in suite_log.read_text()


def test_a_server_without_move_or_idle_gets_copy_and_expunge(
    basic_dovecot: Dovecot,
    settings: Settings,
    connection: redis.Redis,
    drain: Callable[[], None],
) -> None:
    user = basic_dovecot.new_user()
    dovecot = basic_dovecot
    dovecot.append(user, [make_mail(body=f"Message {n}", message_id=f"<b{n}@x>") for n in range(3)])
    poller = poller_for(settings, connection, mailbox_for(dovecot, user))
    assert poller.run_once() == 3
    assert dovecot.uids(user) == []  # expunged by UID, nothing left flagged
    assert len(dovecot.uids(user, "Processed")) == 3
    drain()
    assert len(feed_records(connection)) == 3


def test_folders_are_created_and_configurable(
    dovecot: Dovecot, mail_user: MailUser, settings: Settings, connection: redis.Redis
) -> None:
    dovecot.append(mail_user, [make_mail(body="Filed by a rule.")], folder="Complaints")
    mailbox = mailbox_for(
        dovecot,
        mail_user,
        folder="Complaints",
        processed_folder="Complaints/Done",
        unreadable_folder="Complaints/Unreadable",
    )
    assert poller_for(settings, connection, mailbox).run_once() == 1
    assert dovecot.uids(mail_user, "Complaints") == []
    assert len(dovecot.uids(mail_user, "Complaints/Done")) == 1
    assert dovecot.uids(mail_user, "Complaints/Unreadable") == []
    assert dovecot.uids(mail_user, "Processed") == []


def test_xoauth2_over_implicit_tls(
    dovecot: Dovecot, mail_user: MailUser, settings: Settings, connection: redis.Redis
) -> None:
    mailbox = mailbox_for(
        dovecot,
        mail_user,
        tls="implicit",
        port=dovecot.tls_port,
        password=None,
        oauth2_token=mail_user.token,
    )
    dovecot.append(mail_user, [make_mail(body="Via a token.")])
    assert poller_for(settings, connection, mailbox).run_once() == 1


def test_two_pollers_on_one_mailbox_never_take_the_same_message(
    dovecot: Dovecot, mail_user: MailUser, settings: Settings, connection: redis.Redis
) -> None:
    mailbox = mailbox_for(dovecot, mail_user)
    dovecot.append(
        mail_user, [make_mail(body=f"Number {n}", message_id=f"<t{n}@x>") for n in range(60)]
    )
    pollers = [poller_for(settings, connection, mailbox) for _ in range(2)]
    stop = threading.Event()
    threads = []
    for poller in pollers:
        poller.stop = stop
        threads.append(threading.Thread(target=poller.run))
    for thread in threads:
        thread.start()
    try:
        deadline = time.monotonic() + 60
        while ledger_size(connection) < 60 and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
    assert ledger_size(connection) == 60
    assert stat(connection, "repeated_deliveries") == 0  # they never raced for a message
    assert sorted(p.taken_in for p in pollers) == [0, 60]
    assert dovecot.uids(mail_user) == []
    assert len(dovecot.uids(mail_user, "Processed")) == 60


def test_a_poller_whose_lease_is_taken_over_stops_before_its_next_message(
    dovecot: Dovecot, mail_user: MailUser, settings: Settings, connection: redis.Redis
) -> None:
    mailbox = mailbox_for(dovecot, mail_user)
    dovecot.append(
        mail_user, [make_mail(body=f"Lease {n}", message_id=f"<l{n}@x>") for n in range(45)]
    )
    configured = settings.model_copy(update={"imap_mailboxes": [mailbox], "imap_lock_seconds": 3.0})
    intake = IntakeContext.from_settings(configured, connection)
    successor = MailboxPoller(mailbox, intake)

    def take_over(step: str, uid: int) -> None:
        if step == "checkpointed" and uid == 20:  # the first batch is done, then a stall...
            time.sleep(3.5)  # ...longer than the lease
            assert successor.lock.acquire()  # another poller takes the mailbox

    stalled = MailboxPoller(mailbox, intake, observer=take_over)
    with pytest.raises(MailboxLockLostError):
        stalled.run_once()
    assert ledger_size(connection) == 20
    assert len(dovecot.uids(mail_user)) == 25
    successor.lock.release()
    assert successor.run_once() == 25
    assert ledger_size(connection) == 45
    assert stat(connection, "repeated_deliveries") == 0
