"""Our suppression list: numbers that asked us to stop messaging them.

A number goes on it when its owner sends an opt-out keyword, or when Twilio refuses a
message to it with error 21610 (the owner opted out with Twilio or the carrier); it comes
off when they send START or UNSTOP. The list is ours, not only Twilio's, because
Twilio's block covers one sending number while we may send from several, and because a
message never sent is better than one refused. Numbers are stored as hashes, so that
reading the list does not display them. One list covers SMS and WhatsApp alike.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import redis

from channels.sms.numbers import number_key
from gateway.ledger import PREFIX, text

KEY = f"{PREFIX}:sms:suppressed"


@dataclass(frozen=True)
class Suppression:
    reason: str
    since: float


class SuppressionList:
    def __init__(self, connection: redis.Redis) -> None:
        self.redis = connection

    def add(self, number: str, reason: str) -> None:
        value = json.dumps({"reason": reason, "since": time.time()})
        self.redis.hset(KEY, number_key(number), value)

    def remove(self, number: str) -> None:
        self.redis.hdel(KEY, number_key(number))

    def get(self, number: str) -> Suppression | None:
        value = self.redis.hget(KEY, number_key(number))
        if value is None:
            return None
        data = json.loads(text(value))
        return Suppression(reason=str(data["reason"]), since=float(data["since"]))

    def __len__(self) -> int:
        return int(self.redis.hlen(KEY))
