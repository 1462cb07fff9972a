"""The SMTP listener: takes mail for our domains and confirms it only once it is safe.

Recipients are checked in ``handle_RCPT``, before any data is sent. ``handle_DATA`` does
the least work that makes the message safe — store it, record it, queue it — and answers
250 only after that; parsing waits for the worker. Any failure inside answers
``451 4.3.0`` so the sending server keeps the message and tries again: aiosmtpd's own
exception handler would answer 500 (a permanent failure that bounces the customer's
complaint) with the exception's text in it.
"""

from __future__ import annotations

import asyncio
import re
import ssl
from email._header_value_parser import AddrSpec, AngleAddr, get_addr_spec, get_angle_addr
from email.errors import HeaderParseError
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from channels.email.identity import email_identity
from channels.email.recipients import RecipientPolicy
from gateway.batching import AcceptBatcher
from gateway.errors import TemporaryError
from gateway.intake import Arrival, IntakeContext
from gateway.logs import get_logger
from gateway.settings import Settings

log = get_logger("channels.email.smtp")

TEMPORARY_FAILURE = "451 4.3.0 Temporary failure, please try again later"
# A path as nearly every client writes it: <dot-atom@dot-atom>, then nothing, or one space
# and parameters. It reads the same by eye as by the RFC 5322 parser; any other form is
# given to that parser.
_PLAIN_PATH = re.compile(
    r"<((?:[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+\.)*[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
    r"@(?:[A-Za-z0-9-]+\.)*[A-Za-z0-9-]+)>(?:\Z| (?=[^\s(]))"
)


class SMTPHandler:
    """aiosmtpd handler: one instance serves every connection of a listener."""

    def __init__(self, ctx: IntakeContext) -> None:
        self.ctx = ctx
        self.policy = RecipientPolicy(ctx.settings.domains)
        self.batcher = AcceptBatcher(ctx)
        self.in_flight = 0
        self.connections: set[IntakeSMTP] = set()

    def __dir__(self) -> list[str]:
        """The hooks and AUTH mechanisms only: aiosmtpd lists the handler's attributes for
        both as each connection opens, as it lists the connection's own (see
        ``IntakeSMTP.__dir__``)."""
        return _listed(type(self), ("handle_", "auth_"))

    def busy(self) -> bool:
        """True while a message is being stored or a client is part-way through one."""
        return self.in_flight > 0 or any(c.in_transaction for c in self.connections)

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        refusal = self.policy.refusal(address)
        if refusal is not None:
            log.info("smtp.rcpt_refused", reply=refusal[:9])
            return refusal
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw: bytes = envelope.original_content or b""
        self.in_flight += 1
        try:
            key, message_id = email_identity(raw)
            social = any(
                r.rpartition("@")[0].lower() == self.ctx.settings.social_mailbox
                for r in envelope.rcpt_tos
            )
            arrival = Arrival(
                channel="social" if social else "email",
                transport="smtp",
                normaliser="social_email" if social else "email",
                raw=raw,
                idempotency_key=key,
                meta={
                    "envelope_from": envelope.mail_from,
                    "recipients": list(envelope.rcpt_tos),
                    "message_id": message_id,
                },
            )
            # In a thread, with the messages of other connections that arrive meanwhile:
            # the disk's sync must not stall other connections, and if the client hangs up
            # now the message is stored all the same, so a resend is recognised as a repeat.
            receipt = await self.batcher.accept(arrival)
        except TemporaryError as exc:
            log.warning("smtp.deferred", error=type(exc).__name__)
            return TEMPORARY_FAILURE
        finally:
            self.in_flight -= 1
        log.info("smtp.accepted", record_id=receipt.id, repeat=receipt.duplicate, size=len(raw))
        return f"250 2.0.0 Accepted, reference {receipt.reference}"

    async def handle_exception(self, error: Exception) -> str:
        log.error("smtp.internal_error", error=type(error).__name__)
        return TEMPORARY_FAILURE


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    if not (settings.smtp_tls_cert and settings.smtp_tls_key):
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(settings.smtp_tls_cert, settings.smtp_tls_key)
    return context


class IntakeSMTP(SMTP):
    """aiosmtpd's protocol, made known to the handler so shutdown can wait for transactions.

    Lines may be longer than RFC 5321's 1,000 octets: some mailers send them, and refusing
    would bounce a customer's complaint; the normaliser copes with them.
    """

    line_length_limit = 256 * 1024

    def __dir__(self) -> list[str]:
        """The SMTP verbs and AUTH mechanisms only: aiosmtpd finds both by listing the
        connection's attributes as each connection opens, and ``inspect.getmembers`` reads
        every attribute it is given, properties included, which cost a third of opening
        one. What it finds is what aiosmtpd's own protocol finds."""
        return _listed(type(self), ("smtp_", "auth_"))

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self.event_handler.connections.add(self)

    def connection_lost(self, error: Exception | None) -> None:
        self.event_handler.connections.discard(self)
        super().connection_lost(error)

    @property
    def in_transaction(self) -> bool:
        return self.envelope is not None and self.envelope.mail_from is not None

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        """The address and the rest of a MAIL or RCPT argument, as aiosmtpd's own
        ``_getaddr`` reads them (``None, None`` when unreadable), without the typing class
        that version 1.4.6 defines on every call, which costs more than the parse."""
        if not arg:
            return "", ""
        plain = _PLAIN_PATH.match(arg)
        if plain:
            addr, rest = plain[1], arg[plain.end() :]
        else:
            address: AngleAddr | AddrSpec
            try:
                if arg.lstrip().startswith("<"):
                    address, rest = get_angle_addr(arg)
                else:
                    address, rest = get_addr_spec(arg)
            except HeaderParseError:
                return None, None
            addr = address.addr_spec
        localpart = addr.rpartition("@")[0]
        if self.local_part_limit and len(localpart) > self.local_part_limit:
            return None, None
        return addr, rest


_LISTED: dict[tuple[type, tuple[str, ...]], list[str]] = {}


def _listed(kind: type, prefixes: tuple[str, ...]) -> list[str]:
    """The names of ``kind``'s attributes that start with one of ``prefixes``, listed once."""
    key = (kind, prefixes)
    if key not in _LISTED:
        _LISTED[key] = [name for name in dir(kind) if name.startswith(prefixes)]
    return _LISTED[key]


def make_smtp(
    handler: SMTPHandler, settings: Settings, tls: ssl.SSLContext | None = None
) -> IntakeSMTP:
    """The protocol object for one connection, with the gateway's limits; ``tls`` is the
    listener's context, built once, since loading a certificate per connection is slow."""
    return IntakeSMTP(
        handler,
        hostname=settings.hostname,
        ident="intake-gateway",
        data_size_limit=settings.max_message_bytes,
        tls_context=tls,
        require_starttls=False,
        timeout=settings.smtp_idle_timeout_seconds,
        command_call_limit=settings.smtp_command_limit,
        enable_SMTPUTF8=True,
    )


class SMTPController(Controller):
    """Runs the listener in a thread, as aiosmtpd's Controller does, with our protocol."""

    def __init__(self, handler: SMTPHandler, settings: Settings, **kwargs: Any) -> None:
        self.settings = settings
        self.tls = tls_context(settings)
        super().__init__(handler, hostname=settings.bind_host, port=settings.smtp_port, **kwargs)

    def factory(self) -> IntakeSMTP:
        return make_smtp(self.handler, self.settings, self.tls)


async def serve(
    ctx: IntakeContext, stop: asyncio.Event, ready: asyncio.Event | None = None
) -> None:
    """Serve until ``stop`` is set, then let transactions under way finish, and return.

    The listening socket closes at once, so new connections go to another instance (or are
    retried by the sender); a client part-way through a message may finish it, up to
    ``shutdown_grace_seconds``.
    """
    settings = ctx.settings
    handler = SMTPHandler(ctx)
    tls = tls_context(settings)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: make_smtp(handler, settings, tls), host=settings.bind_host, port=settings.smtp_port
    )
    ports = sorted({sock.getsockname()[1] for sock in server.sockets})
    log.info("smtp.listening", host=settings.bind_host, ports=ports)
    if ready is not None:
        ready.set()
    await stop.wait()
    server.close()
    deadline = loop.time() + settings.shutdown_grace_seconds
    while handler.busy() and loop.time() < deadline:
        await asyncio.sleep(0.05)
    log.info(
        "smtp.stopped",
        unfinished=int(handler.busy()),
        batches=handler.batcher.runs,
        batched=handler.batcher.arrivals,
    )
    handler.batcher.shutdown()
