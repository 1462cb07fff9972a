"""Moving a message out of the folder read from, once it is safely taken in.

MOVE (RFC 6851) where the server has it: one atomic step. Otherwise COPY, flag
``\\Deleted`` and ``UID EXPUNGE`` (UIDPLUS), which removes only that message. A server
with neither gets COPY and ``\\Deleted`` only: a plain EXPUNGE would also remove what
other people flagged, so the flagged copy stays for their mail client to expunge, and
the checkpoint keeps the poller from taking it in again.

Without MOVE there is one gap: a poller killed between COPY and the expunge copies the
message again when it next runs. The message is then in the processed folder twice,
but it is taken in once (its idempotency keys), which is what matters.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from channels.imap.session import Session

DELETED = b"\\Deleted"


def move_messages(
    session: Session,
    uids: Sequence[int],
    folder: str,
    copied: Callable[[], None] | None = None,
) -> None:
    """Move ``uids`` to ``folder``; ``copied`` is called between COPY and the expunge."""
    if not uids:
        return
    client = session.client
    if session.can_move:
        client.move(uids, folder)
        return
    client.copy(uids, folder)
    if copied is not None:
        copied()
    client.add_flags(uids, [DELETED], silent=True)
    if session.can_uidplus:
        client.uid_expunge(uids)
