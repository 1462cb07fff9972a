"""SIGTERM to `intake smtp`: stop listening at once, let a message under way finish."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import redis

from gateway.settings import Settings
from tests.conftest import make_mail
from tests.test_run import wait_for_port


def read_reply(reader: socket.SocketIO | object) -> bytes:
    line: bytes = reader.readline()  # type: ignore[attr-defined]
    while line[3:4] == b"-":
        line = reader.readline()  # type: ignore[attr-defined]
    return line


def test_sigterm_finishes_the_message_being_sent(
    settings: Settings, connection: redis.Redis
) -> None:
    env = dict(os.environ)
    env.update(
        INTAKE_REDIS_URL=settings.redis_url or "",
        INTAKE_DATA_DIR=str(settings.data_dir),
        INTAKE_DOMAINS=",".join(settings.domains),
        INTAKE_SMTP_PORT=str(settings.smtp_port),
        INTAKE_SHUTDOWN_GRACE_SECONDS="10",
    )
    process = subprocess.Popen([sys.executable, "-m", "gateway.cli", "smtp"], env=env)
    try:
        wait_for_port(settings.smtp_port)
        with socket.create_connection(("127.0.0.1", settings.smtp_port), timeout=10) as sock:
            reader = sock.makefile("rb")
            assert read_reply(reader).startswith(b"220")
            for command in (
                b"EHLO client.example.net",
                b"MAIL FROM:<sam@example.net>",
                b"RCPT TO:<hello@housing.test>",
                b"DATA",
            ):
                sock.sendall(command + b"\r\n")
                assert read_reply(reader)[:1] in (b"2", b"3")
            raw = make_mail(body="Sent while the server was stopping.")
            sock.sendall(raw[: len(raw) // 2])
            process.send_signal(signal.SIGTERM)
            time.sleep(0.5)
            try:  # the listener is closed: new clients go elsewhere or retry
                socket.create_connection(("127.0.0.1", settings.smtp_port), timeout=2).close()
                refused = False
            except OSError:
                refused = True
            assert refused
            assert process.poll() is None  # still finishing the message under way
            sock.sendall(raw[len(raw) // 2 :] + b".\r\n")
            reply = read_reply(reader)
            assert reply.startswith(b"250"), reply
            sock.sendall(b"QUIT\r\n")
        assert process.wait(15) == 0
    finally:
        if process.poll() is None:
            process.kill()
    assert connection.llen("rq:queue:intake") == 1
