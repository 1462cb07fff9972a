"""Linking a message to the case it follows up, only when it is the same customer's case.

A reply to our acknowledgement, or a quoted reference, is a strong sign that a message is
about an existing case, but not proof: an acknowledgement can be forwarded, and anyone can
type a number. A case is only linked when the message comes from one of the identities the
case's customer used; otherwise the message stays a new case and the reason says which
reference was not linked and why, for a person to judge.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from workers.dedupe.index import DedupeIndex
from workers.dedupe.references import Pointers


@dataclass(frozen=True)
class FollowUp:
    case_reference: str | None = None
    reasons: list[str] = field(default_factory=list)


def resolve(pointers: Pointers, customers: frozenset[str], index: DedupeIndex) -> FollowUp:
    """The case this message follows up, if any, and a reason for every pointer seen."""
    if not pointers:
        return FollowUp()
    reasons: list[str] = []
    acknowledged = index.references_of(list(pointers.acknowledged))
    ordered: list[tuple[str, bool]] = [
        (acknowledged[record_id], True)
        for record_id in pointers.acknowledged
        if record_id in acknowledged
    ]
    if len(acknowledged) < len(pointers.acknowledged):
        reasons.append("answers an acknowledgement of a record that is not known: not linked")
    ordered += [(reference, False) for reference in pointers.quoted]
    unique: dict[str, bool] = {}
    for reference, reply in ordered:
        unique.setdefault(reference, reply)
    cases = index.cases(list(unique))
    linked: str | None = None
    for reference, reply in unique.items():
        how = f"answers our acknowledgement of {reference}" if reply else f"quotes {reference}"
        case = cases.get(reference)
        if case is None:
            reasons.append(f"{how}, which is not a case on record: not linked")
        elif not customers & case.customers:
            reasons.append(
                f"{how}, which is another customer's case (the sender does not match): not linked"
            )
        elif linked is None:
            linked = reference
            reasons.append(f"{how}, this customer's case: a follow-up to it")
        else:
            reasons.append(f"also {how}, another of this customer's cases")
    return FollowUp(linked, reasons)
