"""One way to open Redis, with timeouts short enough that an outage is noticed.

A sender waiting on us must get a temporary refusal in seconds, not hang until its own
timeout, so every connection has connect and read timeouts.
"""

from __future__ import annotations

import redis


def connect(url: str) -> redis.Redis:
    """A client for ``url`` (redis://, rediss:// or unix://) returning bytes, as rq needs."""
    return redis.Redis.from_url(
        url,
        socket_connect_timeout=3,
        socket_timeout=10,
        health_check_interval=15,
        decode_responses=False,
    )
