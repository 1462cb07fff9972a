"""Which language a message is written in, so replies can offer help in it.

langdetect is probabilistic; seeding it makes the same text always give the same answer.
Very short texts are left undetected rather than guessed.

Most messages are plainly English, and langdetect spends milliseconds sampling n-grams to
say so (and now and then calls a terse English text Dutch or German). A text in ASCII
letters of whose words at least a fifth are English function words is English without asking it:
ordinary English prose runs at 40-50 % such words, while the words chosen here are not
words of other languages written in Latin script (no "to", "no", "me", "in", "was", "die"
or "an", which Polish, Spanish, Dutch or German share with English).
"""

from __future__ import annotations

import re

from langdetect import DetectorFactory, LangDetectException, detect_langs

DetectorFactory.seed = 0
MIN_LETTERS = 12
MIN_CONFIDENCE = 0.8
ENGLISH_MIN_WORDS = 6
ENGLISH_MIN_SHARE = 0.2
ENGLISH_FUNCTION_WORDS = frozenset(
    word
    for line in (
        "the and of my for have has been with this that are we our your you they there",
        "from at but can when what about it it's its not would could should please since",
        "still because which were had them their he she his him out just get got any all",
        "some after if or be by did does don't can't won't i'm i've we've they've there's",
        "is being am very yours who how why where than then these those",
    )
    for word in line.split()
)
_WORD = re.compile(r"[a-z]+(?:['’][a-z]+)?")
_NON_ASCII_LETTER = re.compile(r"[^\W\d_a-zA-Z]")


def detect_language(text: str) -> str | None:
    """ISO 639-1 code of ``text``'s language, or None when unsure."""
    sample = text[:5000]
    if sum(ch.isalpha() for ch in sample) < MIN_LETTERS:
        return None
    if _plainly_english(sample):
        return "en"
    try:
        best = detect_langs(sample)[0]
    except LangDetectException:
        return None
    return str(best.lang) if best.prob >= MIN_CONFIDENCE else None


def _plainly_english(sample: str) -> bool:
    """True when ``sample``'s letters are ASCII and English function words are common."""
    if _NON_ASCII_LETTER.search(sample):
        return False
    words = [word.replace("’", "'") for word in _WORD.findall(sample.lower())]
    if len(words) < ENGLISH_MIN_WORDS:
        return False
    common = sum(word in ENGLISH_FUNCTION_WORDS for word in words)
    return common >= ENGLISH_MIN_SHARE * len(words)
