"""How many SMS segments a text takes, and fitting a text into a few of them.

A single SMS holds 160 GSM-7 characters, or 70 UCS-2 code units once any character is
outside GSM-7 (an emoji, a curly quote, most non-Latin scripts). A longer text is sent
as concatenated segments of 153 and 67, each carrying a header; an escaped GSM-7
character (``€``, ``[`` ...) takes two places and is never split across segments, nor
is a UTF-16 surrogate pair. Every segment is charged, and long texts arrive out of order
or in pieces on old phones, so our messages stay within two.
"""

from __future__ import annotations

from enum import StrEnum

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENDED = frozenset("^{}\\[~]|€\f")
SINGLE = {"GSM-7": 160, "UCS-2": 70}
PART = {"GSM-7": 153, "UCS-2": 67}
ELLIPSIS = "..."


class Encoding(StrEnum):
    GSM7 = "GSM-7"
    UCS2 = "UCS-2"


def encoding_of(text: str) -> Encoding:
    allowed = GSM7_BASIC | GSM7_EXTENDED
    return Encoding.GSM7 if all(ch in allowed for ch in text) else Encoding.UCS2


def _units(text: str, encoding: Encoding) -> list[int]:
    """The size of each character in its encoding's units (septets or UTF-16 units)."""
    if encoding is Encoding.GSM7:
        return [2 if ch in GSM7_EXTENDED else 1 for ch in text]
    return [2 if ord(ch) > 0xFFFF else 1 for ch in text]


def segment_count(text: str) -> int:
    """Segments needed to send ``text`` (0 for an empty text)."""
    if not text:
        return 0
    encoding = encoding_of(text)
    units = _units(text, encoding)
    if sum(units) <= SINGLE[encoding]:
        return 1
    limit, segments, used = PART[encoding], 1, 0
    for size in units:  # a character that does not fit whole starts the next segment
        if used + size > limit:
            segments, used = segments + 1, 0
        used += size
    return segments


def fit(text: str, max_segments: int = 2) -> str:
    """``text`` shortened to ``max_segments``: whole lines are dropped from the end first
    (messages put what matters most first), then the first line is cut at a word."""
    text = text.strip()
    lines = text.split("\n")
    while len(lines) > 1 and segment_count("\n".join(lines)) > max_segments:
        lines.pop()
    kept = "\n".join(lines).strip()
    if segment_count(kept) <= max_segments:
        return kept
    words = kept.split(" ")
    while len(words) > 1 and segment_count(" ".join(words) + ELLIPSIS) > max_segments:
        words.pop()
    cut = " ".join(words)
    while cut and segment_count(cut + ELLIPSIS) > max_segments:  # one very long word
        cut = cut[:-1]
    return cut + ELLIPSIS
