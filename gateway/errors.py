"""The gateway's errors, one flat hierarchy.

Channel adapters turn these into their transport's answer: a temporary error becomes SMTP
451 or HTTP 503 so the sender retries; a sender error becomes a permanent refusal.
"""

from __future__ import annotations


class IntakeError(Exception):
    """Base of every error the gateway raises on purpose."""


class SettingsError(IntakeError):
    """A setting is missing or invalid; start-up stops with this one line."""


class TemporaryError(IntakeError):
    """Storage or queue is unavailable: nothing was confirmed, the sender must retry."""


class StorageError(TemporaryError):
    """The blob store could not write durably (disk full, read-only, gone)."""


class QueueError(TemporaryError):
    """Redis refused or did not answer while recording or queueing a message."""


class SenderError(IntakeError):
    """The input is the sender's fault and will not succeed on retry."""


class RejectedError(SenderError):
    """Refused with an explicit answer for each transport."""

    def __init__(self, message: str, smtp_reply: str, http_status: int) -> None:
        super().__init__(message)
        self.smtp_reply = smtp_reply
        self.http_status = http_status


class RecordNotFoundError(IntakeError):
    """A job names a record the ledger does not hold."""


class RulesError(SettingsError):
    """A rules or directory file is malformed; the message names the file and line."""


class TemplateError(SettingsError):
    """A message template does not compile; the message names the template and line."""


class EmbeddedRedisError(IntakeError):
    """The embedded Redis server could not be started."""


class DeliveryError(IntakeError):
    """An outbound message (acknowledgement, redirect) could not be handed over."""

    def __init__(self, message: str, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class SuppressedError(DeliveryError):
    """The recipient asked not to be messaged (an opt-out): never sent, never retried."""

    def __init__(self, message: str) -> None:
        super().__init__(message, permanent=True)


class StepBusyError(IntakeError):
    """Another worker holds the claim on this step; the job is retried later."""


class MailboxError(IntakeError):
    """An IMAP mailbox could not be read; its poller backs off and connects again."""


class MailboxAuthError(MailboxError):
    """The IMAP server refused the mailbox's username, password or token."""


class MailboxCertificateError(MailboxError):
    """The IMAP server's TLS certificate could not be verified."""


class MailboxLockLostError(IntakeError):
    """Another poller holds a mailbox's lease; this one must stop touching the mailbox."""


class RequestTooLargeError(SenderError):
    """An HTTP request body is larger than its endpoint takes (answered 413)."""


class RateLimitedError(SenderError):
    """Too many submissions from one address; answered 429 with when to try again."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class IdempotencyConflictError(SenderError):
    """An Idempotency-Key was used before with a different request body (answered 409)."""
