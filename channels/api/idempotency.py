"""The ``Idempotency-Key`` header: one record however often a caller retries a request.

Keys are scoped by API key, so two partners cannot collide. ``accept`` recognises a
repeat by the scoped key; this module adds the check ``accept`` cannot make: that a key
used again comes with the same body. The first body's hash is claimed with SET NX before
``accept`` runs, so of two concurrent requests with one key and different bodies, one
is refused however they interleave.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import redis

from gateway.errors import IdempotencyConflictError, QueueError
from gateway.ledger import PREFIX, text


def scoped_key(api_key_name: str, header: str) -> str:
    """The key ``accept`` records: the caller's key, hashed, under its API key's name."""
    digest = hashlib.sha256(header.encode("utf-8", "surrogateescape")).hexdigest()[:40]
    return f"api:{api_key_name}:{digest}"


def body_hash(body: dict[str, Any]) -> str:
    """The hash of a request as understood, so spacing and key order do not matter."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def claim(connection: redis.Redis, key: str, digest: str, ttl_seconds: int) -> None:
    """Bind ``key`` to the body ``digest``; IdempotencyConflictError if it has another."""
    redis_key = f"{PREFIX}:apibody:{key}"
    try:
        with connection.pipeline(transaction=True) as pipe:
            pipe.set(redis_key, digest, nx=True, ex=ttl_seconds)
            pipe.get(redis_key)
            _, bound = pipe.execute()
    except redis.RedisError as exc:
        raise QueueError(f"could not check the idempotency key: {type(exc).__name__}") from exc
    if bound is not None and text(bound) != digest:
        raise IdempotencyConflictError(
            "this Idempotency-Key was already used with a different request body"
        )
