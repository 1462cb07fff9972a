"""Channel adapters: one per transport, each knowing its transport and the schema only.

An adapter has up to three parts: the listener that takes input and calls
``gateway.intake.accept``; a *normaliser* that turns the stored raw input into the
``intake/v1`` record (run at the edge or as the pipeline's first step); and a *notifier*
that sends a message back to the customer by that channel. The pipeline finds the last two
through the registries below, by name, so a step never imports a transport.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from importlib import import_module
from typing import Protocol

from gateway.blobstore import BlobStore
from gateway.ledger import LedgerEntry
from gateway.schema import IntakeRecord
from gateway.settings import Settings


class Normaliser(Protocol):
    """Fills ``record`` (id, reference, channel and source are set) from the raw input."""

    def __call__(
        self, raw: bytes, entry: LedgerEntry, record: IntakeRecord, blobs: BlobStore
    ) -> IntakeRecord: ...


@dataclass(frozen=True)
class Notice:
    """A message to send to a customer, already written; the notifier only delivers it."""

    record: IntakeRecord
    purpose: str
    recipient: str
    subject: str
    text: str
    html: str | None
    message_id: str
    short_text: str | None = None  # for channels that carry a few lines only (SMS)


@dataclass(frozen=True)
class Delivery:
    channel: str
    sent_at: datetime
    message_id: str
    via: str


class Notifier(Protocol):
    channel: str

    def recipient_for(self, record: IntakeRecord) -> str | None:
        """Who a reply to this record goes to, or None when the channel cannot reach them."""

    def send(self, notice: Notice) -> Delivery:
        """Deliver ``notice``; raise DeliveryError when it cannot be handed over."""


_NORMALISERS = {
    "email": "channels.email.normalise:normalise_email",
    "twilio": "channels.sms.normalise:TwilioNormaliser",
    "web": "channels.web.normalise:normalise_web",
    "api": "channels.api.normalise:normalise_api",
    "social_email": "channels.email.social:normalise_social_forward",
}

_NOTIFIERS = {
    "email": "channels.email.outbound:EmailNotifier",
    "sms": "channels.sms.notify:SMSNotifier",
    "whatsapp": "channels.sms.notify:WhatsAppNotifier",
    # The form and staff-entered complaints are acknowledged by email when one was given.
    "web": "channels.email.outbound:EmailNotifier",
    "phone": "channels.email.outbound:EmailNotifier",
    "letter": "channels.email.outbound:EmailNotifier",
    "in_person": "channels.email.outbound:EmailNotifier",
    "api": "channels.email.outbound:EmailNotifier",
    # Forwarded posts are acknowledged to the team member who forwarded them.
    "social": "channels.email.social:SocialTeamNotifier",
}


def _load(path: str) -> object:
    module, _, name = path.partition(":")
    return getattr(import_module(module), name)


def normaliser_for(name: str, settings: Settings | None = None) -> Normaliser:
    """The normaliser registered as ``name``. A class there is built with the settings
    (one that needs them, e.g. to fetch media); a function is the normaliser itself."""
    try:
        target = _load(_NORMALISERS[name])
    except KeyError:
        raise LookupError(f"no normaliser named {name!r}") from None
    if isinstance(target, type):
        if settings is None:
            raise LookupError(f"the normaliser {name!r} needs the settings")
        target = target(settings)
    normaliser: Normaliser = target  # type: ignore[assignment]
    return normaliser


def load_all() -> None:
    """Import every registered normaliser and notifier now, as a worker starts, rather
    than on the first record of each kind, while a customer waits for the reply."""
    for path in (*_NORMALISERS.values(), *_NOTIFIERS.values()):
        _load(path)


def refusal_for(notifier: Notifier, record: IntakeRecord, recipient: str) -> str | None:
    """Why nothing may be sent to ``recipient`` on this channel (the customer opted out),
    or None. Optional for a notifier (``refusal``): asked before sending, so that a refusal
    is a decision with its reason, not a failed send nor a count against a daily limit."""
    refusal = getattr(notifier, "refusal", None)
    reason = refusal(record, recipient) if callable(refusal) else None
    return str(reason) if reason else None


def notifier_for(channel: str, settings: Settings) -> Notifier | None:
    """The notifier that answers on ``channel``, or None when that channel has none."""
    target = _NOTIFIERS.get(channel)
    if target is None:
        return None
    factory = _load(target)
    notifier: Notifier = factory(settings)  # type: ignore[operator]
    return notifier
