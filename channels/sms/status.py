"""Delivery statuses of the messages we send, kept per message SID, only ever moving on.

Twilio reports each message's progress (queued, sent, delivered, or undelivered and
failed with an error code, read for WhatsApp) to ``/twilio/status``, and those
callbacks arrive out of order and more than once: "sent" may come after "delivered".
Statuses are ranked and one atomic script keeps the furthest, so a late "sent" never
overwrites "delivered". The first final status wins; only WhatsApp's "read" goes past
"delivered". A callback may even arrive before the API call that sent the message has
returned: the notifier's note of which record the SID belongs to is added beside the
status whenever it comes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import redis

from gateway.ledger import PREFIX, text

RANKS = {
    "accepted": 0,
    "scheduled": 0,
    "queued": 1,
    "sending": 2,
    "sent": 3,
    "delivered": 5,
    "undelivered": 5,
    "failed": 5,
    "canceled": 5,
    "partially_delivered": 5,
    "read": 6,
}
FAILURES = frozenset({"undelivered", "failed"})
TTL_SECONDS = 30 * 86400

_RECORD = """
local current = tonumber(redis.call('HGET', KEYS[1], 'rank') or '-1')
local moved = 0
if ARGV[1] ~= '' and tonumber(ARGV[2]) > current then
  redis.call('HSET', KEYS[1], 'status', ARGV[1], 'rank', ARGV[2], 'updated_at', ARGV[4])
  if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], 'error_code', ARGV[3]) end
  moved = 1
end
if ARGV[6] ~= '' then
  redis.call('HSET', KEYS[1], 'record_id', ARGV[6], 'purpose', ARGV[7], 'channel', ARGV[8])
end
redis.call('EXPIRE', KEYS[1], ARGV[5])
return {redis.call('HGET', KEYS[1], 'status') or '', moved}
"""


def key(message_sid: str) -> str:
    return f"{PREFIX}:sms:message:{message_sid}"


@dataclass(frozen=True)
class MessageStatus:
    message_sid: str
    status: str | None
    error_code: str | None
    record_id: str | None
    purpose: str | None


class DeliveryStatuses:
    def __init__(self, connection: redis.Redis) -> None:
        self.redis = connection
        self._record = connection.register_script(_RECORD)

    def update(self, message_sid: str, status: str, error_code: str | None = None) -> bool:
        """Record ``status`` unless a later one is known; True when it moved forward."""
        return self._run(message_sid, status, error_code)

    def link(
        self, message_sid: str, record_id: str, purpose: str, channel: str, status: str | None
    ) -> None:
        """Note which record and purpose a message we just sent belongs to."""
        self._run(message_sid, status or "", None, record_id, purpose, channel)

    def get(self, message_sid: str) -> MessageStatus:
        data = {text(k): text(v) for k, v in self.redis.hgetall(key(message_sid)).items()}
        return MessageStatus(
            message_sid=message_sid,
            status=data.get("status"),
            error_code=data.get("error_code"),
            record_id=data.get("record_id"),
            purpose=data.get("purpose"),
        )

    def _run(
        self,
        message_sid: str,
        status: str,
        error_code: str | None,
        record_id: str = "",
        purpose: str = "",
        channel: str = "",
    ) -> bool:
        rank = RANKS.get(status, -1) if status else -1
        reply = self._record(
            keys=[key(message_sid)],
            args=[
                status if rank >= 0 else "",
                rank,
                error_code or "",
                time.time(),
                TTL_SECONDS,
                record_id,
                purpose,
                channel,
            ],
        )
        return bool(int(reply[1]))
