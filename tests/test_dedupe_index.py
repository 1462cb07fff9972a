"""The deduplication index in the real Redis: what a lookup finds, and what it keeps."""

from __future__ import annotations

import time

import redis
from ulid import ULID

from gateway.schema import Customer
from workers.dedupe.customers import ContactDirectory, customer_keys
from workers.dedupe.index import (
    BUCKET_RECENT,
    CUSTOMER_KEEP,
    DedupeIndex,
    Entry,
    Registered,
    bucket_key,
    customer_key,
    meta_key,
    reference_key,
)
from workers.dedupe.signature import signature_of

DAY = 86400
TEXT = "The gutters at the back of the house overflow every time it rains and the wall is damp."


def entry(text: str, email: str, received_at: float, by_person: bool = True) -> Entry:
    identities = ContactDirectory().identities(Customer(email=email))
    record_id = str(ULID())
    return Entry(
        id=record_id,
        reference=f"CX-2026-{record_id[-6:]}",
        received_at=received_at,
        customers=customer_keys(identities),
        by_person=by_person,
        signature=signature_of(None, text),
        campaign=record_id,
    )


def test_a_lookup_finds_similar_text_inside_the_window_only(connection: redis.Redis) -> None:
    index = DedupeIndex(connection, 30 * DAY, 400 * DAY)
    now = time.time()
    old = entry(TEXT, "a@example.net", now - 40 * DAY)
    recent = entry(TEXT, "b@example.net", now - 2 * DAY)
    unrelated = entry("Bins not collected for three weeks.", "c@example.net", now - DAY)
    assert index.add_many([old, recent, unrelated]) == 3
    probe = entry(TEXT + " Please help.", "d@example.net", now)
    found = index.lookup(probe.id, probe.signature, probe.customers, now - 30 * DAY)
    assert isinstance(found, list)
    assert [e.id for e in found] == [recent.id]
    assert found[0].signature is not None and probe.signature is not None
    assert found[0].signature.similarity(probe.signature) > 0.8


def test_what_the_index_keeps_expires_and_holds_no_address(connection: redis.Redis) -> None:
    index = DedupeIndex(connection, 30 * DAY, 400 * DAY)
    record = entry(TEXT, "private.person@example.net", time.time())
    index.register(record, "{}", 3)
    keys = list(connection.scan_iter("intake:*"))
    assert keys
    for key in keys:
        ttl_days = connection.pttl(key) / 1000 / DAY
        limit = 400 if key == reference_key(record.reference).encode() else 30
        assert 0 < ttl_days <= limit, key
        dump = str(key) + str(connection.dump(key))
        assert "private.person" not in dump and "example.net" not in dump
    assert connection.exists(meta_key(record.id))


def test_registering_twice_keeps_the_first_decision(connection: redis.Redis) -> None:
    index = DedupeIndex(connection, 30 * DAY, 400 * DAY)
    record = entry(TEXT, "a@example.net", time.time())
    first = index.register(record, '{"n": 1}', 3)
    second = index.register(record, '{"n": 2}', 3)
    assert first == second == Registered('{"n": 1}', 0, ())
    again = index.lookup(record.id, record.signature, record.customers, time.time() - DAY)
    assert again == first


def test_a_bucket_keeps_only_the_newest_records_a_lookup_can_read(
    connection: redis.Redis,
) -> None:
    """A letter sent by many customers fills the same buckets; each keeps the newest
    ``BUCKET_RECENT`` records, which are all that a lookup ever reads of a bucket, so the
    index stays small and a lookup finds what it found before."""
    index = DedupeIndex(connection, 30 * DAY, 400 * DAY)
    now = time.time()
    letters = [
        entry(TEXT, f"tenant{n}@example.net", now - DAY + n * 60) for n in range(BUCKET_RECENT * 3)
    ]
    for letter in letters:
        index.register(letter, "{}", 3)
    signature = letters[0].signature
    assert signature is not None
    for band in signature.bands:
        members = connection.zrange(bucket_key(band), 0, -1)
        assert [m.decode() for m in members] == [e.id for e in letters[-BUCKET_RECENT:]]
    probe = entry(TEXT, "someone.else@example.net", now)
    found = index.lookup(probe.id, probe.signature, probe.customers, now - 30 * DAY)
    assert isinstance(found, list)
    assert {e.id for e in found} == {e.id for e in letters[-BUCKET_RECENT:]}


def test_a_customer_list_keeps_the_customer_newest_records(connection: redis.Redis) -> None:
    index = DedupeIndex(connection, 30 * DAY, 400 * DAY)
    now = time.time()
    sent = [
        entry(
            f"Message number {n} about something else entirely, {n * 7919}.",
            "a@example.net",
            now - DAY + n,
        )
        for n in range(CUSTOMER_KEEP + 5)
    ]
    for message in sent:
        index.register(message, "{}", 3)
    (customer,) = sent[0].customers
    kept = [m.decode() for m in connection.zrange(customer_key(customer), 0, -1)]
    assert kept == [e.id for e in sent[-CUSTOMER_KEEP:]]
