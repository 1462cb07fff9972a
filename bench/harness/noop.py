"""The job the rq baseline runs: it does nothing, so what is timed is rq's own cost."""

from __future__ import annotations


def noop(*args: object) -> None:
    """Accept whatever a job passes and return at once."""
