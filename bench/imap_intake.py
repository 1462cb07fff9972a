"""Messages per second taken in from an IMAP mailbox, and the delay from APPEND to the feed.

Both parts run against a private Dovecot (the one the test suite starts: Debian's
``dovecot-imapd``, its own configuration, a maildir in a temporary directory) and a
private Redis (appendonly yes, appendfsync always), so every message counted is fsynced
in the blob store and in Redis before it leaves the inbox.

* **Throughput.** A mailbox holding ``--messages`` messages of about ``--size`` bytes is
  read by the gateway's poller (one connection, one round: fetch, ``accept``, move,
  checkpoint), and, alternately, by a bare reader that only fetches and moves them (the
  cost of IMAP itself). The figure to read is the median of the poller's runs, and its
  ratio to the bare reader. After each run every message must be a ledger entry and the
  inbox must be empty.
* **Latency while IDLE.** ``intake imap`` and ``intake worker`` run as they do in
  production; messages are APPENDed one at a time, ``--gap`` seconds apart, and each one's
  delay is measured from the moment before its APPEND to its record on ``intake:cases``.

    python bench/imap_intake.py            # 3 runs of 2000 messages, 200 timed deliveries
    python bench/imap_intake.py --quick    # 1 run of 300 messages, 40 timed deliveries
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from harness.common import (
    REPO_ROOT,
    BenchError,
    Service,
    count_keys,
    exit_on_sigterm,
    gateway_env,
    median,
    percentile,
    private_redis,
    write_json,
)

sys.path.insert(0, str(REPO_ROOT))  # the test suite's private Dovecot

from imapclient import IMAPClient

from channels.imap.poller import MailboxPoller
from gateway.connection import connect
from gateway.intake import IntakeContext
from gateway.ledger import CASES_STREAM, STATS
from gateway.logs import configure_logging
from gateway.settings import load_settings
from tests.dovecot import Dovecot, MailUser, mailbox_for, mailbox_json, running_dovecot

FILLER = (
    "The bathroom extractor fan has not worked since the spring and the mould on the "
    "ceiling is spreading to the bedroom wall; my daughter's asthma is worse at night. "
)


def message(number: int, size: int) -> bytes:
    body = f"bench-seq-{number}\r\n\r\n" + (FILLER * (size // len(FILLER) + 1))[:size]
    head = (
        f"From: Tenant {number} <tenant{number}@example.net>\r\n"
        "To: hello@housing.test\r\n"
        f"Subject: Mould, flat {number}\r\n"
        f"Message-ID: <bench-{number}-{time.time_ns()}@example.net>\r\n"
        "Date: Fri, 27 Nov 2026 10:00:00 +0000\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
    )
    return (head + body).encode()


def seed(server: Dovecot, user: MailUser, count: int, size: int) -> None:
    with server.client(user) as client:
        batch = [message(n, size) for n in range(count)]
        for start in range(0, count, 100):
            client.multiappend("INBOX", batch[start : start + 100])


def run_poller(server: Dovecot, redis_url: str, data_dir: Path, count: int, size: int) -> float:
    user = server.new_user()
    seed(server, user, count, size)
    mailbox = mailbox_for(server, user)
    settings = load_settings(redis_url=redis_url, data_dir=data_dir, imap_mailboxes=[mailbox])
    connection = connect(redis_url)
    connection.flushall()
    poller = MailboxPoller(mailbox, IntakeContext.from_settings(settings, connection))
    started = time.perf_counter()
    taken = poller.run_once()
    seconds = time.perf_counter() - started
    entries = count_keys(connection, "intake:rec:*")
    left = len(server.uids(user))
    if taken != count or entries != count or left:
        raise BenchError(f"poller took in {taken}, ledger {entries}, {left} left in the inbox")
    return seconds


def run_bare(server: Dovecot, count: int, size: int) -> float:
    """Fetch and move only: what reading the mailbox costs without taking anything in."""
    user = server.new_user()
    seed(server, user, count, size)
    started = time.perf_counter()
    client = IMAPClient(server.host, server.port, ssl=False, timeout=30)
    client.login(user.name, user.password)
    client.create_folder("Processed")
    client.select_folder("INBOX")
    uids = sorted(client.search("ALL"))
    for start in range(0, len(uids), 20):
        batch = uids[start : start + 20]
        client.fetch(batch, [b"BODY.PEEK[]"])
        client.move(batch, "Processed")
    client.logout()
    seconds = time.perf_counter() - started
    if len(server.uids(user)) or len(uids) != count:
        raise BenchError("the bare reader left messages behind")
    return seconds


def idle_latency(
    server: Dovecot, redis_url: str, data_dir: Path, log_dir: Path, args: argparse.Namespace
) -> list[float]:
    user = server.new_user()
    mailbox = mailbox_for(server, user)
    env = gateway_env(redis_url, data_dir, imap_mailboxes=mailbox_json(mailbox))
    connection = connect(redis_url)
    connection.flushall()
    imap = Service("imap", [sys.executable, "-m", "gateway.cli", "imap"], env, log_dir)
    worker = Service("worker", [sys.executable, "-m", "gateway.cli", "worker"], env, log_dir)
    delays: list[float] = []
    try:
        deadline = time.monotonic() + 60
        while b'"state": "idle"' not in (
            connection.hget("intake:imap:status", mailbox.name) or b""
        ):
            if time.monotonic() > deadline or not imap.running():
                raise imap.fail("never reached IDLE")
            time.sleep(0.05)
        last_id = "$"
        with server.client(user) as client:
            for number in range(args.deliveries):
                time.sleep(args.gap)
                sent = time.perf_counter()
                client.append("INBOX", message(number, args.size))
                while True:
                    reply = connection.xread({CASES_STREAM: last_id}, count=1, block=30_000)
                    if not reply:
                        raise worker.fail(f"message {number} never reached the feed")
                    last_id, fields = reply[0][1][0]
                    record = json.loads(fields[b"record"])
                    if f"bench-seq-{number}" in record["text"]:
                        delays.append(time.perf_counter() - sent)
                        break
    finally:
        imap.stop()
        worker.stop()
    if int(connection.hget(STATS, "accepted:email") or 0) != args.deliveries:
        raise BenchError("not every delivery was taken in exactly once")
    return delays


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--size", type=int, default=3000, help="body bytes (~3 KB messages)")
    parser.add_argument("--deliveries", type=int, default=200, help="timed deliveries in IDLE")
    parser.add_argument("--gap", type=float, default=0.1, help="seconds between deliveries")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", type=Path, default=None, help="also write results here")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.messages, args.deliveries = 1, 300, 40
    return args


def main() -> int:
    args = parse_args()
    exit_on_sigterm()
    configure_logging("warning")
    print(
        f"imap_intake: {args.runs} run(s) of {args.messages} messages of ~{args.size} bytes; "
        f"{args.deliveries} deliveries in IDLE, {args.gap}s apart"
    )
    poller_rates: list[float] = []
    bare_rates: list[float] = []
    with tempfile.TemporaryDirectory(prefix="intake-bench-imap-") as tmp, running_dovecot() as dc:
        root = Path(tmp)
        with private_redis(root / "redis") as redis_server:
            url = redis_server.url
            for run in range(1, args.runs + 1):
                order = ("poller", "bare") if run % 2 else ("bare", "poller")
                for target in order:
                    if target == "poller":
                        seconds = run_poller(
                            dc, url, root / f"data-{run}", args.messages, args.size
                        )
                        poller_rates.append(args.messages / seconds)
                    else:
                        seconds = run_bare(dc, args.messages, args.size)
                        bare_rates.append(args.messages / seconds)
                    print(
                        f"run {run}  {target:<7} {args.messages / seconds:8.1f} msg/s"
                        f"  ({seconds:.2f}s)",
                        flush=True,
                    )
            delays = idle_latency(dc, url, root / "data-idle", root, args)
    ms = [d * 1000 for d in delays]
    rate, bare = median(poller_rates), median(bare_rates)
    print()
    print("summary")
    runs = ", ".join(f"{r:.1f}" for r in poller_rates)
    print(f"  poller    median {rate:8.1f} msg/s  (runs: {runs})")
    print(f"  bare IMAP median {bare:8.1f} msg/s  (fetch and move only)")
    print(f"  ratio     {rate / bare:8.2f}")
    print(
        f"  APPEND to intake:cases while IDLE ({len(ms)} messages): "
        f"median {median(ms):.0f} ms, p99 {percentile(ms, 0.99):.0f} ms, max {max(ms):.0f} ms"
    )
    write_json(
        args.json,
        {
            "benchmark": "imap_intake",
            "settings": {k: str(v) for k, v in vars(args).items() if k != "json"},
            "poller_rates": poller_rates,
            "bare_rates": bare_rates,
            "poller_rate_median": rate,
            "bare_rate_median": bare,
            "latency_ms_median": median(ms),
            "latency_ms_p99": percentile(ms, 0.99),
        },
    )
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as exc:
        print(f"imap_intake: {exc}", file=sys.stderr)
        sys.exit(1)
