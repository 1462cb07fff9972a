"""The worker's connection to the mail relay: kept open between sends, replaced when it breaks.

Each case runs a real aiosmtpd server as the relay and sends through ``RelayConnection``;
what the relay received (and over which connections) is what a postmaster would check.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import aiosmtplib
import pytest
from aiosmtpd.controller import Controller

from channels.email import relay as relay_module
from channels.email.relay import Envelope, RelayConnection
from tests.conftest import free_port


class CountingHandler:
    """Keeps each message with the client port it came from; can refuse the next MAIL."""

    def __init__(self) -> None:
        self.messages: list[tuple[int, bytes]] = []
        self.greetings = 0
        self.refuse_next_mail: str | None = None
        self.hang_up_after_data = False
        self.lock = threading.Lock()

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        with self.lock:
            self.greetings += 1
        session.host_name = hostname
        return responses

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        refusal, self.refuse_next_mail = self.refuse_next_mail, None
        if refusal:
            return refusal
        envelope.mail_from = address
        return "250 OK"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if address.startswith("nobody@"):
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.messages.append((session.peer[1], envelope.content))
        if self.hang_up_after_data:  # as relays that close idle clients do, after the reply
            asyncio.get_running_loop().call_later(0.05, server.transport.close)
        return "250 OK"

    def ports(self) -> set[int]:
        return {port for port, _ in self.messages}


class RelayServer:
    def __init__(self) -> None:
        self.port = free_port()
        self.handler = CountingHandler()
        self.controller: Controller | None = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture
def server() -> Iterator[RelayServer]:
    relay = RelayServer()
    relay.start()
    yield relay
    relay.stop()


@pytest.fixture
def connection(server: RelayServer) -> Iterator[RelayConnection]:
    connection = RelayConnection(server.url)
    yield connection
    connection.close()


def envelope(number: int, recipient: str = "resident@example.net") -> Envelope:
    data = f"Subject: acknowledgement {number}\r\n\r\nReference CX-{number}\r\n".encode()
    return Envelope("", [recipient], data)


def test_consecutive_sends_share_one_connection(
    server: RelayServer, connection: RelayConnection
) -> None:
    for number in range(5):
        connection.send(envelope(number))
    assert len(server.handler.messages) == 5
    assert len(server.handler.ports()) == 1
    assert server.handler.greetings == 1


def test_a_relay_restarted_between_sends_gets_the_next_message(
    server: RelayServer, connection: RelayConnection
) -> None:
    connection.send(envelope(1))
    server.stop()
    server.start()
    connection.send(envelope(2))
    assert [content for _, content in server.handler.messages][-1].endswith(b"CX-2\r\n")
    assert len(server.handler.messages) == 2
    assert len(server.handler.ports()) == 2


def test_a_relay_closing_the_channel_gets_the_message_once_on_a_new_connection(
    server: RelayServer, connection: RelayConnection
) -> None:
    connection.send(envelope(1))
    server.handler.refuse_next_mail = "421 4.3.2 service shutting down"
    connection.send(envelope(2))
    assert len(server.handler.messages) == 2
    assert len(server.handler.ports()) == 2


def test_a_refused_recipient_is_raised_and_the_next_send_still_works(
    server: RelayServer, connection: RelayConnection
) -> None:
    with pytest.raises(aiosmtplib.SMTPRecipientsRefused):
        connection.send(envelope(1, "nobody@example.net"))
    connection.send(envelope(2))
    assert len(server.handler.messages) == 1


def test_a_permanent_refusal_of_the_sender_is_not_retried(
    server: RelayServer, connection: RelayConnection
) -> None:
    server.handler.refuse_next_mail = "550 5.7.1 not allowed"
    with pytest.raises(aiosmtplib.SMTPSenderRefused):
        connection.send(envelope(1))
    assert server.handler.messages == []


def test_a_long_used_connection_is_replaced(
    server: RelayServer, connection: RelayConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(relay_module, "MESSAGES_PER_CONNECTION", 2)
    for number in range(5):
        connection.send(envelope(number))
    assert len(server.handler.messages) == 5
    assert len(server.handler.ports()) == 3


def test_a_relay_that_is_down_raises_and_a_later_send_reaches_it(
    server: RelayServer, connection: RelayConnection
) -> None:
    server.stop()
    with pytest.raises(OSError):
        connection.send(envelope(1))
    server.start()
    connection.send(envelope(2))
    assert len(server.handler.messages) == 1


def test_a_relay_that_hangs_up_between_messages_gets_each_one_on_a_new_connection(
    server: RelayServer, connection: RelayConnection
) -> None:
    server.handler.hang_up_after_data = True
    for number in range(3):
        connection.send(envelope(number))
        time.sleep(0.2)  # the relay has closed the connection by the next send
    assert len(server.handler.messages) == 3
    assert len(server.handler.ports()) == 3
