"""SMS segments: GSM-7 160/153, UCS-2 70/67, escapes and surrogate pairs never split, and
fitting a message into two segments without losing its first line."""

from __future__ import annotations

import pytest

from channels.sms.segments import Encoding, encoding_of, fit, segment_count
from tests.twilio_standin import segments as carrier_count

EMOJI = "😀"  # two UTF-16 code units


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", 0),
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("a" * 306, 2),
        ("a" * 307, 3),
        ("ü" * 70, 1),  # ü is GSM-7
        ("€" * 80, 1),  # 160 septets: each escaped character takes two
        ("€" * 81, 2),
        ("ŵ" * 70, 1),  # Welsh w-circumflex is not GSM-7: UCS-2
        ("ŵ" * 71, 2),
        ("ŵ" * 134, 2),
        ("ŵ" * 135, 3),
        (EMOJI * 35, 1),
        (EMOJI * 36, 2),
        ("a" * 159 + "–", 3),  # one en dash turns 160 characters into UCS-2
    ],
)
def test_segment_counts(text: str, expected: int) -> None:
    assert segment_count(text) == expected


def test_an_escape_pair_is_never_split_across_segments() -> None:
    text = "a" * 152 + "€" + "a" * 152  # 306 septets, yet the € cannot straddle 153
    assert segment_count(text) == 3


def test_a_surrogate_pair_is_never_split_across_segments() -> None:
    text = "ŵ" * 66 + EMOJI + "ŵ" * 66  # 134 units, yet the emoji cannot straddle 67
    assert segment_count(text) == 3


@pytest.mark.parametrize(
    ("text", "encoding"),
    [("Mould £20 @ flat 3", Encoding.GSM7), ("Tŷ", Encoding.UCS2), ("“quoted”", Encoding.UCS2)],
)
def test_encoding(text: str, encoding: Encoding) -> None:
    assert encoding_of(text) == encoding


@pytest.mark.parametrize(
    "text",
    ["plain " * 40, "مرحبا " * 30, EMOJI * 50, "{braces} [and] ~tildes~ " * 10],
)
def test_the_count_agrees_with_a_carriers(text: str) -> None:
    assert segment_count(text) == carrier_count(text)


def test_fit_drops_the_last_lines_first_and_keeps_the_first() -> None:
    first = "Riverside Homes: we have your message. Your reference is CX-2026-000123."
    text = "\n".join([first, "b" * 150, "c" * 150, "d" * 150])
    fitted = fit(text)
    assert fitted.split("\n") == [first, "b" * 150]
    assert segment_count(fitted) == 2


def test_fit_cuts_one_long_line_at_a_word() -> None:
    text = "ŵord " * 100
    fitted = fit(text)
    assert segment_count(fitted) <= 2
    assert fitted.endswith("ŵord...")


def test_fit_leaves_a_short_text_alone() -> None:
    assert fit("  Your reference is CX-2026-000001.\n") == "Your reference is CX-2026-000001."
