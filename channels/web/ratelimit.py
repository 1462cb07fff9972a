"""A per-address limit on form submissions, counted in Redis so every process shares it.

Fixed windows: one counter per address per window, expiring with it. The address is
hashed before it becomes a key, so Redis holds no IP addresses. Addresses are as the
HTTP server reports them; behind a proxy, uvicorn's ``FORWARDED_ALLOW_IPS`` decides
whose X-Forwarded-For is believed.
"""

from __future__ import annotations

import hashlib
import math
import time

import redis

from gateway.errors import QueueError, RateLimitedError
from gateway.ledger import PREFIX


class RateLimiter:
    def __init__(self, connection: redis.Redis, limit: int, window_seconds: int) -> None:
        self.connection = connection
        self.limit = limit
        self.window = window_seconds

    def hit(self, address: str) -> None:
        """Count one submission from ``address``; RateLimitedError when over the limit."""
        now = time.time()
        window = int(now // self.window)
        digest = hashlib.sha256(address.encode("utf-8", "replace")).hexdigest()[:32]
        key = f"{PREFIX}:webrate:{digest}:{window}"
        try:
            with self.connection.pipeline(transaction=True) as pipe:
                pipe.incr(key)
                pipe.expire(key, self.window + 60)
                count, _ = pipe.execute()
        except redis.RedisError as exc:
            raise QueueError(f"could not count the submission: {type(exc).__name__}") from exc
        if int(count) > self.limit:
            retry_after = max(1, math.ceil((window + 1) * self.window - now))
            raise RateLimitedError("too many submissions from one address", retry_after)
