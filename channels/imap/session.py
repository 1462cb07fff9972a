"""One logged-in IMAP connection to a mailbox, and the errors of opening one, explained.

TLS is implicit (port 993) or STARTTLS (port 143), with the certificate verified by
default against the system's trust store or ``ca_file``; ``tls: none`` is for a server on
the same host or private network only. Login is with a password or an OAuth2 access token
(XOAUTH2). Every socket operation has a timeout, so a dead connection raises instead of
hanging.

A failure to open is turned into one typed error whose message is a cause a person can
act on — refused login, untrusted certificate, unreachable host — and never includes the
password or the token, nor the server's own words (which may echo the username).
"""

from __future__ import annotations

import contextlib
import socket
import ssl
from dataclasses import dataclass

from imapclient import IMAPClient, SocketTimeout
from imapclient.exceptions import IMAPClientError, LoginError

from gateway.errors import MailboxAuthError, MailboxCertificateError, MailboxError
from gateway.settings import IMAPMailbox

# What a dropped or broken connection raises from inside imapclient and imaplib.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (IMAPClientError, OSError, EOFError)


def tls_context(mailbox: IMAPMailbox) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(mailbox.ca_file) if mailbox.ca_file else None)
    if not mailbox.verify_certificate:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


@dataclass
class Session:
    """A connection with the mailbox's folders ready and the capabilities that matter."""

    client: IMAPClient
    mailbox: IMAPMailbox
    can_move: bool
    can_uidplus: bool
    can_idle: bool

    def select(self) -> int:
        """Select the folder read from; its UIDVALIDITY."""
        return int(self.client.select_folder(self.mailbox.folder)[b"UIDVALIDITY"])

    def abort(self) -> None:
        """Break the connection from another thread, so a stuck call raises at once."""
        with contextlib.suppress(OSError):
            self.client.socket().shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        try:
            self.client.logout()
        except Exception:  # the connection is often already gone: nothing to tell
            with contextlib.suppress(Exception):
                self.client.shutdown()


def open_session(mailbox: IMAPMailbox, timeout: float) -> Session:
    """Connect, secure, log in, create missing folders; raise a :class:`MailboxError`."""
    client: IMAPClient | None = None
    try:
        client = _connect(mailbox, timeout)
        _login(client, mailbox)
        capabilities = set(client.capabilities())  # as of after login: MOVE appears then
        for folder in (mailbox.processed_folder, mailbox.unreadable_folder):
            if not client.folder_exists(folder):
                client.create_folder(folder)
        return Session(
            client=client,
            mailbox=mailbox,
            can_move=b"MOVE" in capabilities,
            can_uidplus=b"UIDPLUS" in capabilities,
            can_idle=b"IDLE" in capabilities,
        )
    except Exception as exc:
        if client is not None:
            Session(client, mailbox, False, False, False).close()
        if isinstance(exc, MailboxError):
            raise
        raise _explain(exc, mailbox) from exc


def _connect(mailbox: IMAPMailbox, timeout: float) -> IMAPClient:
    limits = SocketTimeout(connect=timeout, read=timeout)
    port = mailbox.effective_port
    if mailbox.tls == "implicit":
        return IMAPClient(
            mailbox.host, port, ssl=True, ssl_context=tls_context(mailbox), timeout=limits
        )
    client = IMAPClient(mailbox.host, port, ssl=False, timeout=limits)
    if mailbox.tls == "starttls":
        if not client.has_capability("STARTTLS"):
            client.shutdown()
            raise MailboxError(f"{mailbox.host}:{port} does not offer STARTTLS")
        client.starttls(tls_context(mailbox))
    return client


def _login(client: IMAPClient, mailbox: IMAPMailbox) -> None:
    try:
        if mailbox.oauth2_token is not None:
            client.oauth2_login(mailbox.username, mailbox.oauth2_token.get_secret_value())
        elif mailbox.password is not None:
            client.login(mailbox.username, mailbox.password.get_secret_value())
    except LoginError:
        raise MailboxAuthError(_refused(mailbox)) from None
    except IMAPClientError as exc:
        # oauth2_login reports a refused token as a plain error, not a LoginError.
        if "AUTHENTICATE" in str(exc).upper() or "AUTHENTICATIONFAILED" in str(exc).upper():
            raise MailboxAuthError(_refused(mailbox)) from None
        raise


def _refused(mailbox: IMAPMailbox) -> str:
    what = "OAuth2 access token (expired or revoked?)" if mailbox.oauth2_token else "password"
    return f"login refused by {mailbox.host}: check the username and {what}"


def _explain(exc: BaseException, mailbox: IMAPMailbox) -> MailboxError:
    where = f"{mailbox.host}:{mailbox.effective_port}"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return MailboxCertificateError(
            f"certificate of {where} not trusted: {exc.verify_message}"
            " (set ca_file for a private CA)"
        )
    if isinstance(exc, ssl.SSLError):
        return MailboxError(f"TLS with {where} failed: {exc.reason or type(exc).__name__}")
    if isinstance(exc, socket.timeout | TimeoutError):
        return MailboxError(f"{where} did not answer in time")
    if isinstance(exc, ConnectionRefusedError):
        return MailboxError(f"{where} refused the connection")
    if isinstance(exc, socket.gaierror):
        return MailboxError(f"{mailbox.host} could not be resolved")
    if isinstance(exc, OSError):
        return MailboxError(f"{where} could not be reached ({type(exc).__name__})")
    return MailboxError(f"{where}: {type(exc).__name__}")
