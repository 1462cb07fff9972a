"""Mailboxes that fail: a refused login or an untrusted certificate is logged once per
attempt with its cause and never the secret, shows in /healthz and /metrics, and never
holds up the other mailboxes. Bad configuration stops start-up with one clear line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient

from channels.imap.poller import MailboxPoller
from channels.imap.service import IMAPService
from gateway.errors import MailboxAuthError, MailboxCertificateError, SettingsError
from gateway.http import create_app
from gateway.intake import IntakeContext
from gateway.ledger import STATS
from gateway.settings import Settings, load_settings
from tests.conftest import make_mail
from tests.dovecot import Dovecot, MailUser, mailbox_for, mailbox_json

ROOT = Path(__file__).resolve().parent.parent


def log_events(log: Path, offset: int, event: str) -> list[dict[str, object]]:
    lines = log.read_text()[offset:].splitlines()
    found = []
    for line in lines:
        if f'"event": "{event}"' in line:
            found.append(json.loads(line))
    return found


def test_failing_mailboxes_are_reported_and_the_others_carry_on(
    dovecot: Dovecot,
    mail_user: MailUser,
    settings: Settings,
    connection: redis.Redis,
    suite_log: Path,
) -> None:
    good = mailbox_for(dovecot, mail_user)
    wrong_password = mailbox_for(
        dovecot, dovecot.new_user(), name="wrong-password", password="not-the-password-9f3"
    )
    untrusted = mailbox_for(
        dovecot, dovecot.new_user(), name="untrusted", tls="implicit", port=dovecot.tls_port
    )
    untrusted = untrusted.model_copy(update={"ca_file": None})
    configured = settings.model_copy(
        update={
            "imap_mailboxes": [wrong_password, untrusted, good],
            "imap_backoff_max_seconds": 0.4,
            "imap_failing_after": 3,
        }
    )
    offset = len(suite_log.read_text())
    service = IMAPService(configured, connection)
    service.start()
    try:
        dovecot.append(mail_user, [make_mail(body="The good mailbox still works.")])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            failures = [
                int(connection.hget(STATS, f"imap_failures:{name}") or 0)
                for name in ("wrong-password", "untrusted")
            ]
            if min(failures) >= 3 and connection.hget(STATS, "accepted:email"):
                break
            time.sleep(0.1)
        client = TestClient(create_app(configured, connection))
        health = client.get("/healthz")
        metrics = client.get("/metrics").text
    finally:
        service.stop()
    assert int(connection.hget(STATS, "accepted:email") or 0) == 1
    assert dovecot.uids(mail_user) == []

    assert health.status_code == 200
    body = health.json()
    assert body["status"] == "degraded"
    assert body["failing_mailboxes"] == ["untrusted", "wrong-password"]
    assert body["mailboxes"][good.name]["failing"] is False
    assert "login refused" in body["mailboxes"]["wrong-password"]["cause"]
    assert "self-signed certificate" in body["mailboxes"]["untrusted"]["cause"]
    assert 'intake_imap_mailbox_failing{mailbox="wrong-password"} 1.0' in metrics
    assert f'intake_imap_mailbox_failing{{mailbox="{good.name}"}} 0.0' in metrics
    assert 'intake_imap_failures_total{mailbox="untrusted"}' in metrics

    failed = log_events(suite_log, offset, "imap.failed")
    refused = [e for e in failed if e["mailbox"] == "wrong-password"]
    counted = int(connection.hget(STATS, "imap_failures:wrong-password") or 0)
    assert len(refused) == counted  # once per occurrence, no more
    assert all(e["error"] == "MailboxAuthError" and e["level"] == "error" for e in refused)
    certificate = [e for e in failed if e["mailbox"] == "untrusted"]
    assert certificate and all(e["error"] == "MailboxCertificateError" for e in certificate)
    log_text = suite_log.read_text()[offset:]
    assert "not-the-password-9f3" not in log_text
    assert mail_user.password not in log_text


def test_a_refused_token_and_an_untrusted_certificate_say_why(
    dovecot: Dovecot, mail_user: MailUser, settings: Settings, connection: redis.Redis
) -> None:
    intake = IntakeContext.from_settings(settings, connection)
    token = mailbox_for(dovecot, mail_user, password=None, oauth2_token="expired-token-77")
    with pytest.raises(MailboxAuthError, match="OAuth2 access token") as refused:
        MailboxPoller(token, intake).run_once()
    assert "expired-token-77" not in str(refused.value)
    system_trust = mailbox_for(dovecot, mail_user, host="localhost", ca_file=None)
    with pytest.raises(MailboxCertificateError, match="not trusted: self-signed"):
        MailboxPoller(system_trust, intake).run_once()
    # Not checking the certificate at all happens only when asked for.
    unchecked = mailbox_for(dovecot, mail_user, ca_file=None, verify_certificate=False)
    dovecot.append(mail_user, [make_mail(body="Over unverified TLS.")])
    assert MailboxPoller(unchecked, intake).run_once() == 1


def test_an_unreachable_server_is_a_clear_failure(
    settings: Settings, connection: redis.Redis
) -> None:
    from channels.imap.session import open_session
    from gateway.errors import MailboxError
    from gateway.settings import IMAPMailbox
    from tests.conftest import free_port

    mailbox = IMAPMailbox(
        name="gone", host="127.0.0.1", port=free_port(), tls="none", username="u", password="p"
    )
    with pytest.raises(MailboxError, match="refused the connection"):
        open_session(mailbox, timeout=5)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('[{"name": "a", "host": "h", "username": "u"}]', "either password or oauth2_token"),
        (
            '[{"name": "a", "host": "h", "username": "u", "password": "s3cret-x",'
            ' "oauth2_token": "t0ken-y"}]',
            "either password or oauth2_token",
        ),
        ('[{"name": "a@b", "host": "h", "username": "u", "password": "s3cret-x"}]', "pattern"),
        (
            '[{"name": "a", "host": "h", "username": "u", "password": "s3cret-x",'
            ' "processed_folder": "INBOX"}]',
            "folders must differ",
        ),
        (
            '[{"name": "a", "host": "h", "username": "u", "password": "s3cret-x"},'
            ' {"name": "a", "host": "h2", "username": "u", "password": "s3cret-x"}]',
            "share a name",
        ),
        ('[{"name": "a", "host": "h", "username": "u", "password": "s3cret-x"', "bad setting"),
    ],
)
def test_bad_mailbox_configuration_stops_start_up_with_one_line(
    value: str, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INTAKE_IMAP_MAILBOXES", value)
    with pytest.raises(SettingsError, match=message) as error:
        load_settings()
    assert "s3cret-x" not in str(error.value) and "t0ken-y" not in str(error.value)
    assert "\n" not in str(error.value)


def test_idle_renewal_is_capped_at_ten_minutes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INTAKE_IMAP_IDLE_RENEW_SECONDS", "1800")
    with pytest.raises(SettingsError, match="INTAKE_IMAP_IDLE_RENEW_SECONDS"):
        load_settings()


def test_the_imap_command_takes_mail_in(
    dovecot: Dovecot, mail_user: MailUser, settings: Settings, connection: redis.Redis
) -> None:
    dovecot.append(mail_user, [make_mail(body="Via the command line.")])
    env = dict(os.environ)
    env.update(
        INTAKE_REDIS_URL=settings.redis_url or "",
        INTAKE_DATA_DIR=str(settings.data_dir),
        INTAKE_IMAP_MAILBOXES=mailbox_json(mailbox_for(dovecot, mail_user)),
    )
    command = [sys.executable, "-m", "gateway.cli", "imap", "--once"]
    done = subprocess.run(command, env=env, cwd=ROOT, timeout=120, capture_output=True)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert int(connection.hget(STATS, "accepted:email") or 0) == 1
    assert dovecot.uids(mail_user) == []
    env["INTAKE_IMAP_MAILBOXES"] = "[]"
    done = subprocess.run(command, env=env, cwd=ROOT, timeout=120, capture_output=True)
    assert done.returncode == 2
    assert b"INTAKE_IMAP_MAILBOXES names no mailbox" in done.stderr
