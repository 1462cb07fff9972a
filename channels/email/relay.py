"""One open connection to the mail relay per worker thread, reused from send to send.

Opening an event loop and an SMTP session (greeting, EHLO, perhaps STARTTLS and AUTH)
for every acknowledgement cost more than composing and sending it. A connection is
reused while the relay has not hung up on it (see ``_quiet``); one that has been idle too
long, that has carried ``MESSAGES_PER_CONNECTION`` messages, or that the relay closed is
replaced first. A relay answering 421 (closing the channel) has not taken the message:
it is sent once more on a fresh connection. Any other failure drops the connection and
is raised to the caller.
"""

from __future__ import annotations

import asyncio
import atexit
import select
import threading
import time
from contextlib import suppress
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import aiosmtplib

SEND_TIMEOUT = 30.0
IDLE_SECONDS = 60.0  # relays drop idle clients after a few minutes; stay well inside that
MESSAGES_PER_CONNECTION = 100
SERVICE_CLOSING = 421


@dataclass(frozen=True)
class Envelope:
    sender: str  # "" for the null sender
    recipients: list[str]
    data: bytes
    options: tuple[str, ...] = ()


class RelayConnection:
    """An aiosmtplib session to one relay, on an event loop of its own."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._parts = urlsplit(url)
        self._runner = asyncio.Runner()
        self._client: aiosmtplib.SMTP | None = None
        self._sent = 0
        self._last_used = 0.0

    def send(self, envelope: Envelope) -> None:
        self._runner.run(self._send(envelope))

    def close(self) -> None:
        try:
            self._runner.run(self._disconnect(polite=True))
        finally:
            self._runner.close()

    async def _send(self, envelope: Envelope) -> None:
        for attempt in (1, 2):
            client = await self._connected()
            try:
                await client.sendmail(
                    envelope.sender,
                    envelope.recipients,
                    envelope.data,
                    mail_options=list(envelope.options),
                )
            except aiosmtplib.SMTPResponseException as exc:
                await self._disconnect(polite=False)
                if exc.code == SERVICE_CLOSING and attempt == 1:
                    continue
                raise
            except BaseException:
                await self._disconnect(polite=False)
                raise
            self._sent += 1
            self._last_used = time.monotonic()
            return

    async def _connected(self) -> aiosmtplib.SMTP:
        client = self._client
        if client is not None and self._reusable(client):
            return client
        await self._disconnect(polite=client is not None and _quiet(client))
        return await self._connect()

    def _reusable(self, client: aiosmtplib.SMTP) -> bool:
        return (
            client.is_connected
            and self._sent < MESSAGES_PER_CONNECTION
            and time.monotonic() - self._last_used < IDLE_SECONDS
            and _quiet(client)
        )

    async def _connect(self) -> aiosmtplib.SMTP:
        url = self._parts
        implicit_tls = url.scheme == "smtps"
        client = aiosmtplib.SMTP(
            hostname=url.hostname or "localhost",
            port=url.port or (465 if implicit_tls else 25),
            use_tls=implicit_tls,
            start_tls=url.scheme == "smtp+starttls",
            timeout=SEND_TIMEOUT,
        )
        await client.connect()
        try:
            if url.username:
                await client.login(unquote(url.username), unquote(url.password or ""))
        except BaseException:
            client.close()
            raise
        self._client, self._sent = client, 0
        return client

    async def _disconnect(self, *, polite: bool) -> None:
        client, self._client = self._client, None
        if client is None or not client.is_connected:
            return
        if polite:
            try:
                await client.quit()
                return
            except (aiosmtplib.SMTPException, OSError):
                pass
        client.close()


_local = threading.local()
_open: set[RelayConnection] = set()
_open_lock = threading.Lock()


def relay_connection(url: str) -> RelayConnection:
    """This thread's connection to the relay at ``url`` (one relay per thread at a time)."""
    current: RelayConnection | None = getattr(_local, "connection", None)
    if current is not None and current.url == url:
        return current
    if current is not None:
        _forget(current)
    connection = RelayConnection(url)
    _local.connection = connection
    with _open_lock:
        _open.add(connection)
    return connection


def _forget(connection: RelayConnection) -> None:
    with _open_lock:
        _open.discard(connection)
    with suppress(Exception):  # closing a dead connection must not stop a send or an exit
        connection.close()


@atexit.register
def _close_all() -> None:
    with _open_lock:
        connections = list(_open)
    for connection in connections:
        _forget(connection)


def _quiet(client: aiosmtplib.SMTP) -> bool:
    """True when the relay has sent nothing since its last reply.

    Between transactions a relay speaks only to hang up: a closed connection, or a 421
    before closing it, makes the socket readable. Polling it costs no round trip, unlike a
    NOOP; a connection that died without a word fails at MAIL, before any of the message
    was taken, and the send is retried.
    """
    transport = client.transport
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is None:
        return False
    readable, _, _ = select.select([sock.fileno()], [], [], 0)
    return not readable
