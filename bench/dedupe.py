"""Deduplication cost per message against an index of 10k, 100k and 1M stored records.

A private Redis (``EmbeddedRedis``: unix socket, appendonly yes, appendfsync always) is
filled with synthetic records as the dedupe step would index them: a random MinHash
signature each (so each fills its 16 LSH buckets), a customer shared by about three
records, arrival times spread over the window, written by the index's own bulk insert.
Each size has its own Redis database, and the sizes take turns being timed, so that a
busy moment on the machine does not fall on one size only. For realistic complaints that
are not in the index the script times:

- **lookup**: one ``DedupeIndex.lookup`` (the LSH buckets and the customer's recent
  records, with the candidates' signatures) per message. Target: the 1M median within
  1.5 times the 10k median.
- **per-message stages** (``STAGES``): the whole ``dedupe`` step on a record (signature,
  follow-up pointers, lookup, decision, the atomic register), over a mix of new
  complaints, repeats, follow-ups quoting a reference and a campaign letter. Target:
  median under 2 ms. Other steps' timings sit beside it in ``STAGES``. Each stage has
  messages of its own, so that a stage never meets, as a repeat, a text that another
  stage indexed before it: the repeats it meets are the ones mixed in on purpose.

The step writes to Redis, and with appendfsync always every write waits for the disk, so
it is also timed that way once, on an index of the smallest size (then dropped); then the
append-only file is switched off for the filling and the turns, which does not change
what Redis computes.

    python bench/dedupe.py            # 10k, 100k and 1M (about 4 GB of Redis memory at 1M)
    python bench/dedupe.py --quick    # 10k and 100k
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import redis
from harness.common import (
    BenchError,
    exit_on_sigterm,
    median,
    percentile,
    private_redis,
    redis_client,
    verdict,
    write_json,
)
from ulid import ULID

from gateway.ledger import LedgerEntry
from gateway.logs import configure_logging
from gateway.redis_server import EmbeddedRedis
from gateway.schema import Customer, IntakeRecord, Source
from gateway.settings import load_settings
from workers.context import WorkerContext
from workers.dedupe.customers import ContactDirectory, customer_keys
from workers.dedupe.index import DedupeIndex, Entry
from workers.dedupe.signature import NUM_PERM, Signature, signature_of
from workers.steps.dedupe import Deduplicate
from workers.steps.triage import TriageStep

SIZES = (10_000, 100_000, 1_000_000)
QUICK_SIZES = (10_000, 100_000)
TARGET_LOOKUP_RATIO = 1.5
TARGET_STEP_MEDIAN_MS = 2.0
DAY = 86400
FSYNC_DB = 15  # the timing with appendfsync always runs in a database of its own
MEMORY_SHARE = 0.6  # of the memory available, the most the 1M fill may take

THINGS = (
    "boiler",
    "radiator in the {room}",
    "{room} window",
    "front door lock",
    "lift",
    "extractor fan in the {room}",
    "shower",
    "toilet",
    "kitchen tap",
    "roof above the {room}",
    "communal light on the landing",
    "fence at the back",
    "gutter over the {room}",
    "door entry system",
    "hot water cylinder",
    "{room} ceiling",
    "back door",
    "smoke alarm",
)
FAULTS = (
    "has been broken",
    "has not worked",
    "has been leaking",
    "keeps failing",
    "has been making a loud banging noise",
    "was left half finished",
    "has been dripping",
    "stopped working",
    "has been hanging off its hinges",
    "has had a crack in it",
)
SINCE = (
    "for {n} days",
    "since {month}",
    "since the storm in {month}",
    "for about {n} weeks",
    "ever since the contractor visited on {day} {month}",
    "since we moved in",
)
EFFECTS = (
    "We have no heating and the {relative} is cold all the time.",
    "The {room} is damp and smells of mould.",
    "My {relative} cannot cope and has been staying with family.",
    "Water is getting into the electrics in the {room}.",
    "I cannot sleep because of the noise and I work early shifts.",
    "The flat is freezing at night and the bills are going up.",
    "We have to boil kettles to wash the {relative}.",
    "Strangers have been getting into the building at night.",
    "There is black mould on the {room} wall behind the wardrobe.",
    "The carpet in the {room} is ruined.",
)
CONTACTS = (
    "I have phoned {n} times.",
    "I reported it on {day} {month} and was given a job number.",
    "Your contractor came on {day} {month} but said a part was needed.",
    "Nobody has replied to my emails.",
    "I was promised a call back that never came.",
    "The repairs line kept me on hold for {n} minutes.",
    "A surveyor looked at it on {day} {month} and said it would be booked in.",
)
ASKS = (
    "Please send someone this week.",
    "I want to know when this will be fixed.",
    "I would like compensation for the inconvenience.",
    "Please treat this as a formal complaint.",
    "Can someone call me on a weekday morning?",
    "I am very unhappy with how this has been handled.",
    "I need this sorted before my {relative} comes home from hospital.",
)
ROOMS = ("bedroom", "kitchen", "bathroom", "living room", "hallway", "back bedroom", "loft")
RELATIVES = ("baby", "children", "mother", "father", "partner", "son", "daughter", "neighbour")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August")
CAMPAIGN = (
    "We, the residents of Riverside Court, complain about the lifts. Both have been out of "
    "service for most of the last month, leaving elderly and disabled residents trapped in "
    "their flats. We ask for both to be repaired within seven days and for the landlord to "
    "meet the residents' association. Yours faithfully, {name}, flat {flat}."
)


def complaint(rng: random.Random) -> str:
    """A complaint made of a fault and a few of its consequences, contacts and requests."""

    def fill(template: str) -> str:
        return template.format(
            n=rng.randint(2, 60),
            room=rng.choice(ROOMS),
            relative=rng.choice(RELATIVES),
            month=rng.choice(MONTHS),
            day=rng.randint(1, 28),
        )

    opening = f"The {fill(rng.choice(THINGS))} {rng.choice(FAULTS)} {fill(rng.choice(SINCE))}."
    parts = [
        opening,
        *rng.sample(EFFECTS, rng.randint(1, 2)),
        *rng.sample(CONTACTS, rng.randint(1, 2)),
        rng.choice(ASKS),
    ]
    return " ".join(fill(part) for part in parts)


def synthetic_entries(count: int, now: float, seed: int) -> Iterator[Entry]:
    """Distinct texts' signatures are as good as random: each lands in its own buckets."""
    rng = np.random.default_rng(seed)
    chunk = 10_000
    for start in range(0, count, chunk):
        size = min(chunk, count - start)
        signatures = rng.integers(0, 2**32, size=(size, NUM_PERM), dtype=np.uint32)
        customers = rng.integers(0, 2**62, size=size // 3 + 1)
        ages = rng.random(size) * 29 * DAY
        for i in range(size):
            record_id = str(ULID())
            yield Entry(
                id=record_id,
                reference=f"CX-2025-{(start + i) % 1_000_000:06d}",
                received_at=now - float(ages[i]),
                customers=frozenset({f"{customers[i // 3]:024x}"}),
                by_person=True,
                signature=Signature(signatures[i]),
                campaign=record_id,
            )


def time_lookups(index: DedupeIndex, messages: list[str], seed: int) -> list[float]:
    rng = random.Random(seed)
    directory = ContactDirectory()
    probes = []
    for text in messages:
        email = f"tenant{rng.randint(1, 10**9)}@example.net"
        probes.append(
            (
                signature_of(None, text),
                customer_keys(directory.identities(Customer(email=email))),
            )
        )
    since = time.time() - 30 * DAY
    timings = []
    for signature, customers in probes:
        started = time.perf_counter()
        index.lookup(str(ULID()), signature, customers, since)
        timings.append((time.perf_counter() - started) * 1000)
    return timings


def stage_records(count: int, seed: int) -> list[IntakeRecord]:
    """New complaints, with repeats (same customer), follow-ups and a campaign mixed in."""
    rng = random.Random(seed)
    records: list[IntakeRecord] = []
    now = datetime.now(UTC)
    for number in range(count):
        roll = rng.random()
        email = f"resident{rng.randint(1, 10**9)}@example.org"
        if records and roll < 0.1:  # a repeat, a few words changed or none
            earlier = rng.choice(records)
            email, text = earlier.customer.email or email, earlier.text.replace("the", "our", 1)
        elif records and roll < 0.15:  # a follow-up quoting the reference
            earlier = rng.choice(records)
            email = earlier.customer.email or email
            text = f"Any news on my complaint, reference {earlier.reference}? Still waiting."
        elif roll < 0.2:
            text = CAMPAIGN.format(name=f"Resident {number}", flat=rng.randint(1, 120))
        else:
            text = complaint(rng)
        records.append(
            IntakeRecord(
                id=str(ULID()),
                reference=f"CX-{now.year}-{900_000 + number:06d}",
                channel="email",
                received_at=now + timedelta(milliseconds=number),
                source=Source(transport="smtp", raw_sha256="0" * 64),
                customer=Customer(email=email),
                subject="Complaint",
                text=text,
            )
        )
    return records


def _ledger_entry(record: IntakeRecord) -> LedgerEntry:
    return LedgerEntry(
        id=record.id,
        reference=record.reference,
        channel="email",
        transport="smtp",
        normaliser="email",
        received_at=record.received_at,
        raw_sha256=record.source.raw_sha256,
        raw_size=0,
        meta={},
    )


def time_triage(records: list[IntakeRecord], ctx: WorkerContext) -> list[float]:
    step = TriageStep()
    timings = []
    for record in records:
        entry = _ledger_entry(record)
        started = time.perf_counter()
        step.process(record, entry, ctx)
        timings.append((time.perf_counter() - started) * 1000)
    return timings


def time_triage_and_dedupe(records: list[IntakeRecord], ctx: WorkerContext) -> list[float]:
    """Both steps as the pipeline runs them, on records never seen before."""
    triage, dedupe = TriageStep(), Deduplicate()
    timings = []
    for record in records:
        fresh = record.model_copy(update={"id": str(ULID())})
        entry = _ledger_entry(fresh)
        started = time.perf_counter()
        dedupe.process(triage.process(fresh, entry, ctx), entry, ctx)
        timings.append((time.perf_counter() - started) * 1000)
    return timings


def time_dedupe(records: list[IntakeRecord], ctx: WorkerContext) -> list[float]:
    step = Deduplicate()
    timings = []
    for record in records:
        fresh = record.model_copy(update={"id": str(ULID())})  # never a record seen before
        entry = LedgerEntry(
            id=fresh.id,
            reference=fresh.reference,
            channel="email",
            transport="smtp",
            normaliser="email",
            received_at=fresh.received_at,
            raw_sha256=fresh.source.raw_sha256,
            raw_size=0,
            meta={},
        )
        started = time.perf_counter()
        step.process(fresh, entry, ctx)
        timings.append((time.perf_counter() - started) * 1000)
    return timings


# Per-message stages timed at each index size: each takes the records and the worker
# context and returns one time in milliseconds per record.
STAGES: dict[str, Callable[[list[IntakeRecord], WorkerContext], list[float]]] = {
    "dedupe": time_dedupe,
    "triage": time_triage,
    "triage+dedupe": time_triage_and_dedupe,
}


def available_bytes() -> int:
    with open("/proc/meminfo", encoding="ascii") as meminfo:
        for line in meminfo:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


def summary(name: str, timings: list[float]) -> str:
    return (
        f"{name:<30} median {median(timings):7.3f} ms   p99 {percentile(timings, 0.99):7.3f} ms"
        f"   ({len(timings)} messages)"
    )


@dataclass
class Level:
    """One index size, in its own Redis database so that sizes can be timed in turn."""

    size: int
    ctx: WorkerContext
    index: DedupeIndex
    timings: dict[str, list[float]] = field(default_factory=dict)


def fill(server: EmbeddedRedis, db: int, tmp: Path, size: int, now: float, seed: int) -> Level:
    client = redis.Redis(unix_socket_path=str(server.socket), db=db)
    settings = load_settings(redis_url=server.url, data_dir=tmp / "data", log_level="warning")
    ctx = WorkerContext.from_settings(settings, client)
    index = DedupeIndex(client, settings.duplicate_window_days * DAY, settings.follow_up_days * DAY)
    started = time.perf_counter()
    index.add_many(synthetic_entries(size, now, seed))
    print(f"{size:>9,} records: filled in {time.perf_counter() - started:6.1f} s", flush=True)
    return Level(size, ctx, index)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10k and 100k records only")
    parser.add_argument("--messages", type=int, default=2000, help="messages timed per figure")
    parser.add_argument("--rounds", type=int, default=5, help="turns taken between the sizes")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    exit_on_sigterm()
    configure_logging("warning")
    sizes = QUICK_SIZES if args.quick else SIZES
    rng = random.Random(args.seed)
    messages = [complaint(rng) for _ in range(args.messages)]
    records = {
        name: stage_records(args.messages, args.seed + 1000 * number)
        for number, name in enumerate(STAGES)
    }
    print(f"dedupe: index sizes {', '.join(f'{s:,}' for s in sizes)}; {args.messages} messages")
    levels: list[Level] = []
    fsync: dict[str, list[float]] = {}
    with (
        tempfile.TemporaryDirectory(prefix="intake-bench-dedupe-") as tmp,
        private_redis(Path(tmp) / "redis") as server,
    ):
        now = time.time()
        for size in sizes:
            if levels:
                used = redis_client(server).info("memory")["used_memory"]
                needed = used / sum(level.size for level in levels) * size
                if needed > MEMORY_SHARE * available_bytes():
                    print(
                        f"{size:>9,} records: skipped, about {needed / 2**30:.1f} GiB would be "
                        f"needed and {available_bytes() / 2**30:.1f} GiB is available"
                    )
                    break
            if not levels:  # every write waits for the disk, as the embedded Redis runs it
                scratch = fill(server, FSYNC_DB, Path(tmp), size, now, args.seed)
                fsync = {name: stage(records[name], scratch.ctx) for name, stage in STAGES.items()}
                scratch.ctx.connection.flushdb()
                redis_client(server).config_set("appendonly", "no")
            levels.append(fill(server, len(levels), Path(tmp), size, now, args.seed + size))
        memory = redis_client(server).info("memory")["used_memory"]
        print(f"Redis holds {memory / 2**20:,.0f} MiB in all", flush=True)
        # The sizes take turns, so that a busy moment on the machine falls on all of them.
        for turn in range(args.rounds):
            part = slice(
                turn * args.messages // args.rounds, (turn + 1) * args.messages // args.rounds
            )
            for level in levels:
                level.timings.setdefault("lookup", []).extend(
                    time_lookups(level.index, messages[part], args.seed + turn)
                )
                for name, stage in STAGES.items():
                    timings = stage(records[name][part], level.ctx)
                    level.timings.setdefault(name, []).extend(timings)

    results: dict[str, dict[str, float]] = {}
    print()
    for name, timings in fsync.items():
        print(f"{sizes[0]:>9,} records  " + summary(f"{name}, appendfsync always", timings))
    for level in levels:
        figures = results.setdefault(str(level.size), {})
        for name, timings in level.timings.items():
            print(f"{level.size:>9,} records  " + summary(name, timings))
            figures[f"{name}_median_ms"] = median(timings)
            figures[f"{name}_p99_ms"] = percentile(timings, 0.99)
    first, last = levels[0], levels[-1]
    ratio = median(last.timings["lookup"]) / median(first.timings["lookup"])
    step_median = median(last.timings["dedupe"])
    both_median = median(last.timings["triage+dedupe"])
    print()
    print("summary")
    print(
        f"  lookup median, {last.size:,} / {first.size:,} records: {ratio:.2f}"
        f"  target <= {TARGET_LOOKUP_RATIO}: {verdict(ratio <= TARGET_LOOKUP_RATIO)}"
    )
    print(
        f"  dedupe step median at {last.size:,} records: {step_median:.3f} ms"
        f"  target < {TARGET_STEP_MEDIAN_MS} ms: {verdict(step_median < TARGET_STEP_MEDIAN_MS)}"
    )
    print(
        f"  triage+dedupe median at {last.size:,} records: {both_median:.3f} ms"
        f"  target < {TARGET_STEP_MEDIAN_MS} ms: {verdict(both_median < TARGET_STEP_MEDIAN_MS)}"
    )
    write_json(args.json, {"sizes": results, "lookup_ratio": ratio})
    return 0 if ratio <= TARGET_LOOKUP_RATIO and step_median < TARGET_STEP_MEDIAN_MS else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
