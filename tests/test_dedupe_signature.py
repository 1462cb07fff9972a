"""How alike two texts look to the dedupe step: edited repeats, unrelated texts, quotes."""

from __future__ import annotations

import subprocess
import sys

from workers.dedupe.signature import signature_of

COMPLAINT = (
    "The boiler in my flat has been broken for two weeks and nobody has come out to fix it. "
    "We have no heating and no hot water, and my children are getting ill from the cold. "
    "I have phoned three times and each time I was told an engineer would come the next day, "
    "but nobody came. Please send someone this week."
)


def similarity(a: str, b: str) -> float:
    first, second = signature_of(None, a), signature_of(None, b)
    assert first is not None and second is not None
    return first.similarity(second)


def test_a_repeat_with_a_few_words_changed_stays_above_the_threshold() -> None:
    edited = COMPLAINT.replace("two weeks", "three weeks").replace("this week", "today")
    assert similarity(COMPLAINT, edited) >= 0.8
    assert similarity(COMPLAINT, COMPLAINT.upper() + "!!") == 1.0


def test_another_complaint_on_the_same_subject_is_far_below() -> None:
    other = (
        "Our boiler keeps breaking down. The engineer came last week and said a part was on "
        "order, but we have heard nothing since and the house is freezing."
    )
    assert similarity(COMPLAINT, other) < 0.3


def test_quoted_replies_do_not_count() -> None:
    quoted = "\n".join("> " + line for line in COMPLAINT.split(". "))
    reply_one = f"Thanks, Tuesday morning suits me.\n\nOn Mon, 1 Jun 2026, Sam wrote:\n{quoted}"
    reply_two = f"Please ring my mobile instead.\n{quoted}"
    assert similarity(reply_one, reply_two) < 0.3


def test_a_message_without_words_has_no_signature() -> None:
    assert signature_of(None, "  ... !! ") is None
    subject_only = signature_of("Broken boiler", "")
    assert subject_only is not None and subject_only.words == 2


def test_a_worker_loads_datasketchs_minhash_without_scipy() -> None:
    """The worker's memory budget: datasketch's package imports scipy for sketches we never use."""
    probe = (
        "import sys, workers.pipeline, workers.runner\n"
        "from workers.dedupe.signature import signature_of\n"
        "assert signature_of(None, 'the boiler is broken again') is not None\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'scipy', 'datasketch'}))\n"
        "import datasketch\n"
        "print(datasketch.MinHash is sys.modules['datasketch.minhash'].MinHash)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.split("\n")[:2] == ["['datasketch']", "True"]
