"""Waiting for new mail: IDLE where the server has it, a plain sleep where it has not.

IDLE is ended and begun again every ``INTAKE_IMAP_IDLE_RENEW_SECONDS`` (at most 10
minutes, well inside the 29 minutes RFC 2177 allows, and inside the idle timeouts of
NAT boxes and of servers such as Exchange Online). Ending it makes the server answer, so
it doubles as a check that the connection is still alive.

The wait is cut into short slices. After each one the poller's ``tick`` runs (it renews
the mailbox lease) and a stop request is seen within seconds. A slice that wakes early
with nothing to say is how a closed connection shows itself in imapclient (issue #565:
``idle_check`` returns at once, empty, for ever); ending IDLE then raises, and the poller
reconnects.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any

from channels.imap.session import Session
from channels.imap.watchdog import Watchdog

SLICE_SECONDS = 1.0


def announces_mail(response: Any) -> bool:
    """``* n EXISTS`` (new mail) or ``* n RECENT``; BYE ends the wait too, so DONE can fail."""
    if not isinstance(response, tuple) or len(response) < 2:
        return False
    return response[1] in (b"EXISTS", b"RECENT") or response[0] == b"BYE"


def wait_for_mail(
    session: Session,
    *,
    poll_seconds: float,
    renew_seconds: float,
    timeout: float,
    stop: threading.Event,
    tick: Callable[[], None],
    watchdog: Watchdog,
) -> None:
    """Return when the folder may hold new mail, when IDLE is due for renewal, or on stop."""
    if not session.can_idle:
        deadline = time.monotonic() + poll_seconds
        while not stop.is_set() and (remaining := deadline - time.monotonic()) > 0:
            stop.wait(min(SLICE_SECONDS, remaining))
            tick()
        return
    client = session.client
    with watchdog.guard(timeout + 5):
        client.idle()
    finished = False
    try:
        started = time.monotonic()
        while not stop.is_set():
            remaining = renew_seconds - (time.monotonic() - started)
            if remaining <= 0:
                break
            step = min(SLICE_SECONDS, remaining)
            began = time.monotonic()
            with watchdog.guard(step + timeout + 5):
                responses = client.idle_check(timeout=step)
            tick()
            if any(announces_mail(r) for r in responses):
                break
            if not responses and time.monotonic() - began < step / 2:
                break  # woken for nothing: see whether the connection still answers
        finished = True
    finally:
        with watchdog.guard(timeout + 5):
            if finished:
                client.idle_done()
            else:  # already failing (lease lost, say): that error is the one to report
                with contextlib.suppress(Exception):
                    client.idle_done()
