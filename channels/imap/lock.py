"""A lease per mailbox in Redis, so that two pollers never work one mailbox at once.

Two machines, or a restart that overlaps the old process, may both run a poller for the
same mailbox. Each poller takes the lease before it touches the mailbox and renews it as
it goes; the one that cannot take it waits. A poller that stalls past its lease loses it,
and finds out at its next renewal, before its next message: the idempotency keys catch
the one message that both might then take in, so the lease keeps pollers from racing
and the keys keep any race harmless.
"""

from __future__ import annotations

import secrets
import time

import redis

from gateway.errors import MailboxLockLostError
from gateway.ledger import PREFIX

# Renew or release only a lease we still hold; another poller's lease is left alone.
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def lock_key(mailbox: str) -> str:
    return f"{PREFIX}:imap:{mailbox}:lock"


class MailboxLock:
    """One poller's claim on one mailbox; ``seconds`` is the lease."""

    def __init__(self, connection: redis.Redis, mailbox: str, seconds: float) -> None:
        self.redis = connection
        self.key = lock_key(mailbox)
        self.ms = int(seconds * 1000)
        self.token = secrets.token_hex(16)
        self.held = False
        self.renewed_at = 0.0
        self._renew = connection.register_script(_RENEW)
        self._release = connection.register_script(_RELEASE)

    def acquire(self) -> bool:
        self.held = bool(self.redis.set(self.key, self.token, px=self.ms, nx=True))
        self.renewed_at = time.monotonic()
        return self.held

    def renew(self) -> None:
        """Extend the lease; raise :class:`MailboxLockLostError` if it is no longer ours."""
        if not self.held or not int(self._renew(keys=[self.key], args=[self.token, self.ms])):
            self.held = False
            raise MailboxLockLostError(self.key)
        self.renewed_at = time.monotonic()

    def keep(self) -> None:
        """Renew the lease once a quarter of it has passed: until then it is surely ours."""
        if not self.held or time.monotonic() - self.renewed_at > self.ms / 4000:
            self.renew()

    def release(self) -> None:
        if self.held:
            self.held = False
            self._release(keys=[self.key], args=[self.token])
