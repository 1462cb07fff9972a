"""What the poller hands to ``accept`` for one message, and the keys that make it once only.

A message is named by two idempotency keys, and a hit on either is a repeat:

* its **position** — ``imap:<mailbox>:<folder>:<UIDVALIDITY>:<UID>``. IMAP promises that
  this names one message, unchanged, for as long as the UIDVALIDITY lasts. It catches a
  message taken in again after a crash between ``accept`` and the move, and lets the
  poller skip fetching a message it knows it has already taken in;
* its **content** — the email key of ``channels.email.identity`` (Message-ID plus a hash
  of the identifying headers and the body), the same key the SMTP listener records. A
  position means nothing once the UIDVALIDITY changes (a mailbox rebuilt or restored from
  a backup numbers the same messages afresh), so this key is what recognises them then;
  and a message that reaches us both by SMTP and in a hosted mailbox is taken in once.

Content alone would not do: it is the fallback, not the rule, because the position is
known before the body is fetched. Position alone would double every message after a
UIDVALIDITY change. Two different messages that share a Message-ID, or have none, differ
in their hash and are both kept; two byte-identical copies of one message are one
message, as they are when a sending server delivers it twice by SMTP.
"""

from __future__ import annotations

from channels.email.identity import email_identity
from gateway.intake import Arrival
from gateway.settings import IMAPMailbox


def position_key(mailbox: IMAPMailbox, uidvalidity: int, uid: int) -> str:
    return f"imap:{mailbox.name}:{mailbox.folder}:{uidvalidity}:{uid}"


def imap_arrival(mailbox: IMAPMailbox, uidvalidity: int, uid: int, raw: bytes) -> Arrival:
    content_key, message_id = email_identity(raw)
    return Arrival(
        channel="email",
        transport="imap",
        normaliser="email",
        raw=raw,
        idempotency_key=position_key(mailbox, uidvalidity, uid),
        also_known_as=(content_key,),
        meta={
            "envelope_from": None,  # IMAP does not keep the SMTP envelope
            "recipients": [mailbox.recipient],
            "message_id": message_id,
            "extra": {
                "mailbox": mailbox.name,
                "folder": mailbox.folder,
                "uidvalidity": uidvalidity,
                "uid": uid,
            },
        },
    )
