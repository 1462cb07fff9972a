"""Opt-out and opt-in keywords: the one-word replies that stop and restart our messages.

As with the carriers' and Twilio's own handling, only a message that is nothing but the
keyword counts, in any case and with surrounding spaces (and a trailing full stop or
exclamation mark, since a person who writes "Stop." means it): "stop the leak please"
is a complaint, not an opt-out. Twilio's Advanced Opt-Out marks the keywords it
recognised (custom or in other languages) with ``OptOutType``; that is honoured too.
"""

from __future__ import annotations

from enum import StrEnum

OPT_OUT = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"})
OPT_IN = frozenset({"START", "UNSTOP"})


class Keyword(StrEnum):
    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"


def keyword_of(body: str | None, opt_out_type: str | None = None) -> Keyword | None:
    """The keyword ``body`` is, or None when it is an ordinary message."""
    marked = (opt_out_type or "").strip().upper()
    if marked == "STOP":
        return Keyword.OPT_OUT
    if marked == "START":
        return Keyword.OPT_IN
    word = (body or "").strip().rstrip(".!").strip().upper()
    if word in OPT_OUT:
        return Keyword.OPT_OUT
    if word in OPT_IN:
        return Keyword.OPT_IN
    return None
