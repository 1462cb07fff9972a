"""Who a message is from, as far as deduplication needs to know.

Two messages are from the same customer when they share an identity: the same email
address or the same phone number by default. A landlord's customer directory (housing
management system, CRM) knows more, for instance that an email address and a mobile number
are one tenant's, so that an SMS repeating an email is recognised; it plugs in through
:class:`CustomerDirectory`, named by ``INTAKE_CUSTOMER_DIRECTORY``.

Identities leave this module only as hashes: the shared index stores and compares hashes,
so no address or phone number appears in a Redis key or value of its own.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from importlib import import_module
from typing import Protocol

from gateway.errors import SettingsError
from gateway.schema import Customer
from gateway.settings import Settings

_NOT_DIGITS = re.compile(r"[^\d+]")


class CustomerDirectory(Protocol):
    """Every identity a customer is known by; an empty set when nothing identifies them."""

    def identities(self, customer: Customer) -> frozenset[str]: ...


class ContactDirectory:
    """The default: the normalised email address and phone number of the message itself."""

    def identities(self, customer: Customer) -> frozenset[str]:
        found: set[str] = set()
        if customer.email and "@" in customer.email:
            found.add("email:" + customer.email.strip().lower())
        if customer.phone:
            digits = _NOT_DIGITS.sub("", customer.phone)
            if len(digits.lstrip("+")) >= 6:
                found.add("phone:" + digits)
        return frozenset(found)


def load_directory(settings: Settings) -> CustomerDirectory:
    """The directory named by ``customer_directory`` (``module:factory``), else the default.

    The factory is called with the settings, so a directory can read its own connection
    details from wherever the deployment keeps them.
    """
    target = settings.customer_directory
    if not target:
        return ContactDirectory()
    module, _, name = target.partition(":")
    try:
        factory: Callable[[Settings], CustomerDirectory] = getattr(import_module(module), name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise SettingsError(f"INTAKE_CUSTOMER_DIRECTORY: cannot load {target!r}") from exc
    return factory(settings)


def customer_keys(identities: frozenset[str]) -> frozenset[str]:
    """The hashes the index stores for a customer's identities."""
    return frozenset(
        hashlib.blake2b(identity.encode(), digest_size=12, person=b"intake-customer").hexdigest()
        for identity in identities
    )
