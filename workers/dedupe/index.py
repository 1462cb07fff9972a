"""The deduplication index, shared by every worker through Redis.

Per record, kept for the duplicate window after it was indexed:

- ``intake:lsh:{band}:{hash}``: the LSH buckets, one sorted set per band value, record ids
  scored by arrival time, so a lookup reads only the part inside the window. A bucket
  keeps its newest ``BUCKET_RECENT`` records, all that a lookup reads of it, so a letter
  sent by hundreds of customers does not grow its buckets.
- ``intake:dedupe:cust:{customer}``: each customer's recent records (the newest
  ``CUSTOMER_KEEP``), so a customer's own repeat is found even when a campaign crowds its
  buckets.
- ``intake:dedupe:sig:{id}``: what a lookup needs to confirm a candidate, packed in one
  string (a hash holding a 512-byte signature takes twice the memory).
- ``intake:dedupe:campaign:{id}``: the customers seen with one campaign's text, written
  only once a second customer sends it.
- ``intake:dedupe:done:{id}``: the step's decision for the record, so a job that runs
  again gets the same answer and counts nothing twice.

and for ``follow_up_days``: ``intake:dedupe:ref:{reference}``, whose case a reference is.

A message costs one round trip when no earlier text is similar enough to change what
is decided without one, which is what most new complaints find: the caller decides as
if alone, and one script reads the buckets, the customer's records and the candidates'
details, compares signatures and, finding none similar, writes the record and that
decision atomically (``settle``). Otherwise the script returns the candidates and the
caller decides with them and writes in a second (``register``). A message naming a
reference costs one or two more, to find whose case it is. Each script touches a bounded
number of entries (the newest in each bucket, and each bucket is trimmed to them by rank
as a record is added), so the cost does not grow with the number of stored records.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from weakref import WeakKeyDictionary

import redis
from redis.commands.core import Script

from gateway.ledger import PREFIX, record_key, text
from workers.dedupe import scripts
from workers.dedupe.signature import Signature

LSH = f"{PREFIX}:lsh"
DEDUPE = f"{PREFIX}:dedupe"
CUSTOMER_RECENT = 20  # of one customer's records, the newest this many are compared
BUCKET_RECENT = 8  # of one bucket's records, the newest this many are candidates
MAX_CANDIDATES = 32
CUSTOMER_KEEP = 50  # records kept per customer list


def bucket_key(band: str) -> str:
    return f"{LSH}:{band}"


def customer_key(customer: str) -> str:
    return f"{DEDUPE}:cust:{customer}"


def meta_key(record_id: str) -> str:
    return f"{DEDUPE}:sig:{record_id}"


def reference_key(reference: str) -> str:
    return f"{DEDUPE}:ref:{reference}"


def campaign_key(campaign: str) -> str:
    return f"{DEDUPE}:campaign:{campaign}"


def done_key(record_id: str) -> str:
    return f"{DEDUPE}:done:{record_id}"


@dataclass(frozen=True)
class Entry:
    """One record as the index keeps it."""

    id: str
    reference: str
    received_at: float  # seconds since the epoch
    customers: frozenset[str]  # hashes, see customers.customer_keys
    by_person: bool  # False for automated mail, auto-replies and spam
    signature: Signature | None
    campaign: str = ""  # the campaign (cluster of near-identical texts) it belongs to
    duplicate_of: str = ""

    def index_keys(self) -> list[str]:
        """Its buckets, then its customers' lists."""
        buckets = [bucket_key(b) for b in self.signature.bands] if self.signature else []
        return buckets + [customer_key(c) for c in sorted(self.customers)]

    def pack(self) -> bytes:
        """``received|person|campaign|duplicate_of|reference|customers`` and the signature."""
        head = "|".join(
            [
                repr(self.received_at),
                "1" if self.by_person else "0",
                self.campaign,
                self.duplicate_of,
                self.reference,
                ",".join(sorted(self.customers)),
            ]
        )
        return head.encode() + b"\n" + (self.signature.to_bytes() if self.signature else b"")

    @classmethod
    def unpack(cls, record_id: str, data: bytes) -> Entry:
        head, _, signature = data.partition(b"\n")
        received, person, campaign, duplicate_of, reference, customers = head.decode().split("|")
        return cls(
            id=record_id,
            reference=reference,
            received_at=float(received),
            customers=frozenset(c for c in customers.split(",") if c),
            by_person=person == "1",
            signature=Signature.from_bytes(signature) if signature else None,
            campaign=campaign,
            duplicate_of=duplicate_of,
        )


@dataclass(frozen=True)
class Registered:
    """The decision as stored (the first one, should two runs race) and the campaign size."""

    decision: str
    campaign_count: int
    earlier: tuple[str, ...]


@dataclass(frozen=True)
class Case:
    """Whose case a reference is."""

    reference: str
    record_id: str
    customers: frozenset[str]


class DedupeIndex:
    def __init__(
        self, connection: redis.Redis, window_seconds: int, reference_seconds: int
    ) -> None:
        self.redis = connection
        self.window = window_seconds
        self.reference_ttl = reference_seconds
        self._lookup, self._register, self._settle, self._bulk = _scripts(connection)

    def lookup(
        self, record_id: str, signature: Signature | None, customers: frozenset[str], since: float
    ) -> Registered | list[Entry]:
        """The stored decision if the record was done before, else the candidates: records
        received since ``since`` that share a bucket or a customer with it."""
        customer_keys = [customer_key(c) for c in sorted(customers)]
        bands = [bucket_key(b) for b in signature.bands] if signature else []
        reply = self._lookup(
            keys=[done_key(record_id), *customer_keys, *bands],
            args=[
                repr(since),
                len(customer_keys),
                CUSTOMER_RECENT,
                BUCKET_RECENT,
                MAX_CANDIDATES,
                meta_key(""),
            ],
        )
        if text(reply[0]) == "done":
            return _registered(reply[1])
        return [entry for entry in _candidates(reply[1]) if entry.id != record_id]

    def register(self, entry: Entry, decision: str, campaign_threshold: int) -> Registered:
        """Index ``entry`` and keep ``decision``, unless a decision is already kept."""
        keys, args = self._register_call(entry, decision, campaign_threshold)
        return _registered(self._register(keys=keys, args=args))

    def settle(
        self,
        entry: Entry,
        decision: str,
        campaign_threshold: int,
        since: float,
        threshold: float,
    ) -> Registered | list[Entry]:
        """Register ``entry`` with ``decision``, the decision made without candidates,
        unless a candidate received since ``since`` has a signature at least ``threshold``
        similar, which could change it: then the candidates, as ``lookup`` finds them, for
        the caller to decide with and ``register``. The stored decision if the record was
        done before."""
        keys, args = self._register_call(entry, decision, campaign_threshold)
        signature = entry.signature.to_bytes() if entry.signature else b""
        args += [repr(since), CUSTOMER_RECENT, BUCKET_RECENT, MAX_CANDIDATES, meta_key("")]
        reply = self._settle(keys=keys, args=[*args, repr(threshold), signature])
        if text(reply[0]) == "found":
            return [found for found in _candidates(reply[1]) if found.id != entry.id]
        return _registered(reply[1])

    def _register_call(
        self, entry: Entry, decision: str, campaign_threshold: int
    ) -> tuple[list[str], list[str | bytes | int]]:
        """REGISTER's keys and arguments (see ``scripts``)."""
        index_keys = entry.index_keys()
        buckets = len(entry.signature.bands) if entry.signature else 0
        customers = sorted(entry.customers)
        identities = customers or [f"record:{entry.id}"]
        keys = [
            done_key(entry.id),
            meta_key(entry.id),
            reference_key(entry.reference),
            campaign_key(entry.campaign),
            campaign_key(entry.campaign) + ":first",
            meta_key(entry.campaign),
            *index_keys,
        ]
        args: list[str | bytes | int] = [
            entry.id,
            decision,
            repr(entry.received_at),
            self.window * 1000,
            BUCKET_RECENT,
            self.reference_ttl * 1000,
            buckets,
            len(index_keys) - buckets,
            campaign_threshold,
            CUSTOMER_KEEP,
            entry.pack(),
            ",".join(customers),
            entry.campaign,
            len(identities),
            *identities,
        ]
        return keys, args

    def cases(self, references: Sequence[str]) -> dict[str, Case]:
        """The known cases among ``references``."""
        with self.redis.pipeline(transaction=False) as pipe:
            for reference in references:
                pipe.hgetall(reference_key(reference))
            replies = pipe.execute()
        found: dict[str, Case] = {}
        for reference, reply in zip(references, replies, strict=True):
            data = {text(k): text(v) for k, v in reply.items()}
            if "id" in data:
                customers = frozenset(c for c in data.get("c", "").split(",") if c)
                found[reference] = Case(reference, data["id"], customers)
        return found

    def references_of(self, record_ids: Sequence[str]) -> dict[str, str]:
        """The references of records, read from the ledger."""
        with self.redis.pipeline(transaction=False) as pipe:
            for record_id in record_ids:
                pipe.hget(record_key(record_id), "reference")
            replies = pipe.execute()
        return {i: text(r) for i, r in zip(record_ids, replies, strict=True) if r}

    def add_many(self, entries: Iterable[Entry], batch: int = 200) -> int:
        """Index many records without decisions, ``batch`` to a round trip: for filling an
        index in bulk (benchmarks, rebuilding), not for the pipeline."""
        added = 0
        iterator: Iterator[Entry] = iter(entries)
        while chunk := list(islice(iterator, batch)):
            keys: list[str] = []
            args: list[bytes | str | int] = [self.window * 1000]
            for entry in chunk:
                index_keys = entry.index_keys()
                keys += [meta_key(entry.id), *index_keys]
                args += [entry.id, repr(entry.received_at), len(index_keys), entry.pack()]
            self._bulk(keys=keys, args=args)
            added += len(chunk)
        return added


_registered_scripts: WeakKeyDictionary[redis.Redis, tuple[Script, Script, Script, Script]] = (
    WeakKeyDictionary()
)


def _scripts(connection: redis.Redis) -> tuple[Script, Script, Script, Script]:
    """The index's scripts for ``connection``, registered once per connection: registering
    hashes each script's text, which per message cost more than a lookup's Python."""
    found = _registered_scripts.get(connection)
    if found is None:
        found = _registered_scripts[connection] = (
            connection.register_script(scripts.LOOKUP),
            connection.register_script(scripts.REGISTER),
            connection.register_script(scripts.SETTLE),
            connection.register_script(scripts.BULK),
        )
    return found


def _candidates(packed: bytes) -> Iterator[Entry]:
    """Read the lookup's candidates: a 2-byte length and the id, a 4-byte length and the
    meta, each in turn."""
    view, at = memoryview(packed), 0
    while at < len(view):
        size = int.from_bytes(view[at : at + 2], "big")
        record_id = bytes(view[at + 2 : at + 2 + size]).decode()
        at += 2 + size
        size = int.from_bytes(view[at : at + 4], "big")
        yield Entry.unpack(record_id, bytes(view[at + 4 : at + 4 + size]))
        at += 4 + size


def _registered(flat: Sequence[bytes | str]) -> Registered:
    data = {text(flat[i]): text(flat[i + 1]) for i in range(0, len(flat), 2)}
    earlier = tuple(e for e in data.get("earlier", "").split(",") if e)
    return Registered(data["decision"], int(data.get("count", "0")), earlier)
