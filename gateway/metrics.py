"""Prometheus metrics gathered from Redis, so every process's work shows in one place.

The SMTP listener, the HTTP app and the workers may run on different machines; the counts
that matter (accepted, published, acknowledged, requeued, dead) are kept in Redis by the
ledger, and this collector reads them, with the queue depths, at scrape time.
"""

from __future__ import annotations

from collections.abc import Iterable

import redis
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from channels.imap.status import read_statuses
from gateway.ledger import CASES_STREAM, DEAD, PENDING, STATS
from gateway.settings import Settings


class RedisCollector(Collector):
    def __init__(self, connection: redis.Redis, settings: Settings) -> None:
        self.redis = connection
        self.queue_key = f"rq:queue:{settings.queue_name}"
        self.failed_key = f"rq:failed:{settings.queue_name}"
        self.imap_failing_after = settings.imap_failing_after

    def collect(self) -> Iterable[Metric]:
        up = GaugeMetricFamily("intake_redis_up", "1 when Redis answered the scrape")
        try:
            with self.redis.pipeline(transaction=False) as pipe:
                pipe.hgetall(STATS)
                pipe.llen(self.queue_key)
                pipe.zcard(PENDING)
                pipe.hlen(DEAD)
                pipe.zcard(self.failed_key)
                pipe.exists(CASES_STREAM)
                stats, queued, pending, dead, failed, has_stream = pipe.execute()
            stream_length = self.redis.xlen(CASES_STREAM) if has_stream else 0
        except redis.RedisError:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        accepted = CounterMetricFamily("intake_accepted", "Messages accepted", labels=["channel"])
        acks = CounterMetricFamily(
            "intake_acknowledgements", "Acknowledgements sent", labels=["channel"]
        )
        for raw_name, raw_value in stats.items():
            name, value = raw_name.decode(), float(raw_value)
            if name.startswith("accepted:"):
                accepted.add_metric([name.split(":", 1)[1]], value)
            elif name.startswith("acknowledgements:"):
                acks.add_metric([name.split(":", 1)[1]], value)
        yield accepted
        yield acks
        yield from self._mailboxes(stats)
        decoded = {k.decode(): float(v) for k, v in stats.items()}
        for key, help_text in (
            ("published", "Records published to the feed"),
            ("repeated_deliveries", "Repeated deliveries recognised and not queued again"),
            ("dead", "Records given up on after repeated requeues"),
        ):
            counter = CounterMetricFamily(f"intake_{key}", help_text)
            counter.add_metric([], decoded.get(key, 0.0))
            yield counter
        for name, help_text, value in (
            ("intake_queue_depth", "Jobs waiting in the intake queue", queued),
            ("intake_unfinished_records", "Records accepted but not yet published", pending),
            ("intake_dead_records", "Records waiting for a person after repeated failures", dead),
            ("intake_failed_jobs", "Failed jobs kept for inspection", failed),
            ("intake_feed_length", "Entries on the back-office feed", stream_length),
        ):
            gauge = GaugeMetricFamily(name, help_text)
            gauge.add_metric([], float(value))
            yield gauge

    def _mailboxes(self, stats: dict[bytes, bytes]) -> Iterable[Metric]:
        """Per-mailbox IMAP counters (``imap_<what>:<mailbox>`` in the stats hash)."""
        families = {
            "imap_failures": CounterMetricFamily(
                "intake_imap_failures", "Failed IMAP connections or rounds", labels=["mailbox"]
            ),
            "imap_uidvalidity_changes": CounterMetricFamily(
                "intake_imap_uidvalidity_changes",
                "Mailboxes found rebuilt (UIDVALIDITY changed)",
                labels=["mailbox"],
            ),
            "imap_unreadable": CounterMetricFamily(
                "intake_imap_unreadable",
                "Messages moved to the unreadable folder",
                labels=["mailbox"],
            ),
        }
        for raw_name, raw_value in stats.items():
            kind, _, mailbox = raw_name.decode().partition(":")
            if kind in families:
                families[kind].add_metric([mailbox], float(raw_value))
        yield from families.values()
        failing = GaugeMetricFamily(
            "intake_imap_mailbox_failing", "1 while a mailbox keeps failing", labels=["mailbox"]
        )
        try:
            statuses = read_statuses(self.redis)
        except redis.RedisError:
            statuses = {}
        for name, status in statuses.items():
            failing.add_metric([name], float(status.failing(self.imap_failing_after)))
        yield failing
