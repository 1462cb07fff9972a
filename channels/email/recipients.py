"""Which recipients the SMTP listener takes mail for: our own domains, nothing else.

The gateway must never be an open relay. Anything that is not a plain ``local@domain``
on an accepted domain is refused before the message body is sent: foreign domains,
``%``-hack and bang-path routing, quoted local parts, source routes, and look-alike
domains such as ``ours.example.evil``. The refusal names no address.
"""

from __future__ import annotations

import re

# RFC 5321 dot-atom local part, less the characters old mailers treat as routing (% ! @ :).
_LOCAL_PART = re.compile(r"^[A-Za-z0-9#$&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9#$&'*+/=?^_`{|}~-]+)*$")

RELAY_DENIED = "550 5.7.1 Relaying denied: this server only takes mail for its own addresses"
BAD_ADDRESS = "553 5.1.3 Mailbox name not allowed"


class RecipientPolicy:
    """Accepts ``local@domain`` for the configured domains, case-insensitively."""

    def __init__(self, domains: list[str]) -> None:
        self.domains = frozenset(d.lower().rstrip(".") for d in domains)

    def refusal(self, address: str | None) -> str | None:
        """The SMTP reply refusing ``address``, or None when it is one of ours."""
        if not address or len(address) > 254:
            return BAD_ADDRESS
        if address.lower() == "postmaster":
            return None  # RFC 5321 4.5.1: must be accepted without a domain
        if address.startswith("@") or ":" in address:
            return RELAY_DENIED  # source route, <@relay:user@domain>
        local, at, domain = address.rpartition("@")
        if not at or not local:
            return BAD_ADDRESS
        domain = domain.lower()
        if domain.endswith("."):
            domain = domain[:-1]
        if domain not in self.domains:
            return RELAY_DENIED
        if not _LOCAL_PART.match(local) or len(local) > 64:
            return RELAY_DENIED if ("%" in local or "!" in local or "@" in local) else BAD_ADDRESS
        return None

    def is_ours(self, address: str | None) -> bool:
        if not address or "@" not in address:
            return False
        return address.rpartition("@")[2].lower().rstrip(".") in self.domains
