"""The policy our outgoing mail is written with: compat32, with short plain headers as is.

compat32 passes every header through the ``Header`` class to fold it, which costs more
than the rest of writing an acknowledgement; nearly all of ours (a date, an address, a
Message-ID, a subject with a reference) are plain ASCII and fit on one line, and for
those the class writes the value unchanged. Those are written directly; any other value
(non-ASCII, too long, holding a tab or a line break) still goes through compat32's own folding.
"""

from __future__ import annotations

from email.policy import Compat32
from typing import Any


class PlainHeaders(Compat32):
    """compat32's output, without its folding machinery for one-line ASCII headers."""

    def _fold(self, name: str, value: Any, sanitize: bool) -> str:
        if (
            isinstance(value, str)
            and value.isascii()
            and len(name) + 2 + len(value) <= (self.max_line_length or 0)
            and value.isprintable()  # no tab, line break or control character
        ):
            return f"{name}: {value}{self.linesep}"
        return str(super()._fold(name, value, sanitize))  # type: ignore[misc]  # not in the stubs


PLAIN_HEADERS = PlainHeaders()
