"""The dedupe step's shortcuts give what the plain ways give: shingles, signature
comparison and bands, the index's batched reads, its register reply, and settling a
message in one round trip."""

from __future__ import annotations

import json
import random
import threading
import time
from dataclasses import asdict
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
import redis

from gateway.schema import Disposition, IntakeRecord
from gateway.settings import Settings
from tests.test_dedupe_index import entry as make_entry
from tests.test_dedupe_step import make_record, run
from workers.dedupe import followup, outcome
from workers.dedupe.customers import ContactDirectory, customer_keys
from workers.dedupe.decide import Decision, Subject, decide
from workers.dedupe.index import (
    BUCKET_RECENT,
    CUSTOMER_RECENT,
    DedupeIndex,
    Entry,
    Registered,
    _candidates,
    _registered,
    bucket_key,
    customer_key,
    done_key,
    meta_key,
)
from workers.dedupe.references import pointers
from workers.dedupe.signature import (
    _WORD,
    BANDS,
    NUM_PERM,
    ROWS,
    Signature,
    _hash,
    shingles,
    signature_of,
    text_shingles,
)
from workers.steps.dedupe import by_person

DAY = 86400
TEXTS = [
    "The boiler in my flat has been broken for two weeks and nobody came.",
    "the BOILER in my flat has been broken for 2 weeks, and NOBODY came!!",
    "Flat_12: rang 3x re: damp\tmould\nin the back-bedroom; it's worse now",
    "Café owner's flat: the façade is cracked; naïve repairs didn't help. Straße 5",
    "don't   can't\nwon't -- ok?? 12,000 £ 3.5 _ __ ___",
    "",
    "   ",
]

# The lookup as it read candidates before (one GET per id), to compare the batched one with.
ONE_BY_ONE_LOOKUP = """
local done = redis.call('HGETALL', KEYS[1])
if #done > 0 then return {'done', done} end
local customers, most = tonumber(ARGV[2]), tonumber(ARGV[5])
local seen, out, count = {}, {}, 0
for i = 2, #KEYS do
  local limit = ARGV[4]
  if i - 1 <= customers then limit = ARGV[3] end
  local ids = redis.call('ZREVRANGEBYSCORE', KEYS[i], '+inf', ARGV[1], 'LIMIT', 0, limit)
  for _, id in ipairs(ids) do
    if not seen[id] and count < most then
      seen[id] = true
      local meta = redis.call('GET', ARGV[6] .. id)
      if meta then
        count = count + 1
        table.insert(out, struct.pack('>I2', #id) .. id .. struct.pack('>I4', #meta) .. meta)
      end
    end
  end
end
return {'found', table.concat(out)}
"""


def test_ascii_text_is_split_into_the_same_shingles_as_word_by_word() -> None:
    rng = random.Random(3)
    alphabet = "abcXYZ019 _'\t\n.,!?-£é"
    texts = TEXTS + ["".join(rng.choice(alphabet) for _ in range(200)) for _ in range(300)]
    for text in texts:
        words = _WORD.findall(text.casefold())
        assert text_shingles(text) == (shingles(words), len(words)), text


def _random_pair(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    a = rng.integers(0, 2**32, NUM_PERM, dtype=np.uint32)
    b = a.copy()
    changed = rng.random(NUM_PERM) < rng.random()
    flips = rng.choice(
        np.array([1, 2**31, 2**31 + 1, 0xFFFFFFFF, 0x7FFFFFFF], dtype=np.uint32), NUM_PERM
    )
    b[changed] ^= flips[changed]
    b[rng.random(NUM_PERM) < 0.1] = 0
    return a, b


def test_comparing_signatures_as_integers_counts_the_equal_values() -> None:
    rng = np.random.default_rng(5)
    for _ in range(500):
        a, b = _random_pair(rng)
        expected = float(np.count_nonzero(a == b)) / NUM_PERM
        stored = Signature.from_bytes(Signature(b).to_bytes())
        assert Signature(a).similarity(Signature(b)) == expected
        assert Signature(a).similarity(stored) == expected
        assert stored.similarity(Signature(a)) == expected
    zero = Signature(np.zeros(NUM_PERM, dtype=np.uint32))
    assert zero.similarity(zero) == 1.0


def test_a_signature_read_back_is_the_one_stored() -> None:
    rng = np.random.default_rng(7)
    for _ in range(50):
        values = rng.integers(0, 2**32, NUM_PERM, dtype=np.uint32)
        made, stored = Signature(values), Signature.from_bytes(Signature(values).to_bytes())
        assert made.to_bytes() == values.astype("<u4").tobytes() == stored.to_bytes()
        assert np.array_equal(stored.values, values) and stored.values.dtype == np.uint32
        data, width = values.byteswap().tobytes(), ROWS * 4
        bands = [f"{b}:{_hash(data[b * width : (b + 1) * width])}" for b in range(BANDS)]
        assert made.bands == stored.bands == bands


def test_a_signature_is_the_same_made_again_or_in_another_thread() -> None:
    first = [signature_of(None, text) for text in TEXTS]
    again: list[Signature | None] = []
    worker = threading.Thread(target=lambda: again.extend(signature_of(None, t) for t in TEXTS))
    worker.start()
    worker.join()
    for one, two in zip(first, again, strict=True):
        assert (one and one.to_bytes(), one and one.words) == (
            two and two.to_bytes(),
            two and two.words,
        )


def test_the_decision_is_written_as_asdict_writes_it() -> None:
    decision = Decision("duplicate", "01ABC", None, 0.938, "c1", ["é reason", 'quote "x"'])
    assert decision.to_json() == json.dumps(asdict(decision), separators=(",", ":"))
    assert Decision.from_json(decision.to_json()) == decision


def test_the_lookup_reads_candidates_in_batches_as_one_by_one(connection: redis.Redis) -> None:
    """Many candidates, some without details any more, and fewer wanted than found."""
    index = DedupeIndex(connection, 30 * DAY, 400 * DAY)
    now = time.time()
    letter = "We the residents of Riverside Court complain about the lifts being broken."
    entries = [make_entry(letter, f"r{i % 7}@example.net", now - i * 60) for i in range(60)]
    index.add_many(entries)
    for gone in entries[::4]:
        connection.delete(meta_key(gone.id))
    probe = make_entry(letter, "r3@example.net", now)
    assert probe.signature is not None
    one_by_one = connection.register_script(ONE_BY_ONE_LOOKUP)
    customers = [customer_key(c) for c in sorted(probe.customers)]
    keys = [done_key(probe.id), *customers, *(bucket_key(b) for b in probe.signature.bands)]
    for most in (1, 3, 8, 32, 200):
        for since in (now - DAY, now - 20 * 60, now + 1):
            args = [repr(since), len(customers), CUSTOMER_RECENT, BUCKET_RECENT, most, meta_key("")]
            batched = index._lookup(keys=keys, args=args)
            expected = one_by_one(keys=keys, args=args)
            assert batched == expected
            found = [entry.id for entry in _candidates(batched[1])]
            assert len(found) <= most and len(set(found)) == len(found)
            assert most < 32 or since != now - DAY or len(found) > 8


def test_registering_returns_what_it_stored(connection: redis.Redis) -> None:
    index = DedupeIndex(connection, 30 * DAY, 400 * DAY)
    now = time.time()
    letter = "We the residents of Riverside Court complain about the lifts being broken."
    first = make_entry(letter, "a@example.net", now - 60)
    index.register(first, '{"n": 0}', 2)
    for number, email in enumerate(["b@example.net", "c@example.net", "a@example.net"]):
        entry = make_entry(letter, email, now + number)
        joined = Entry(**{**entry.__dict__, "campaign": first.id})
        registered = index.register(joined, f'{{"n": {number + 1}}}', 2)
        stored = connection.hgetall(done_key(joined.id))
        assert registered == _registered([part for item in stored.items() for part in item])
        assert registered.campaign_count == number + 2 or email == "a@example.net"


def test_references_are_found_as_the_expression_alone_finds_them() -> None:
    from workers.dedupe.references import _reference_pattern, quoted_references

    texts = [*TEXTS, "Any news on CX-2026-000123?", "my REF. NO 2026 000123 and cx2026000124"]
    texts += ["Reference number: 2026/000125", "rEf 2026-000126", "ﬁx cX 2026 000127", "x"]
    texts += ["ref 2026-0001", "see ref", "1234567890", "AB-2026-000128 and ab 2026 000129"]
    for prefix in ("CX", "AB", "ſx", ""):
        for text in texts:
            plain = []
            for year, number in _reference_pattern(prefix).findall(text):
                if f"{prefix}-{year}-{number}" not in plain:
                    plain.append(f"{prefix}-{year}-{number}")
            assert quoted_references(text, prefix) == plain, (prefix, text)


def look_up_then_register(
    record: IntakeRecord, settings: Settings, connection: redis.Redis
) -> IntakeRecord:
    """The dedupe step as it ran before settling: look up, decide with whatever was found,
    register; two round trips for every message."""
    window = settings.duplicate_window_days * DAY
    index = DedupeIndex(connection, window, settings.follow_up_days * DAY)
    subject = Subject(
        record=record,
        signature=signature_of(record.subject, record.text),
        customers=customer_keys(ContactDirectory().identities(record.customer)),
        by_person=by_person(record),
    )
    received = record.received_at.timestamp()
    found = index.lookup(record.id, subject.signature, subject.customers, received - window)
    if isinstance(found, Registered):
        registered = found
    else:
        pointed = pointers(record, settings.reference_prefix, settings.domains)
        decision = decide(
            subject,
            found,
            followup.resolve(pointed, subject.customers, index),
            settings.duplicate_similarity,
            settings.duplicate_window_days,
        )
        registered = index.register(
            subject.entry(decision),
            decision.to_json(),
            settings.campaign_min_customers,
        )
    return outcome.apply(
        record, registered, settings.campaign_min_customers, settings.duplicate_window_days
    )


def mixed_messages(count: int, seed: int) -> list[IntakeRecord]:
    """New complaints, edited repeats, the same letter from many customers, short texts,
    follow-ups quoting references, machine mail and records already set aside."""
    rng = random.Random(seed)
    faults = ["boiler", "lift", "front door", "roof", "shower", "window", "fence", "kitchen tap"]
    words = ["damp", "mould", "noise", "leak", "broken", "cold", "again", "weeks", "nobody"]
    letter = (
        "We the residents of Riverside Court complain that both lifts have been out of "
        "service for most of the month, leaving elderly and disabled neighbours trapped."
    )
    records: list[IntakeRecord] = []
    start = datetime.now(UTC) - timedelta(days=2)
    for number in range(count):
        roll = rng.random()
        email = f"tenant{rng.randint(1, 40)}@example.net"
        automated, disposition = rng.random() < 0.05, Disposition.NEW_CASE
        if records and roll < 0.2:  # a repeat, edited or not, maybe by someone else
            earlier = rng.choice(records)
            text = earlier.text.replace(" the ", " our ", rng.randint(0, 2))
            if rng.random() < 0.7:
                email = earlier.customer.email or email
        elif records and roll < 0.3:  # mostly by the customer whose case it is
            earlier = rng.choice(records)
            text = f"Any news on {earlier.reference}? still waiting"
            if rng.random() < 0.8:
                email = earlier.customer.email or email
        elif roll < 0.45:
            text = letter + f" Signed, flat {rng.randint(1, 9)}."
        elif roll < 0.55:
            text = rng.choice(["still no heating", "thank you", "any update?", "ok"])
        else:
            text = f"The {rng.choice(faults)} " + " ".join(rng.choices(words, k=rng.randint(4, 40)))
        if rng.random() < 0.05:
            disposition = Disposition.NEEDS_REVIEW
        record = make_record(
            text,
            email=None if rng.random() < 0.03 else email,
            received_at=start + timedelta(minutes=number),
            automated=automated,
            disposition=disposition,
        )
        records.append(record)
    return records


def test_settling_decides_as_looking_up_then_registering(
    settings: Settings, connection: redis.Redis, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every message's outcome (disposition, repeat, follow-up, campaign and reasons) is the
    same as with a lookup and a register, and most new ones take the single round trip."""
    other = redis.Redis.from_url(redis_url, db=1)
    registers = 0
    plain_register = DedupeIndex.register

    def counted(self: DedupeIndex, *args: object) -> Registered:
        nonlocal registers
        registers += 1
        return plain_register(self, *args)  # type: ignore[arg-type]

    records = mixed_messages(400, seed=11)
    expected = []
    for record in records:
        expected.append(look_up_then_register(record, settings, other))
    monkeypatch.setattr(DedupeIndex, "register", counted)
    settled = [run(record, settings, connection) for record in records]
    other.flushdb()
    other.close()
    assert [r.model_dump(mode="json") for r in settled] == [
        r.model_dump(mode="json") for r in expected
    ]
    outcomes = {r.disposition for r in settled}
    assert {"new_case", "duplicate", "follow_up", "needs_review"} <= outcomes
    assert sum(1 for r in settled if r.campaign) > 20
    assert 0 < registers < len(records) / 2  # the rest were settled in one round trip
