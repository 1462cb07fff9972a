"""Messages per second taken by the gateway's SMTP listener, against a bare aiosmtpd server.

Each pair of runs times postfix's ``smtp-source`` (16 parallel sessions, ~3 KB messages, a
new connection per message) sending to

* the gateway: ``python -m gateway.cli smtp`` on a private Redis (appendonly yes,
  appendfsync always), so every 250 means the blob is durable on disk and the ledger entry and
  the job are in Redis's fsynced append-only file; and
* the baseline: a bare aiosmtpd server that answers 250 to everything.

Gateway and baseline run alternately (the order flips every pair) because these machines
drift; the figure to read is the median of the per-pair ratios. After each gateway run
the queued jobs and ledger entries are counted: every message sent must be there.

    python bench/smtp_intake.py            # 3 pairs of 3000 messages
    python bench/smtp_intake.py --quick    # 1 pair of 400 messages
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from harness.common import (
    DOMAIN,
    HOST,
    RECIPIENT,
    SMTP_SOURCE_HELP,
    BenchError,
    Service,
    count_keys,
    exit_on_sigterm,
    file_creation_us,
    find_smtp_source,
    free_port,
    gateway_env,
    mb,
    median,
    private_redis,
    redis_client,
    sink_service,
    verdict,
    write_json,
)
from rq import Queue

from gateway.ledger import STATS, record_key, text

TARGET_RATIO = 0.5
TARGET_RSS_MB = 150
SENDER = "resident@example.net"


@dataclass
class Run:
    target: str  # "gateway" or "baseline"
    messages: int
    seconds: float
    peak_rss_kb: int | None
    expected: int = 0  # messages sent in all, warm-up included
    queued: int = 0  # jobs waiting in the intake queue (no worker runs)
    records: int = 0  # ledger entries
    repeats: int = 0  # deliveries taken as repeats of an earlier one

    @property
    def rate(self) -> float:
        return self.messages / self.seconds

    @property
    def lost(self) -> int:
        return self.expected - min(self.queued, self.records)


def send(tool: Path, port: int, count: int, args: argparse.Namespace) -> float:
    """Send ``count`` messages with smtp-source; the seconds it took. Any refusal fails."""
    argv = [
        str(tool),
        *("-s", str(args.sessions), "-m", str(count), "-l", str(args.size)),
        *("-f", SENDER, "-t", RECIPIENT, f"{HOST}:{port}"),
    ]
    started = time.perf_counter()
    try:
        result = subprocess.run(
            argv, capture_output=True, text=True, timeout=args.run_timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"smtp-source did not finish {count} messages in {exc.timeout}s") from exc
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise BenchError(f"smtp-source failed ({result.returncode}): {result.stderr.strip()}")
    return seconds


def run_gateway(tool: Path, workdir: Path, args: argparse.Namespace) -> Run:
    with private_redis(workdir / "redis") as server:
        port = free_port()
        env = gateway_env(server.url, workdir / "data", smtp_port=port)
        service = Service("smtp", [sys.executable, "-m", "gateway.cli", "smtp"], env, workdir)
        try:
            service.wait_smtp(port)
            if args.warmup:
                send(tool, port, args.warmup, args)
            seconds = send(tool, port, args.messages, args)
            peak = service.vmhwm_kb()
        finally:
            code = service.stop()
        if code != 0:
            raise service.fail(f"exited with {code} after SIGTERM")
        client = redis_client(server)
        stats = {text(k): int(v) for k, v in client.hgetall(STATS).items()}
        run = Run(
            target="gateway",
            messages=args.messages,
            seconds=seconds,
            peak_rss_kb=peak,
            expected=args.warmup + args.messages,
            queued=int(client.llen(Queue("intake", connection=client).key)),
            records=count_keys(client, record_key("*")),
            repeats=stats.get("repeated_deliveries", 0),
        )
        client.close()
        return run


def run_baseline(tool: Path, workdir: Path, args: argparse.Namespace) -> Run:
    port = free_port()
    service = sink_service(port, workdir)
    try:
        if args.warmup:
            send(tool, port, args.warmup, args)
        seconds = send(tool, port, args.messages, args)
        peak = service.vmhwm_kb()
    finally:
        service.stop()
    return Run(target="baseline", messages=args.messages, seconds=seconds, peak_rss_kb=peak)


def describe(pair: int, run: Run) -> str:
    line = (
        f"pair {pair}  {run.target:<8}  {run.rate:8.1f} msg/s  "
        f"({run.messages} in {run.seconds:.2f} s, peak RSS {mb(run.peak_rss_kb)}"
    )
    if run.target == "gateway":
        line += (
            f", sent {run.expected}, queued {run.queued}, ledger {run.records}, "
            f"repeats {run.repeats}"
        )
    return line + ")"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Gateway SMTP intake rate against a bare aiosmtpd server."
    )
    parser.add_argument("--quick", action="store_true", help="1 pair of 400 messages")
    parser.add_argument("--pairs", type=int, help="gateway/baseline pairs (default 3)")
    parser.add_argument("--messages", type=int, help="timed messages per run (default 3000)")
    parser.add_argument("--warmup", type=int, help="untimed messages first (default 100)")
    parser.add_argument("--sessions", type=int, default=16, help="parallel SMTP sessions")
    parser.add_argument("--size", type=int, default=3000, help="message body bytes")
    parser.add_argument("--run-timeout", type=float, default=240.0, help="seconds per run")
    parser.add_argument("--smtp-source", help="path of postfix's smtp-source")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args()
    quick = args.quick
    args.pairs = args.pairs or (1 if quick else 3)
    args.messages = args.messages or (400 if quick else 3000)
    args.warmup = args.warmup if args.warmup is not None else (50 if quick else 100)
    if args.pairs < 1 or args.messages < 1 or args.sessions < 1:
        parser.error("--pairs, --messages and --sessions must be at least 1")
    return args


def main() -> int:
    args = parse_args()
    tool = find_smtp_source(args.smtp_source)
    if tool is None:
        print(SMTP_SOURCE_HELP, file=sys.stderr)
        return 2
    exit_on_sigterm()
    print(
        f"smtp_intake: {args.pairs} pair(s) of {args.messages} messages, {args.sessions} "
        f"sessions, {args.size}-byte bodies to {RECIPIENT} (+{args.warmup} warm-up per run)"
    )
    pairs: list[tuple[Run, Run]] = []
    with tempfile.TemporaryDirectory(prefix="intake-bench-smtp-") as tmp:
        creation = file_creation_us(Path(tmp))
        print(f"creating one file here costs {creation:.0f} us of CPU (each message stores one)")
        for pair in range(1, args.pairs + 1):
            runs: dict[str, Run] = {}
            order = ("gateway", "baseline") if pair % 2 else ("baseline", "gateway")
            for target in order:
                workdir = Path(tmp) / f"{pair}-{target}"
                workdir.mkdir()
                runner = run_gateway if target == "gateway" else run_baseline
                runs[target] = runner(tool, workdir, args)
                print(describe(pair, runs[target]), flush=True)
                shutil.rmtree(workdir, ignore_errors=True)
            gateway, baseline = runs["gateway"], runs["baseline"]
            print(f"pair {pair}  ratio     {gateway.rate / baseline.rate:8.2f}", flush=True)
            pairs.append((gateway, baseline))

    ratios = [g.rate / b.rate for g, b in pairs]
    ratio = median(ratios)
    peak_kb = max((g.peak_rss_kb or 0) for g, _ in pairs)
    lost = sum(g.lost for g, _ in pairs)
    repeats = sum(g.repeats for g, _ in pairs)
    gateway_rates = [g.rate for g, _ in pairs]
    baseline_rates = [b.rate for _, b in pairs]
    print()
    print("summary")
    print(
        f"  gateway   median {median(gateway_rates):8.1f} msg/s "
        f"(min {min(gateway_rates):.1f}, max {max(gateway_rates):.1f})"
    )
    print(
        f"  baseline  median {median(baseline_rates):8.1f} msg/s "
        f"(min {min(baseline_rates):.1f}, max {max(baseline_rates):.1f})"
    )
    print(
        f"  ratio     median {ratio:8.2f}  (pairs: {', '.join(f'{r:.2f}' for r in ratios)})"
        f"  target >= {TARGET_RATIO}: {verdict(ratio >= TARGET_RATIO)}"
    )
    print(
        f"  peak RSS of the SMTP process: {mb(peak_kb)}  "
        f"target < {TARGET_RSS_MB} MB: {verdict(peak_kb < TARGET_RSS_MB * 1024)}"
    )
    print(f"  messages lost: {lost}  (repeats: {repeats})  {'OK' if lost == 0 else 'FAIL'}")
    print(f"  creating one file in the data directory: {creation:.0f} us of CPU")
    write_json(
        args.json,
        {
            "benchmark": "smtp_intake",
            "domain": DOMAIN,
            "settings": {k: v for k, v in vars(args).items() if k != "json"},
            "pairs": [{"gateway": asdict(g), "baseline": asdict(b)} for g, b in pairs],
            "gateway_rate_median": median(gateway_rates),
            "baseline_rate_median": median(baseline_rates),
            "ratio_median": ratio,
            "peak_rss_kb": peak_kb,
            "lost": lost,
            "file_creation_us": creation,
        },
    )
    if lost:
        return 1
    if args.strict and (ratio < TARGET_RATIO or peak_kb >= TARGET_RSS_MB * 1024):
        return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as exc:
        print(f"smtp_intake: {exc}", file=sys.stderr)
        sys.exit(1)
    finally:
        Service.stop_all()
