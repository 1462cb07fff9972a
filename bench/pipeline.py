"""Records per second through one pipeline worker, against rq draining no-op jobs; latency.

Throughput: each round pre-fills the intake queue on a private Redis (appendonly yes,
appendfsync always) by calling ``gateway.intake.accept`` for N distinct complaints from N
different senders, then times ONE worker process (``run_worker(burst=True)``, as ``intake
worker --burst`` runs it) draining them, the acknowledgements sent through a local
aiosmtpd sink standing in for the relay. It does so twice: over the email path's own
steps (``EMAIL_PATH``: normalise, acknowledge, publish) and over the whole pipeline
(``workers.pipeline.PIPELINE``, with triage, dedupe and redirect). On the same Redis,
rq's ``SimpleWorker`` drains N no-op jobs serialised as the gateway's are. The order
rotates every round; the figures to read are the medians of the per-round ratios.

Latency: ``intake smtp`` and one worker (``--workers``) run as they would in service while
smtplib clients send complaints at about half the measured worker rate for ~20 s. For
each message the time of the 250 reply (its text carries the reference) is compared with
the millisecond timestamp of the stream entry on ``intake:cases`` holding that reference.

    python bench/pipeline.py            # 3 rounds of 300 records, then 20 s of latency
    python bench/pipeline.py --quick    # 1 round of 100 records, then 6 s of latency
"""

from __future__ import annotations

import argparse
import json
import re
import smtplib
import sys
import tempfile
import threading
import time
from contextlib import suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

import redis
from harness.common import (
    DOMAIN,
    HOST,
    BenchError,
    Service,
    child_env,
    exit_on_sigterm,
    free_port,
    gateway_env,
    mb,
    median,
    percentile,
    private_redis,
    redis_client,
    sink_service,
    verdict,
    write_json,
)
from rq import Queue, Worker
from rq.registry import FailedJobRegistry
from rq.serializers import JSONSerializer

from channels.email.identity import email_identity
from gateway.intake import Arrival, IntakeContext, accept
from gateway.ledger import CASES_STREAM, PENDING, STATS, text
from gateway.redis_server import EmbeddedRedis
from gateway.settings import load_settings
from workers.pipeline import PIPELINE

TARGET_RATIO = 0.5
EMAIL_PATH = ("normalise", "acknowledge", "publish")
TARGET_P99_SECONDS = 1.0
TARGET_RSS_MB = 150
NOOP_QUEUE = "bench-noop"
NOOP_FUNCTION = "harness.noop.noop"
TO = f"hello@{DOMAIN}"
REFERENCE = re.compile(rb"reference (\S+)")
RECONNECT_EVERY = 40  # the listener allows 100 MAIL commands per connection

COMPLAINTS = (
    "The boiler has been broken for {days} days and nobody has come out to fix it. "
    "We have no heating and no hot water, and my children are getting ill from the cold.",
    "There is black mould spreading across the bedroom ceiling at flat {flat}. I reported "
    "it {days} days ago and was promised an inspection, but no one has been in touch.",
    "Water has been coming through the kitchen light fitting since the flat above had a "
    "leak {days} days ago. The electrics trip every evening and I am worried about a fire.",
    "The front door lock on block {flat} has been broken for {days} days, so anyone can "
    "walk in at night. Several neighbours have complained and we would like it repaired.",
)


def complaint(tag: str, index: int) -> tuple[str, bytes]:
    """A distinct complaint (Message-ID, sender and body) and its envelope sender."""
    sender = f"resident.{tag}.{index}@example.net"
    text = COMPLAINTS[index % len(COMPLAINTS)].format(days=3 + index % 40, flat=index)
    body = (
        f"Dear housing team,\r\n\r\n{text}\r\n\r\n"
        f"Please could someone contact me about this as soon as possible. This is my "
        f"message number {index} about the problem.\r\n\r\nKind regards,\r\n"
        f"Resident {index}\r\n"
    )
    lines = [
        f"From: Resident {index} <{sender}>",
        f"To: {TO}",
        f"Subject: Repair needed at flat {index}",
        f"Message-ID: <bench.{tag}.{index}@example.net>",
        "Date: Fri, 27 Nov 2026 10:00:00 +0000",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
    ]
    return sender, ("\r\n".join(lines) + "\r\n\r\n" + body).encode()


# --- throughput -------------------------------------------------------------------------


@dataclass
class Drain:
    target: str  # "email path", "pipeline" or "rq no-op"
    jobs: int
    seconds: float  # the work() / run_worker() call, start-up excluded
    process_seconds: float  # the subprocess from spawn to exit
    peak_rss_kb: int | None
    steady_rate: float | None = None  # from the stream entries' timestamps
    published: int = 0
    acks: dict[str, int] = field(default_factory=dict)
    left: int = 0  # jobs still queued, failed or records unfinished afterwards

    @property
    def rate(self) -> float:
        return self.jobs / self.seconds


def prefill(ctx: IntakeContext, tag: str, count: int) -> None:
    """Queue ``count`` complaints as the SMTP listener would, through ``accept``."""
    for index in range(count):
        sender, raw = complaint(tag, index)
        key, message_id = email_identity(raw)
        arrival = Arrival(
            channel="email",
            transport="smtp",
            normaliser="email",
            raw=raw,
            idempotency_key=key,
            meta={"envelope_from": sender, "recipients": [TO], "message_id": message_id},
        )
        if accept(arrival, ctx).duplicate:
            raise BenchError(f"complaint {tag}.{index} was taken as a repeat")


def enqueue_noops(client: redis.Redis, count: int) -> None:
    """``count`` no-op jobs, serialised as the gateway's are, results dropped at once."""
    queue = Queue(NOOP_QUEUE, connection=client, serializer=JSONSerializer)
    for start in range(0, count, 200):
        with client.pipeline() as pipe:
            for index in range(start, min(count, start + 200)):
                queue.enqueue_call(
                    NOOP_FUNCTION,
                    args=[f"noop-{index}"],
                    job_id=f"noop-{index}",
                    result_ttl=0,
                    timeout=600,
                    pipeline=pipe,
                )
            pipe.execute()


def drain(
    name: str, argv_tail: list[str], env: dict[str, str], workdir: Path, timeout: float
) -> tuple[float, float, int | None]:
    """Run ``harness.drain`` to completion: (work seconds, process seconds, VmHWM)."""
    started = time.perf_counter()
    service = Service(name, [sys.executable, "-m", "harness.drain", *argv_tail], env, workdir)
    try:
        code = service.wait(timeout)
        elapsed = time.perf_counter() - started
        if code != 0:
            raise service.fail(f"exited with {code}")
        result = json.loads(service.result_line('{"seconds"'))
    finally:
        service.stop()
    return float(result["seconds"]), elapsed, result["vmhwm_kb"]


def stream_entries(client: redis.Redis) -> list[tuple[int, dict[str, Any]]]:
    """(entry id's milliseconds, record) for every entry on the cases stream, oldest first."""
    raw = cast("list[tuple[bytes, dict[bytes, bytes]]]", client.xrange(CASES_STREAM))
    return [
        (int(entry_id.split(b"-")[0]), json.loads(fields[b"record"])) for entry_id, fields in raw
    ]


def steady_rate(entries: list[tuple[int, dict[str, Any]]]) -> float | None:
    """Records per second between the first and the last publication."""
    if len(entries) < 2 or entries[-1][0] <= entries[0][0]:
        return None
    return (len(entries) - 1) / ((entries[-1][0] - entries[0][0]) / 1000)


def ack_outcomes(entries: list[tuple[int, dict[str, Any]]]) -> dict[str, int]:
    outcomes: dict[str, int] = {}
    for _, record in entries:
        status = str((record.get("acknowledgement") or {}).get("status", "none"))
        outcomes[status] = outcomes.get(status, 0) + 1
    return outcomes


def read_stats(client: redis.Redis) -> dict[str, int]:
    return {text(k): int(v) for k, v in client.hgetall(STATS).items()}


def run_pipeline(
    server: EmbeddedRedis,
    workdir: Path,
    relay_url: str,
    tag: str,
    args: argparse.Namespace,
    steps: tuple[str, ...] | None = None,
) -> Drain:
    settings = load_settings(
        redis_url=server.url,
        data_dir=workdir / "data",
        domains=[DOMAIN],
        smtp_relay_url=relay_url,
        log_level="warning",
    )
    client = redis_client(server)
    client.delete(CASES_STREAM, STATS)  # this run's figures only, not an earlier run's
    prefill(IntakeContext.from_settings(settings, client), tag, args.records)
    env = gateway_env(server.url, workdir / "data", smtp_relay_url=relay_url)
    argv = ["pipeline", "--steps", ",".join(steps)] if steps else ["pipeline"]
    seconds, process_seconds, peak = drain("worker", argv, env, workdir, args.run_timeout)
    queue = Queue(settings.queue_name, connection=client, serializer=JSONSerializer)
    stats = read_stats(client)
    entries = stream_entries(client)
    result = Drain(
        target="email path" if steps else "pipeline",
        jobs=args.records,
        seconds=seconds,
        process_seconds=process_seconds,
        peak_rss_kb=peak,
        steady_rate=steady_rate(entries),
        published=stats.get("published", 0),
        acks=ack_outcomes(entries),
        left=queue.count + FailedJobRegistry(queue=queue).count + client.zcard(PENDING),
    )
    client.close()
    return result


def run_noop(server: EmbeddedRedis, workdir: Path, args: argparse.Namespace) -> Drain:
    client = redis_client(server)
    enqueue_noops(client, args.records)
    env = child_env({"INTAKE_REDIS_URL": server.url})
    seconds, process_seconds, peak = drain(
        "noop", ["noop", "--queue", NOOP_QUEUE], env, workdir, args.run_timeout
    )
    queue = Queue(NOOP_QUEUE, connection=client, serializer=JSONSerializer)
    left = queue.count + FailedJobRegistry(queue=queue).count
    client.close()
    return Drain(
        target="rq no-op",
        jobs=args.records,
        seconds=seconds,
        process_seconds=process_seconds,
        peak_rss_kb=peak,
        left=left,
    )


TARGETS = ("email path", "pipeline", "rq no-op")


def run_round(workdir: Path, relay_url: str, pair: int, args: argparse.Namespace) -> list[Drain]:
    """The two pipelines and the no-op baseline on one private Redis, in rotating order."""
    runs: list[Drain] = []
    shift = (pair - 1) % len(TARGETS)
    with private_redis(workdir / "redis") as server:
        for target in TARGETS[shift:] + TARGETS[:shift]:
            if target == "email path":
                runs.append(run_pipeline(server, workdir, relay_url, f"e{pair}", args, EMAIL_PATH))
            elif target == "pipeline":
                runs.append(run_pipeline(server, workdir, relay_url, f"p{pair}", args))
            else:
                runs.append(run_noop(server, workdir, args))
            print(describe(pair, runs[-1]), flush=True)
    return runs


def describe(pair: int, run: Drain) -> str:
    unit = "jobs/s   " if run.target == "rq no-op" else "records/s"
    line = (
        f"round {pair}  {run.target:<10} {run.rate:8.1f} {unit}  ({run.jobs} in {run.seconds:.2f} s"
    )
    if run.steady_rate is not None:
        line += f", steady {run.steady_rate:.1f}/s"
    line += f", process {run.process_seconds:.2f} s, peak RSS {mb(run.peak_rss_kb)}"
    if run.target != "rq no-op":
        acks = ", ".join(f"{k} {v}" for k, v in sorted(run.acks.items()))
        line += f", published {run.published}, acks: {acks}"
    return line + (f", LEFT {run.left}" if run.left else "") + ")"


# --- latency ----------------------------------------------------------------------------


@dataclass
class Sent:
    reference: str
    started: float  # wall clock, before MAIL FROM
    replied: float  # wall clock, on the 250 to DATA


@dataclass
class Latency:
    workers: int
    offered_rate: float
    seconds: float
    sent: int
    errors: int
    published: int
    lost: int
    median_s: float
    p99_s: float
    max_s: float
    reply_median_s: float
    reply_p99_s: float
    worker_peak_rss_kb: int
    smtp_peak_rss_kb: int | None


class PacedSender:
    """Sends ``count`` complaints at ``rate`` per second from a few client threads.

    Message ``i`` is due at ``start + i / rate`` whichever thread sends it, so one slow
    reply does not hold the others back. Each thread keeps its connection for
    RECONNECT_EVERY messages.
    """

    def __init__(self, port: int, rate: float, count: int, threads: int, tag: str) -> None:
        self.port = port
        self.rate = rate
        self.count = count
        self.tag = tag
        self.sent: list[Sent] = []
        self.errors: list[str] = []
        self._next = 0
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._run, name=f"sender-{n}", daemon=True)
            for n in range(threads)
        ]
        self._start = 0.0

    def _take(self) -> int | None:
        with self._lock:
            if self._next >= self.count:
                return None
            self._next += 1
            return self._next - 1

    def _run(self) -> None:
        client: smtplib.SMTP | None = None
        used = 0
        try:
            while (index := self._take()) is not None:
                delay = self._start + index / self.rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                try:
                    if client is None or used >= RECONNECT_EVERY:
                        if client is not None:
                            client.quit()
                        client, used = smtplib.SMTP(HOST, self.port, timeout=30), 0
                        client.ehlo("bench.example.net")
                    used += 1
                    self._send(client, index)
                except (smtplib.SMTPException, OSError) as exc:
                    with self._lock:
                        self.errors.append(f"{index}: {exc}")
                    client = None
        finally:
            if client is not None:
                with suppress(smtplib.SMTPException, OSError):
                    client.quit()

    def _send(self, client: smtplib.SMTP, index: int) -> None:
        sender, raw = complaint(self.tag, index)
        started = time.time()
        code, reply = client.mail(sender)
        if code != 250:
            raise smtplib.SMTPSenderRefused(code, reply, sender)
        code, reply = client.rcpt(TO)
        if code not in (250, 251):
            raise smtplib.SMTPRecipientsRefused({TO: (code, reply)})
        code, reply = client.data(raw)
        replied = time.time()
        found = REFERENCE.search(reply)
        if code != 250 or not found:
            raise smtplib.SMTPDataError(code, reply)
        with self._lock:
            self.sent.append(Sent(found.group(1).decode(), started, replied))

    def run(self) -> None:
        self._start = time.monotonic()
        for thread in self._threads:
            thread.start()
        for thread in self._threads:
            thread.join()


def wait_for_workers(client: redis.Redis, count: int, services: list[Service]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for service in services:
            if not service.running():
                raise service.fail(f"exited with {service.process.returncode}")
        if Worker.count(connection=client) >= count:
            return
        time.sleep(0.1)
    raise BenchError(f"{count} worker(s) did not register within 60s")


def wait_for_stream(client: redis.Redis, length: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while (current := int(client.xlen(CASES_STREAM))) < length and time.monotonic() < deadline:
        time.sleep(0.1)
    return current


def arrivals(client: redis.Redis) -> dict[str, float]:
    """Reference -> wall-clock time of its stream entry (the id's milliseconds)."""
    return {record["reference"]: ms / 1000 for ms, record in stream_entries(client)}


def run_latency(workdir: Path, relay_url: str, rate: float, args: argparse.Namespace) -> Latency:
    with private_redis(workdir / "redis") as server:
        client = redis_client(server)
        port = free_port()
        env = gateway_env(server.url, workdir / "data", smtp_port=port, smtp_relay_url=relay_url)
        argv = [sys.executable, "-m", "gateway.cli"]
        services: list[Service] = []
        try:
            smtp = Service("smtp", [*argv, "smtp"], env, workdir)
            services.append(smtp)
            for number in range(args.workers):
                services.append(Service(f"worker-{number}", [*argv, "worker"], env, workdir))
            workers = services[1:]
            smtp.wait_smtp(port)
            wait_for_workers(client, args.workers, workers)

            # Warm-up: first messages pay one-off costs (imports, language profiles).
            warm = PacedSender(port, rate, args.latency_warmup, args.senders, "warm")
            warm.run()
            wait_for_stream(client, len(warm.sent), 60)
            client.delete(CASES_STREAM)

            count = max(1, round(rate * args.latency_seconds))
            sender = PacedSender(port, rate, count, args.senders, "lat")
            started = time.monotonic()
            sender.run()
            seconds = time.monotonic() - started
            published = wait_for_stream(client, len(sender.sent), 30 + args.latency_seconds)
            worker_peak = max((w.vmhwm_kb() or 0) for w in workers)
            smtp_peak = smtp.vmhwm_kb()
        finally:
            for service in services:
                service.stop()
        arrived = arrivals(client)
        client.close()

    delays = [arrived[s.reference] - s.replied for s in sender.sent if s.reference in arrived]
    replies = [s.replied - s.started for s in sender.sent]
    if sender.errors:
        print(f"  send errors ({len(sender.errors)}), first: {sender.errors[0]}")
    return Latency(
        workers=args.workers,
        offered_rate=rate,
        seconds=seconds,
        sent=len(sender.sent),
        errors=len(sender.errors),
        published=published,
        lost=len(sender.sent) - len(delays),
        median_s=median(delays),
        p99_s=percentile(delays, 0.99),
        max_s=max(delays, default=float("nan")),
        reply_median_s=median(replies),
        reply_p99_s=percentile(replies, 0.99),
        worker_peak_rss_kb=worker_peak,
        smtp_peak_rss_kb=smtp_peak,
    )


# --- main -------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Pipeline worker rate against rq no-op jobs, then end-to-end latency."
    )
    parser.add_argument("--quick", action="store_true", help="1 round of 100, 6 s of latency")
    parser.add_argument("--rounds", type=int, help="rounds of the three drains (default 3)")
    parser.add_argument("--records", type=int, help="records per run (default 300)")
    parser.add_argument("--run-timeout", type=float, default=300.0, help="seconds per drain")
    parser.add_argument("--rate", type=float, help="latency: messages/s (default: half peak)")
    parser.add_argument("--latency-seconds", type=float, help="latency: send for (default 20)")
    parser.add_argument("--latency-warmup", type=int, default=20, help="latency: untimed first")
    parser.add_argument("--workers", type=int, default=1, help="latency: worker processes")
    parser.add_argument("--senders", type=int, default=4, help="latency: client threads")
    parser.add_argument("--skip-latency", action="store_true", help="throughput only")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args()
    quick = args.quick
    args.rounds = args.rounds or (1 if quick else 3)
    args.records = args.records or (100 if quick else 300)
    args.latency_seconds = args.latency_seconds or (6.0 if quick else 20.0)
    if min(args.rounds, args.records, args.workers, args.senders) < 1:
        parser.error("--rounds, --records, --workers and --senders must be at least 1")
    return args


def main() -> int:
    args = parse_args()
    exit_on_sigterm()
    print(
        f"pipeline: {args.rounds} round(s) of {args.records} records through one worker "
        f"process, over the email path ({' + '.join(EMAIL_PATH)}) and over the whole "
        f"pipeline ({' + '.join(PIPELINE)}); acknowledgements relayed to a local aiosmtpd sink"
    )
    rounds: list[dict[str, Drain]] = []
    latency: Latency | None = None
    with tempfile.TemporaryDirectory(prefix="intake-bench-pipeline-") as tmp:
        relay_port = free_port()
        relay = sink_service(relay_port, Path(tmp), name="relay")
        relay_url = f"smtp://{HOST}:{relay_port}"
        try:
            for number in range(1, args.rounds + 1):
                workdir = Path(tmp) / f"round-{number}"
                workdir.mkdir()
                runs = {run.target: run for run in run_round(workdir, relay_url, number, args)}
                noop = runs["rq no-op"]
                print(
                    f"round {number}  ratio      email path "
                    f"{runs['email path'].rate / noop.rate:.3f}, "
                    f"whole pipeline {runs['pipeline'].rate / noop.rate:.3f}",
                    flush=True,
                )
                rounds.append(runs)

            peak_rate = median([r["pipeline"].rate for r in rounds])
            if not args.skip_latency:
                rate = args.rate or peak_rate / 2
                print(
                    f"latency: {args.workers} worker(s), whole pipeline, {rate:.1f} msg/s for "
                    f"{args.latency_seconds:.0f} s from {args.senders} smtplib clients "
                    f"(+{args.latency_warmup} warm-up)",
                    flush=True,
                )
                workdir = Path(tmp) / "latency"
                workdir.mkdir()
                latency = run_latency(workdir, relay_url, rate, args)
        finally:
            relay.stop()

    def rates(target: str) -> list[float]:
        return [r[target].rate for r in rounds]

    def ratios(target: str) -> list[float]:
        return [r[target].rate / r["rq no-op"].rate for r in rounds]

    email_ratio, pipeline_ratio = median(ratios("email path")), median(ratios("pipeline"))
    left = sum(run.left for r in rounds for run in r.values())
    print()
    print("summary")
    for target in TARGETS:
        unit = "jobs/s" if target == "rq no-op" else "records/s"
        found = rates(target)
        print(
            f"  {target:<10} median {median(found):8.1f} {unit} "
            f"(min {min(found):.1f}, max {max(found):.1f})"
        )
    print(
        f"  ratio, email path      median {email_ratio:6.3f}  "
        f"(rounds: {', '.join(f'{r:.3f}' for r in ratios('email path'))})  "
        f"target >= {TARGET_RATIO}: {verdict(email_ratio >= TARGET_RATIO)}"
    )
    print(
        f"  ratio, whole pipeline  median {pipeline_ratio:6.3f}  "
        f"(rounds: {', '.join(f'{r:.3f}' for r in ratios('pipeline'))})  "
        f"target >= {TARGET_RATIO}: {verdict(pipeline_ratio >= TARGET_RATIO)}"
    )
    worker_rss = max((r["pipeline"].peak_rss_kb or 0) for r in rounds)
    print(f"  peak RSS of the burst worker (whole pipeline): {mb(worker_rss)}")
    print(f"  records or jobs left unfinished: {left}  {'OK' if left == 0 else 'FAIL'}")
    failed = left > 0
    missed = min(email_ratio, pipeline_ratio) < TARGET_RATIO
    if latency is not None:
        print(
            f"  latency   250 -> stream: median {latency.median_s * 1000:.0f} ms, "
            f"p99 {latency.p99_s * 1000:.0f} ms, max {latency.max_s * 1000:.0f} ms  "
            f"target p99 < {TARGET_P99_SECONDS:.0f} s: "
            f"{verdict(latency.p99_s < TARGET_P99_SECONDS)}"
        )
        print(
            f"            at {latency.sent / latency.seconds:.1f} msg/s achieved "
            f"({latency.offered_rate:.1f} offered), sent {latency.sent}, "
            f"published {latency.published}, lost {latency.lost}, errors {latency.errors}; "
            f"SMTP reply median {latency.reply_median_s * 1000:.0f} ms, "
            f"p99 {latency.reply_p99_s * 1000:.0f} ms"
        )
        print(
            f"  peak RSS of the worker under load: {mb(latency.worker_peak_rss_kb)}  "
            f"target < {TARGET_RSS_MB} MB: "
            f"{verdict(latency.worker_peak_rss_kb < TARGET_RSS_MB * 1024)}  "
            f"(SMTP process: {mb(latency.smtp_peak_rss_kb)})"
        )
        failed = failed or latency.lost > 0 or latency.errors > 0
        missed = (
            missed
            or latency.p99_s >= TARGET_P99_SECONDS
            or latency.worker_peak_rss_kb >= TARGET_RSS_MB * 1024
        )
    write_json(
        args.json,
        {
            "benchmark": "pipeline",
            "settings": {k: v for k, v in vars(args).items() if k != "json"},
            "rounds": [{target: asdict(run) for target, run in r.items()} for r in rounds],
            "email_path_rate_median": median(rates("email path")),
            "pipeline_rate_median": median(rates("pipeline")),
            "noop_rate_median": median(rates("rq no-op")),
            "email_path_ratio_median": email_ratio,
            "pipeline_ratio_median": pipeline_ratio,
            "latency": asdict(latency) if latency else None,
        },
    )
    if failed:
        return 1
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as exc:
        print(f"pipeline: {exc}", file=sys.stderr)
        sys.exit(1)
    finally:
        Service.stop_all()
