"""Where a mailbox's poller got to: (folder, UIDVALIDITY, last UID taken in), in Redis.

The checkpoint is what makes a round cheap: it asks the server only for UIDs above it.
It is advanced after a message has been taken in and moved, never before, so a crash
leaves it behind the truth and the next round looks again (the idempotency keys make
that second look harmless). It only moves forward, and only within the UIDVALIDITY it was
written for, so a slow poller that lost its lease cannot drag it back.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis

from gateway.ledger import PREFIX, text

_ADVANCE = """
if redis.call('HGET', KEYS[1], 'uidvalidity') ~= ARGV[1]
   or redis.call('HGET', KEYS[1], 'folder') ~= ARGV[2] then
  return 0
end
local last = tonumber(redis.call('HGET', KEYS[1], 'last_uid') or '0')
if tonumber(ARGV[3]) > last then redis.call('HSET', KEYS[1], 'last_uid', ARGV[3]) end
return 1
"""


def checkpoint_key(mailbox: str) -> str:
    return f"{PREFIX}:imap:{mailbox}:checkpoint"


@dataclass(frozen=True)
class Checkpoint:
    folder: str
    uidvalidity: int
    last_uid: int


class Checkpoints:
    """Reads and writes the checkpoints of mailboxes."""

    def __init__(self, connection: redis.Redis) -> None:
        self.redis = connection
        self._advance = connection.register_script(_ADVANCE)

    def load(self, mailbox: str) -> Checkpoint | None:
        raw = self.redis.hgetall(checkpoint_key(mailbox))
        if not raw:
            return None
        data = {text(k): text(v) for k, v in raw.items()}
        return Checkpoint(data["folder"], int(data["uidvalidity"]), int(data["last_uid"]))

    def start(self, mailbox: str, folder: str, uidvalidity: int) -> Checkpoint:
        """Begin again from UID 0: a new mailbox, a new folder, or a new UIDVALIDITY."""
        mapping = {"folder": folder, "uidvalidity": str(uidvalidity), "last_uid": "0"}
        self.redis.hset(checkpoint_key(mailbox), mapping=mapping)  # type: ignore[arg-type]
        return Checkpoint(folder, uidvalidity, 0)

    def advance(self, mailbox: str, at: Checkpoint, uid: int) -> None:
        self._advance(keys=[checkpoint_key(mailbox)], args=[at.uidvalidity, at.folder, uid])
