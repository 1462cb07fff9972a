"""Which language a message is written in, so replies can offer help in it.

langdetect is probabilistic; seeding it makes the same text always give the same answer.
Very short texts are left undetected rather than guessed.
"""

from __future__ import annotations

from langdetect import DetectorFactory, LangDetectException, detect_langs

DetectorFactory.seed = 0
MIN_LETTERS = 12
MIN_CONFIDENCE = 0.8


def detect_language(text: str) -> str | None:
    """ISO 639-1 code of ``text``'s language, or None when unsure."""
    sample = text[:5000]
    if sum(ch.isalpha() for ch in sample) < MIN_LETTERS:
        return None
    try:
        best = detect_langs(sample)[0]
    except LangDetectException:
        return None
    return str(best.lang) if best.prob >= MIN_CONFIDENCE else None
