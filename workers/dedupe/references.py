"""What in a message points at an existing case: a reply to one of our acknowledgements, or
a reference number quoted in its subject or text.

Customers do not copy references faithfully: "CX-2026-000123", "cx 2026 000123",
"ref 2026-000123" and "CX2026000123" are all the same case. A number after "ref" or
"reference" without our prefix is taken as ours.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from gateway.schema import IntakeRecord

_ACK_ID = re.compile(r"<ack\.([0-9A-HJKMNP-TV-Z]{26})@([^<>\s]+)>", re.IGNORECASE)


@dataclass(frozen=True)
class Pointers:
    """The cases a message points at, in the order a person would trust them."""

    acknowledged: tuple[str, ...]  # record ids whose acknowledgement this message answers
    quoted: tuple[str, ...]  # references quoted in the subject or text, normalised

    def __bool__(self) -> bool:
        return bool(self.acknowledged or self.quoted)


@lru_cache(maxsize=8)
def _reference_pattern(prefix: str) -> re.Pattern[str]:
    return re.compile(
        rf"(?<![A-Za-z0-9])(?:{re.escape(prefix)}|ref(?:erence)?(?:\s*(?:no|number))?\.?)"
        r"[\s:#.\-]*(\d{4})[\s\-/]*(\d{6})(?!\d)",
        re.IGNORECASE,
    )


def quoted_references(text: str, prefix: str) -> list[str]:
    """References in ``text``, normalised to ``PREFIX-YEAR-NNNNNN``, first seen first."""
    if text.isascii() and prefix.isascii():
        # Every reference starts with the prefix or "ref": most messages have neither, and
        # two substring tests are cheaper than the expression's scan.
        lowered = text.lower()
        if "ref" not in lowered and prefix.lower() not in lowered:
            return []
    found: list[str] = []
    for year, number in _reference_pattern(prefix).findall(text):
        reference = f"{prefix}-{year}-{number}"
        if reference not in found:
            found.append(reference)
    return found


def acknowledged_ids(record: IntakeRecord, domains: list[str]) -> list[str]:
    """Record ids of our acknowledgements named in In-Reply-To or References.

    Our acknowledgements carry ``<ack.{record id}@{our first domain}>``; an id at any other
    domain is someone else's message that happens to look alike.
    """
    ours = {domain.lower() for domain in domains}
    found: list[str] = []
    headers = [record.thread.in_reply_to or "", *reversed(record.thread.references)]
    for header in headers:
        for record_id, domain in _ACK_ID.findall(header):
            if domain.lower() in ours and record_id.upper() not in found:
                found.append(record_id.upper())
    return found


def pointers(record: IntakeRecord, prefix: str, domains: list[str]) -> Pointers:
    quoted = quoted_references(f"{record.subject or ''}\n{record.text}", prefix)
    return Pointers(
        acknowledged=tuple(i for i in acknowledged_ids(record, domains) if i != record.id),
        quoted=tuple(r for r in quoted if r != record.reference),
    )
