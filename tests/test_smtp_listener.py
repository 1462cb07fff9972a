"""The SMTP listener's promises: never a relay, honest size limits, temporary failures
that make the sender retry, and limits against slow or flooding clients."""

from __future__ import annotations

import smtplib
import socket
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from channels.email import smtp as smtp_module
from channels.email.smtp import SMTPController, SMTPHandler
from gateway.connection import connect
from gateway.intake import IntakeContext
from gateway.redis_server import EmbeddedRedis
from gateway.settings import Settings
from tests.conftest import feed_records, free_port, make_mail

ACCEPTED = [
    "hello@housing.test",
    "HELLO@HOUSING.TEST",
    "Hello@Housing.Test",
    "complaints+repairs@intake.test",
    "first.last@housing.test",
    "postmaster",
    '"hello"@housing.test',  # a needlessly quoted plain local part is the same mailbox
]

REFUSED = [
    "someone@gmail.com",
    "hello@housing.test.evil.example",
    "hello@evilhousing.test",
    "hello@sub.housing.test",
    "hello@[127.0.0.1]",
    "user%gmail.com@housing.test",
    "user%gmail.com",
    "user!gmail.com@housing.test",
    "gmail.com!user@housing.test",
    '"user@gmail.com"@housing.test',
    '"user%gmail.com"@housing.test',
    "@housing.test:user@gmail.com",
    "@a.example,@b.example:user@gmail.com",
    "hello@housing.test..",
    "hello@housing.test@gmail.com",
    "HELLO@GMAIL.COM",
    "hello@housing.tes",
    "hello@housing.test.",  # a trailing dot is refused as malformed, never relayed
    "",
]


@pytest.fixture
def client(smtp_server: tuple[str, int]) -> Iterator[smtplib.SMTP]:
    connection = smtplib.SMTP(*smtp_server, timeout=10)
    connection.ehlo("client.example.net")
    connection.mail("sender@example.net")
    yield connection
    connection.close()


@pytest.mark.parametrize("address", ACCEPTED)
def test_our_addresses_are_accepted(client: smtplib.SMTP, address: str) -> None:
    code, _ = client.docmd("RCPT", f"TO:<{address}>")
    assert code == 250


@pytest.mark.parametrize("address", REFUSED)
def test_anything_else_is_refused_before_data(client: smtplib.SMTP, address: str) -> None:
    code, reply = client.docmd("RCPT", f"TO:<{address}>")
    assert code in (550, 553), reply
    assert address.encode() not in reply or not address  # the refusal echoes no address
    code, _ = client.docmd("DATA")
    assert code == 503  # no valid recipient: no message can follow


def test_refused_and_accepted_recipients_in_one_message(
    smtp_server: tuple[str, int], connection: redis.Redis, drain: Callable[[], None]
) -> None:
    with smtplib.SMTP(*smtp_server, timeout=10) as client:
        refused = client.sendmail(
            "sam@example.net", ["hello@housing.test", "victim@example.com"], make_mail()
        )
    assert set(refused) == {"victim@example.com"}
    drain()
    [record] = feed_records(connection)
    assert record.source.recipients == ["hello@housing.test"]


def test_size_is_advertised_and_enforced(
    settings: Settings, intake_ctx: IntakeContext, connection: redis.Redis
) -> None:
    small = settings.model_copy(update={"max_message_bytes": 4096})
    ctx = IntakeContext.from_settings(small, connection)
    controller = SMTPController(SMTPHandler(ctx), small)
    controller.start()
    try:
        with smtplib.SMTP(small.bind_host, small.smtp_port, timeout=10) as client:
            client.ehlo("client.example.net")
            assert client.esmtp_features["size"] == "4096"
            code, _ = client.docmd("MAIL", "FROM:<sam@example.net> SIZE=999999")
            assert code == 552
        with smtplib.SMTP(small.bind_host, small.smtp_port, timeout=10) as client:
            # A client that does not declare the size is stopped at the data stage.
            client.ehlo("client.example.net")
            assert client.docmd("MAIL", "FROM:<sam@example.net>")[0] == 250
            assert client.docmd("RCPT", "TO:<hello@housing.test>")[0] == 250
            code, _ = client.data(make_mail("too long a complaint\r\n" * 400))
            assert code == 552
    finally:
        controller.stop()
    assert connection.llen("rq:queue:intake") == 0


def test_internal_failure_answers_451_not_500(
    smtp_server: tuple[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(raw: bytes) -> tuple[str, str | None]:
        raise ValueError("internal detail that must not reach the client")

    monkeypatch.setattr(smtp_module, "email_identity", broken)
    with (
        smtplib.SMTP(*smtp_server, timeout=10) as client,
        pytest.raises(smtplib.SMTPDataError) as refused,
    ):
        client.sendmail("sam@example.net", ["hello@housing.test"], make_mail())
    assert refused.value.smtp_code == 451
    assert b"4.3.0" in refused.value.smtp_error
    assert b"internal detail" not in refused.value.smtp_error
    assert b"ValueError" not in refused.value.smtp_error


def test_disk_unavailable_answers_451_and_nothing_is_queued(
    settings: Settings, connection: redis.Redis
) -> None:
    settings.data_dir.mkdir(parents=True)
    settings.blob_dir.write_text("not a directory")  # the blob store cannot be written
    ctx = IntakeContext.from_settings(settings, connection)
    controller = SMTPController(SMTPHandler(ctx), settings)
    controller.start()
    try:
        with (
            smtplib.SMTP(settings.bind_host, settings.smtp_port, timeout=10) as client,
            pytest.raises(smtplib.SMTPDataError) as refused,
        ):
            client.sendmail("sam@example.net", ["hello@housing.test"], make_mail())
    finally:
        controller.stop()
    assert refused.value.smtp_code == 451
    assert connection.llen("rq:queue:intake") == 0


def test_redis_outage_gives_451_and_nothing_is_lost(
    settings: Settings, tmp_path: Path, relay: object
) -> None:
    server = EmbeddedRedis(tmp_path / "own-redis")
    url = server.start()
    own = settings.model_copy(update={"redis_url": url})
    connection = connect(url)
    ctx = IntakeContext.from_settings(own, connection)
    controller = SMTPController(SMTPHandler(ctx), own)
    controller.start()
    confirmed: set[str] = set()
    deferred: list[bytes] = []
    try:
        for number in range(30):
            if number == 10:
                server.stop()
            raw = make_mail(
                body=f"Complaint number {number}", message_id=f"<c{number}@example.net>"
            )
            try:
                with smtplib.SMTP(own.bind_host, own.smtp_port, timeout=20) as client:
                    client.sendmail("sam@example.net", ["hello@housing.test"], raw)
                confirmed.add(f"<c{number}@example.net>")
            except smtplib.SMTPDataError as exc:
                assert exc.smtp_code == 451
                deferred.append(raw)
        assert len(confirmed) == 10 and len(deferred) == 20
        server.start()  # same directory: the append-only file brings back what was confirmed
        for raw in deferred:  # the sending servers retry
            with smtplib.SMTP(own.bind_host, own.smtp_port, timeout=20) as client:
                client.sendmail("sam@example.net", ["hello@housing.test"], raw)
        from workers.runner import run_worker

        run_worker(own, url, burst=True)
        records = feed_records(connection)
        assert len(records) == 30
        assert {r.source.message_id for r in records} == {f"<c{n}@example.net>" for n in range(30)}
    finally:
        controller.stop()
        server.stop()


def test_idle_client_is_disconnected(settings: Settings, connection: redis.Redis) -> None:
    quick = settings.model_copy(update={"smtp_idle_timeout_seconds": 0.5})
    controller = SMTPController(SMTPHandler(IntakeContext.from_settings(quick, connection)), quick)
    controller.start()
    try:
        with socket.create_connection((quick.bind_host, quick.smtp_port), timeout=5) as sock:
            assert sock.recv(1024).startswith(b"220")
            time.sleep(1.5)
            data = sock.recv(1024)
            assert data.startswith(b"421") or data == b""
            assert sock.recv(1024) == b""  # closed
    finally:
        controller.stop()


def test_a_client_that_keeps_talking_stays_until_it_falls_silent(
    settings: Settings, connection: redis.Redis
) -> None:
    quick = settings.model_copy(update={"smtp_idle_timeout_seconds": 0.5})
    controller = SMTPController(SMTPHandler(IntakeContext.from_settings(quick, connection)), quick)
    controller.start()
    try:
        client = smtplib.SMTP(quick.bind_host, quick.smtp_port, timeout=5)
        started = time.monotonic()
        while time.monotonic() - started < 1.5:  # three idle timeouts, never idle for one
            assert client.docmd("NOOP")[0] == 250
            time.sleep(0.2)
        time.sleep(1.0)
        with pytest.raises((smtplib.SMTPServerDisconnected, OSError)):
            client.docmd("NOOP")
            client.docmd("NOOP")
    finally:
        controller.stop()


def test_flooding_client_is_cut_off(settings: Settings, connection: redis.Redis) -> None:
    limited = settings.model_copy(update={"smtp_command_limit": 10})
    controller = SMTPController(
        SMTPHandler(IntakeContext.from_settings(limited, connection)), limited
    )
    controller.start()
    try:
        client = smtplib.SMTP(limited.bind_host, limited.smtp_port, timeout=5)
        codes = []
        with pytest.raises(smtplib.SMTPServerDisconnected):
            for _ in range(100):
                codes.append(client.docmd("NOOP")[0])
        assert 421 in codes
        assert len(codes) < 100
    finally:
        controller.stop()


def test_starttls_when_a_certificate_is_configured(
    settings: Settings, connection: redis.Redis, tmp_path: Path, drain: Callable[[], None]
) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    tls = settings.model_copy(update={"smtp_tls_cert": cert, "smtp_tls_key": key})
    controller = SMTPController(SMTPHandler(IntakeContext.from_settings(tls, connection)), tls)
    controller.start()
    try:
        with smtplib.SMTP(tls.bind_host, tls.smtp_port, timeout=10) as client:
            client.ehlo("client.example.net")
            assert client.has_extn("starttls")
            context = ssl.create_default_context(cafile=str(cert))
            context.check_hostname = False
            client.starttls(context=context)
            client.ehlo("client.example.net")
            client.sendmail("sam@example.net", ["hello@housing.test"], make_mail())
    finally:
        controller.stop()
    drain()
    assert len(feed_records(connection)) == 1


def test_free_port_helper_gives_distinct_ports() -> None:
    assert free_port() != 0


@pytest.mark.parametrize("limit", [0, 8])
def test_addresses_are_read_as_aiosmtpd_reads_them(settings: Settings, limit: int) -> None:
    """The listener's own reading of MAIL and RCPT arguments gives aiosmtpd's answers."""
    from aiosmtpd.smtp import SMTP

    ctx = IntakeContext.from_settings(settings, connect(settings.redis_url))
    handler = SMTPHandler(ctx)
    protocol = smtp_module.make_smtp(handler, settings)
    protocol.local_part_limit = limit
    arguments = [f"<{a}>" for a in ACCEPTED + REFUSED] + ACCEPTED + REFUSED
    arguments += ["<a@b.example> SIZE=100 BODY=8BITMIME", "a@b.example SMTPUTF8", "<>", "  <x@y>"]
    arguments += ["<unterminated@x", "no at sign", "<@route:a@b>", "<élève@école.fr>"]
    arguments += ["<a very long local part that goes on@x.example>", "<(comment)a@b>", ">"]
    # Around the plain form read without the parser: spacing, comments, dots, odd atext.
    plain = ["<a@b.example>", "<first.last+tag@mail.housing.test>", "<A_B=c{d}~e@x-y.z9>"]
    arguments += plain + [f"{p} SIZE=300" for p in plain] + [f"{p}  SIZE=1" for p in plain]
    arguments += ["<a@b.example>\tSIZE=1", "<a@b.example> (c) SIZE=1", "<a@b.example>SIZE=1"]
    arguments += ["<a@b.example> ", "<a@b.example>\n", "<a..b@c.d>", "<.a@c.d>", "<a.@c.d>"]
    arguments += ["<a@c..d>", "<a@.c>", "<a@c.>", "<a@-c.d>", "<a@c_d.e>", "<a@[1.2.3.4]>"]
    arguments += ["<a@b.example>>", "<<a@b.example>", "<a@b@c.d>", "<a b@c.d>", '<"a"@c.d>']
    try:
        for argument in arguments:
            assert protocol._getaddr(argument) == SMTP._getaddr(protocol, argument), argument
    finally:
        handler.batcher.shutdown()
        ctx.connection.close()


def test_a_connection_knows_every_verb_and_auth_mechanism_aiosmtpd_knows(
    settings: Settings,
) -> None:
    """Each connection lists its verbs and mechanisms cheaply; the lists must be whole."""
    import asyncio

    from aiosmtpd.smtp import SMTP

    ctx = IntakeContext.from_settings(settings, connect(settings.redis_url))
    handler = SMTPHandler(ctx)
    loop = asyncio.new_event_loop()
    try:
        ours = smtp_module.make_smtp(handler, settings)
        theirs = SMTP(handler, loop=loop)
        assert ours._smtp_methods.keys() == theirs._smtp_methods.keys()
        assert {"HELO", "EHLO", "MAIL", "RCPT", "DATA", "STARTTLS", "QUIT"} <= set(
            ours._smtp_methods
        )
        assert all(method.__self__ is ours for method in ours._smtp_methods.values())
        assert ours._auth_methods.keys() == theirs._auth_methods.keys()
        assert ours._handle_hooks.keys() == theirs._handle_hooks.keys()
        listed = object.__dir__(handler)  # every attribute, as aiosmtpd would list them
        hooks = {n.removeprefix("handle_") for n in listed if n.startswith("handle_")}
        assert set(ours._handle_hooks) == hooks >= {"RCPT", "DATA", "exception"}
        assert all(hook.__self__ is handler for hook in ours._handle_hooks.values())
    finally:
        loop.close()
        handler.batcher.shutdown()
        ctx.connection.close()
