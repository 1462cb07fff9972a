"""The once-only guard in front of every message we send to a customer.

Intent is recorded before the send (a claim with a lease) and the result after it. A
second job finds the result and sends nothing; a job that finds a live claim backs off;
a claim whose lease ran out means its worker died mid-send, and the message is sent
again with the same Message-ID (the only window for a repeat is between the relay's
250 and our note of it, a few milliseconds).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

import redis

from gateway.ledger import PREFIX, STATS

# KEYS: the message's outbox entry, then, with an allowance, the recipient's recent sends.
# ARGV: now, claim seconds, then with an allowance: record id, sends allowed, window seconds.
_CLAIM = """
local status = redis.call('HGET', KEYS[1], 'status')
if status == 'sent' then
  return {'sent', redis.call('HGET', KEYS[1], 'sent_at'), redis.call('HGET', KEYS[1], 'via')}
end
local claimed_until = tonumber(redis.call('HGET', KEYS[1], 'claimed_until') or '0')
if status == 'claimed' and claimed_until > tonumber(ARGV[1]) then return {'busy'} end
if KEYS[2] then
  -- Each record is counted once (NX), so a job run again counts nothing new.
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', tonumber(ARGV[1]) - tonumber(ARGV[5]))
  redis.call('ZADD', KEYS[2], 'NX', ARGV[1], ARGV[3])
  redis.call('EXPIRE', KEYS[2], ARGV[5])
  if redis.call('ZRANK', KEYS[2], ARGV[3]) >= tonumber(ARGV[4]) then return {'over'} end
end
local attempts = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
local lease_end = tonumber(ARGV[1]) + tonumber(ARGV[2])
redis.call('HSET', KEYS[1], 'status', 'claimed', 'claimed_until', lease_end)
return {'claimed', tostring(attempts)}
"""


@dataclass(frozen=True)
class Allowance:
    """At most ``sends`` messages to one recipient in ``seconds``: a guard against mail
    loops with autoresponders that do not say they are one."""

    recipient: str
    sends: int
    seconds: int

    def key(self) -> str:
        digest = hashlib.sha256(self.recipient.strip().lower().encode()).hexdigest()[:32]
        return f"{PREFIX}:ackrate:{digest}"


@dataclass(frozen=True)
class Claim:
    state: str  # "claimed" | "sent" | "busy" | "over" (the recipient's allowance is used up)
    attempts: int = 0
    sent_at: float | None = None
    via: str | None = None


class Outbox:
    def __init__(self, connection: redis.Redis, claim_seconds: int = 60) -> None:
        self.redis = connection
        self.claim_seconds = claim_seconds
        self._claim = connection.register_script(_CLAIM)

    @staticmethod
    def key(record_id: str, purpose: str) -> str:
        return f"{PREFIX}:outbox:{record_id}:{purpose}"

    def claim(self, record_id: str, purpose: str, allowance: Allowance | None = None) -> Claim:
        """Claim the send, unless it was sent, is being sent, or (with ``allowance``) the
        recipient has had all the messages allowed: all checked in one atomic step."""
        keys = [self.key(record_id, purpose)]
        args: list[str | float | int] = [time.time(), self.claim_seconds]
        if allowance is not None:
            keys.append(allowance.key())
            args += [record_id, allowance.sends, allowance.seconds]
        reply = self._claim(keys=keys, args=args)
        state = reply[0].decode()
        if state == "sent":
            return Claim(
                "sent", sent_at=float(reply[1]), via=reply[2].decode() if reply[2] else None
            )
        if state in ("busy", "over"):
            return Claim(state)
        return Claim("claimed", attempts=int(reply[1]))

    def sent(
        self, record_id: str, purpose: str, sent_at: float, via: str, count: str | None = None
    ) -> None:
        """Note the send; with ``count``, add one to that statistic in the same write."""
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(
                self.key(record_id, purpose),
                mapping={"status": "sent", "sent_at": sent_at, "via": via},
            )
            if count:
                pipe.hincrby(STATS, count, 1)
            pipe.execute()

    def release(self, record_id: str, purpose: str, status: str = "released") -> None:
        self.redis.hset(
            self.key(record_id, purpose), mapping={"status": status, "claimed_until": 0}
        )
