"""Each mailbox's state in Redis, for ``/healthz`` and ``/metrics`` wherever they run.

The poller that holds a mailbox's lease writes one JSON value per mailbox: its state, how
many attempts in a row have failed and the cause of the last failure (an error's name
and a cause written for a person, never a password, a token or a message). A mailbox is
*failing* once ``INTAKE_IMAP_FAILING_AFTER`` attempts in a row have failed; one failure
(a server restart, a dropped connection) is only a reconnection.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import redis

from gateway.ledger import PREFIX, text

STATUS_KEY = f"{PREFIX}:imap:status"


@dataclass
class MailboxStatus:
    state: str  # "connecting", "idle", "polling", "working", "backing_off", "stopped"
    failures: int = 0
    cause: str | None = None
    error: str | None = None
    updated_at: str = ""

    def failing(self, threshold: int) -> bool:
        return self.failures >= threshold


def write_status(connection: redis.Redis, mailbox: str, status: MailboxStatus) -> None:
    status.updated_at = datetime.now(UTC).isoformat(timespec="seconds")
    connection.hset(STATUS_KEY, mailbox, json.dumps(asdict(status)))


def read_statuses(connection: redis.Redis) -> dict[str, MailboxStatus]:
    """Every mailbox's last reported status (one round trip)."""
    raw = connection.hgetall(STATUS_KEY)
    return {text(k): MailboxStatus(**json.loads(v)) for k, v in raw.items()}


def health(connection: redis.Redis, threshold: int) -> dict[str, Any]:
    """The mailboxes part of ``/healthz``: each mailbox, and the names of failing ones."""
    statuses = read_statuses(connection)
    return {
        "mailboxes": {
            name: {
                "state": status.state,
                "failing": status.failing(threshold),
                "failures": status.failures,
                "cause": status.cause,
                "updated_at": status.updated_at,
            }
            for name, status in sorted(statuses.items())
        },
        "failing_mailboxes": sorted(n for n, s in statuses.items() if s.failing(threshold)),
    }
