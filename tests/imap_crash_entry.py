"""Test-only: run one IMAP round and SIGKILL this process at a chosen step.

    python -m tests.imap_crash_entry STEP NTH

Settings come from the environment as for ``intake imap``; the first mailbox is read. The
process kills itself, with no chance to clean up, right after the NTH time the poller
reports STEP ("fetched", "accepted", "copied", "moved", "checkpointed").
"""

from __future__ import annotations

import os
import signal
import sys

from channels.imap.poller import MailboxPoller
from gateway.connection import connect
from gateway.intake import IntakeContext
from gateway.logs import configure_logging
from gateway.settings import load_settings


def main() -> None:
    step, nth = sys.argv[1], int(sys.argv[2])
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_json, settings.log_file)
    assert settings.redis_url
    seen = 0

    def observer(name: str, uid: int) -> None:
        nonlocal seen
        if name == step:
            seen += 1
            if seen == nth:
                os.kill(os.getpid(), signal.SIGKILL)

    intake = IntakeContext.from_settings(settings, connect(settings.redis_url))
    MailboxPoller(settings.imap_mailboxes[0], intake, observer=observer).run_once()


if __name__ == "__main__":
    main()
