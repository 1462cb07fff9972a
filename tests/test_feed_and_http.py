"""The back office's side: the feed read through consumer groups, health and metrics."""

from __future__ import annotations

import smtplib
from collections.abc import Callable
from pathlib import Path

import redis
from fastapi.testclient import TestClient

from gateway.connection import connect
from gateway.feed import FeedConsumer
from gateway.http import create_app
from gateway.settings import Settings
from tests.conftest import make_mail


def deliver(server: tuple[str, int], count: int) -> None:
    with smtplib.SMTP(*server, timeout=10) as client:
        for number in range(count):
            client.sendmail(
                f"tenant{number}@example.net",
                ["hello@housing.test"],
                make_mail(
                    body=f"Complaint {number}",
                    message_id=f"<f{number}@example.net>",
                    sender=f"tenant{number}@example.net",
                ),
            )


def test_a_consumer_group_gets_every_record_once_and_reclaims_a_dead_consumers(
    smtp_server: tuple[str, int], connection: redis.Redis, drain: Callable[[], None]
) -> None:
    deliver(smtp_server, 5)
    drain()
    dead = FeedConsumer(connection, "back-office", "crashed-consumer", min_idle_ms=0)
    dead.ensure_group()
    taken = dead.read(count=2, block_ms=None)
    assert len(taken) == 2  # taken, never acknowledged: this consumer dies here

    alive = FeedConsumer(connection, "back-office", "live-consumer", min_idle_ms=0)
    seen: list[str] = []
    for entry in alive.read(count=10, block_ms=None):  # the two abandoned ones come back
        seen.append(entry.record.reference)
        alive.ack(entry.entry_id)
    for entry in alive.read(count=10, block_ms=None):
        seen.append(entry.record.reference)
        alive.ack(entry.entry_id)
    assert sorted(seen) == sorted(set(seen)) and len(seen) == 5
    assert alive.read(count=10, block_ms=None) == []
    assert connection.xpending("intake:cases", "back-office")["pending"] == 0

    other = FeedConsumer(connection, "reporting", "r1")  # another system sees all five too
    other.ensure_group()
    assert len(other.read(count=10, block_ms=None)) == 5


def test_health_and_metrics(
    settings: Settings,
    connection: redis.Redis,
    smtp_server: tuple[str, int],
    drain: Callable[[], None],
) -> None:
    deliver(smtp_server, 2)
    client = TestClient(create_app(settings, connection))
    health = client.get("/healthz")
    assert health.status_code == 200
    assert health.json()["queue_depth"] == 2
    assert health.json()["unfinished_records"] == 2
    drain()
    health = client.get("/healthz").json()
    assert health["queue_depth"] == 0 and health["unfinished_records"] == 0
    metrics = client.get("/metrics").text
    assert 'intake_accepted_total{channel="email"} 2.0' in metrics
    assert "intake_published_total 2.0" in metrics
    assert 'intake_acknowledgements_total{channel="email"} 2.0' in metrics
    assert "intake_feed_length 2.0" in metrics
    assert client.get("/docs").status_code == 200
    assert "/healthz" in client.get("/openapi.json").json()["paths"]


def test_health_says_503_when_redis_is_unreachable(settings: Settings, tmp_path: Path) -> None:
    gone = connect(f"unix://{tmp_path}/no-such.sock")
    client = TestClient(create_app(settings, gone))
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["redis"] == "down"
    assert "intake_redis_up 0.0" in client.get("/metrics").text
