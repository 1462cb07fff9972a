"""Is a message a repeat of one the same customer already sent, and whose text does it share?

A repeat is the same customer (an identity in common) sending the same or nearly the same
text within the window: it is linked to the earlier record, which is kept and published,
as is the repeat. Among several earlier matches the first the customer sent is chosen,
preferring one that was not itself a repeat, since that is where the case is.

A message sent by a machine (automated mail, an auto-reply, spam) is indexed like any
other, so that a machine repeating itself is recognised, but it is never the original of
a person's message: a customer whose mail system forwarded their complaint automatically
and who then sent it again by hand must still have a case.

The same text from other customers does not make a repeat. It makes a campaign (see
``outcome``): the message joins the campaign of the most similar text written by a
person, or starts its own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime

from gateway.schema import Disposition, IntakeRecord
from workers.dedupe.followup import FollowUp
from workers.dedupe.index import Entry
from workers.dedupe.signature import Signature

CAMPAIGN_MIN_WORDS = 12


@dataclass
class Decision:
    """What the step decided, kept in the index so a second run gives the same answer."""

    disposition: str | None = None  # set only when the record is still a new case
    duplicate_of: str | None = None
    case_reference: str | None = None
    similarity: float | None = None
    campaign: str = ""
    reasons: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        # The fields in order, as ``dataclasses.asdict`` gives them, without its deep copy.
        return json.dumps(vars(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, data: str) -> Decision:
        return cls(**json.loads(data))


@dataclass(frozen=True)
class Subject:
    """The record being decided, as the index sees it."""

    record: IntakeRecord
    signature: Signature | None
    customers: frozenset[str]
    by_person: bool

    def entry(self, decision: Decision) -> Entry:
        """The record as the index keeps it, in the campaign and duplicate ``decision``
        names."""
        return Entry(
            id=self.record.id,
            reference=self.record.reference,
            received_at=self.record.received_at.timestamp(),
            customers=self.customers,
            by_person=self.by_person,
            signature=self.signature,
            campaign=decision.campaign,
            duplicate_of=decision.duplicate_of or "",
        )


def decide(
    subject: Subject,
    candidates: list[Entry],
    follow_up: FollowUp,
    threshold: float,
    window_days: int,
) -> Decision:
    record = subject.record
    matches = _matches(subject, candidates, threshold)
    decision = Decision(reasons=list(follow_up.reasons), campaign=_campaign(subject, matches))
    repeats = [
        (entry, score)
        for entry, score in matches
        if entry.customers & subject.customers and _earlier(entry, record)
    ]
    for entry, _ in repeats:
        if subject.by_person and not entry.by_person:
            decision.reasons.append(
                f"similar to {entry.reference}, but that was sent by a machine and cannot be "
                "the original of a person's message"
            )
    repeats = [(e, s) for e, s in repeats if e.by_person or not subject.by_person]
    if follow_up.case_reference:
        decision.case_reference = follow_up.case_reference
        decision.disposition = Disposition.FOLLOW_UP.value
    elif repeats:
        original, score = min(repeats, key=lambda m: (bool(m[0].duplicate_of), m[0].received_at))
        decision.duplicate_of = original.id
        decision.similarity = round(score, 3)
        decision.disposition = Disposition.DUPLICATE.value
        when = datetime.fromtimestamp(original.received_at, UTC).strftime("%Y-%m-%d %H:%M UTC")
        decision.reasons.append(
            f"repeats {original.reference} from the same customer, received {when} "
            f"(similarity {score:.2f})"
        )
    elif subject.signature is None:
        decision.reasons.append("no text to compare with earlier messages")
    elif not subject.customers:
        decision.reasons.append("the sender cannot be identified, so a repeat cannot be told")
    else:
        decision.reasons.append(
            f"no earlier message from this customer with similar text in the last "
            f"{window_days} days"
        )
    if decision.disposition and record.disposition != Disposition.NEW_CASE:
        decision.reasons.append(
            f"disposition left as {record.disposition.value}, decided before this step"
        )
        decision.disposition = None
    return decision


def _matches(
    subject: Subject, candidates: list[Entry], threshold: float
) -> list[tuple[Entry, float]]:
    if subject.signature is None:
        return []
    scored = [
        (entry, subject.signature.similarity(entry.signature))
        for entry in candidates
        if entry.signature is not None
    ]
    return [(entry, score) for entry, score in scored if score >= threshold]


def _earlier(entry: Entry, record: IntakeRecord) -> bool:
    """Received before ``record`` (ids break a tie: they sort by arrival)."""
    return (entry.received_at, entry.id) < (record.received_at.timestamp(), record.id)


def _campaign(subject: Subject, matches: list[tuple[Entry, float]]) -> str:
    """The campaign a person's message joins: that of the most similar text by a person
    (any customer, either side in time), or a new one named after this record.

    Short texts take part in none: "thank you" or "any update?" from three customers is
    not a campaign, while a petition or a residents' letter runs to a few sentences.
    """
    if (
        not subject.by_person
        or subject.signature is None
        or subject.signature.words < CAMPAIGN_MIN_WORDS
    ):
        return ""
    joinable = [(entry, score) for entry, score in matches if entry.by_person and entry.campaign]
    if not joinable:
        return subject.record.id
    best, _ = max(joinable, key=lambda m: (m[1], -m[0].received_at))
    return best.campaign
