"""Text people typed into a form or a staff tool, made safe to keep and to show.

What a person typed is kept as typed — any script, emoji, right-to-left text — except what
no person means to type and what breaks storage or display: control characters, unpaired
surrogates (which cannot be written as UTF-8 at all) and, in one-line fields such as a
name, the bidirectional controls that can make a name display as something else.
"""

from __future__ import annotations

import re

_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
_LINE_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_BLANK_LINES = re.compile(r"\n(?:[ \t]*\n){2,}")


def strip_controls(text: str) -> str:
    """``text`` without control characters (tab and newline kept) or unpaired surrogates."""
    return _CONTROLS.sub("", text)


def clean_line(text: str) -> str:
    """One line for display: no controls, no bidi overrides, whitespace collapsed."""
    return " ".join(_LINE_UNSAFE.sub(" ", text).split())


def clean_text(text: str) -> str:
    """Paragraphs as typed, with ``\\n`` line ends, no controls, at most one blank line."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = strip_controls(text)
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    return _BLANK_LINES.sub("\n\n", text).strip()
