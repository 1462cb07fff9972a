"""Reference numbers as customers write them, and replies to our acknowledgements."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gateway.schema import IntakeRecord, Source, Thread
from workers.dedupe.references import pointers, quoted_references


@pytest.mark.parametrize(
    "text",
    [
        "My reference is CX-2026-000123.",
        "re cx 2026 000123 still waiting",
        "Ref 2026-000123",
        "reference no. 2026/000123",
        "(CX2026000123)",
        "Subject: RE: Your complaint CX-2026-000123 - acknowledged",
    ],
)
def test_the_ways_customers_write_a_reference(text: str) -> None:
    assert quoted_references(text, "CX") == ["CX-2026-000123"]


@pytest.mark.parametrize(
    "text",
    [
        "Call me on 2026 000123 4",  # digits running on
        "flat 2026, 000123",  # not after a prefix or "ref"
        "XCX-2026-000123",  # a longer code that ends like ours
        "CX-2026-00012",  # too few digits
    ],
)
def test_numbers_that_are_not_references(text: str) -> None:
    assert quoted_references(text, "CX") == []


def test_another_prefix_is_recognised_when_configured() -> None:
    assert quoted_references("HA-2025-000777 and CX-2026-000001", "HA") == ["HA-2025-000777"]


def test_only_our_acknowledgements_count_and_the_record_itself_is_left_out() -> None:
    ours, theirs = "01J0000000000000000000000A", "01J0000000000000000000000B"
    record = IntakeRecord(
        id="01J0000000000000000000000C",
        reference="CX-2026-000003",
        channel="email",
        received_at=datetime.now(UTC),
        source=Source(transport="smtp", raw_sha256="0" * 64),
        subject="Re: CX-2026-000003 and CX-2026-000001",
        thread=Thread(
            in_reply_to=f"<ack.{ours}@housing.test>",
            references=[f"<ack.{theirs}@elsewhere.example>", "<x@example.net>"],
        ),
    )
    found = pointers(record, "CX", ["housing.test", "intake.test"])
    assert found.acknowledged == (ours,)
    assert found.quoted == ("CX-2026-000001",)
