"""Sending one message to a customer, once: shared by the acknowledge and redirect steps.

The wording comes from templates named after the purpose (``acknowledgement.*.j2``,
``redirect.*.j2``); the channel's notifier delivers it. The outbox guard makes the send
happen once however often the step runs, and the result — sent, failed, with its reason —
comes back as the record's ``Acknowledgement`` shape, so each step can say what happened.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from channels import Notice, Notifier
from gateway.errors import DeliveryError, StepBusyError, SuppressedError
from gateway.logs import get_logger
from gateway.schema import Acknowledgement, AckStatus, IntakeRecord
from workers.context import WorkerContext
from workers.messages import render, render_if_present
from workers.outbox import Allowance, Outbox

log = get_logger("workers.notify")

MAX_SEND_ATTEMPTS = 6  # about two lease periods of a relay outage
_MESSAGE_ID_TAG = {"acknowledgement": "ack"}


def message_id(record_id: str, purpose: str, domain: str) -> str:
    """Our Message-ID for a notice: replies quoting it are recognised as follow-ups."""
    return f"<{_MESSAGE_ID_TAG.get(purpose, purpose)}.{record_id}@{domain}>"


def outcome(
    status: AckStatus,
    reason: str,
    channel: str | None = None,
    sent_at: datetime | None = None,
    message_id: str | None = None,
) -> Acknowledgement:
    return Acknowledgement(
        channel=channel, status=status, reason=reason, sent_at=sent_at, message_id=message_id
    )


def template_values(record: IntakeRecord, ctx: WorkerContext, **extra: Any) -> dict[str, Any]:
    settings = ctx.settings
    return {
        "record": record,
        "deadlines": record.deadlines,
        "greeting_name": record.customer.name or "customer",
        "organisation": settings.organisation_name,
        "contact_phone": settings.contact_phone,
        "escalation_url": settings.escalation_url,
        **extra,
    }


def compose(
    record: IntakeRecord,
    purpose: str,
    recipient: str,
    values: dict[str, Any],
    ctx: WorkerContext,
    templates: str | None = None,
) -> Notice:
    """The notice for ``purpose``, worded by the templates named ``templates`` (by default
    the purpose's own: ``acknowledgement.txt.j2`` ...)."""
    folder = ctx.settings.templates_dir
    name = templates or purpose
    return Notice(
        record=record,
        purpose=purpose,
        recipient=recipient,
        subject=render(f"{name}.subject.j2", folder, **values).strip(),
        text=render(f"{name}.txt.j2", folder, **values),
        html=render(f"{name}.html.j2", folder, **values),
        message_id=message_id(record.id, purpose, ctx.settings.domains[0]),
        short_text=render_if_present(f"{purpose}.sms.j2", folder, **values),
    )


def send_once(
    notifier: Notifier, notice: Notice, ctx: WorkerContext, allowance: Allowance | None = None
) -> Acknowledgement:
    """Deliver ``notice`` unless it was delivered before, or (with ``allowance``) its
    recipient has had all the messages allowed; raise to retry a passing failure."""
    record, purpose = notice.record, notice.purpose
    outbox = Outbox(ctx.connection, ctx.settings.outbox_claim_seconds)
    claim = outbox.claim(record.id, purpose, allowance)
    if claim.state == "busy":
        raise StepBusyError(f"{record.id}: {purpose} being sent by another worker")
    if claim.state == "over" and allowance is not None:
        hours = allowance.seconds // 3600
        reason = (
            f"already {allowance.sends} {purpose}s to this address in {hours} hours "
            "(possible mail loop)"
        )
        return outcome(AckStatus.SUPPRESSED, reason, notifier.channel)
    if claim.state == "sent":
        sent_at = datetime.fromtimestamp(claim.sent_at or time.time(), UTC)
        return outcome(
            AckStatus.SENT, f"sent via {claim.via}", notifier.channel, sent_at, notice.message_id
        )
    try:
        delivery = notifier.send(notice)
    except SuppressedError as exc:  # the customer opted out: a decision, not a failure
        outbox.release(record.id, purpose, status="suppressed")
        log.info(f"{purpose}.suppressed", record_id=record.id)
        return outcome(AckStatus.SUPPRESSED, str(exc), notifier.channel)
    except DeliveryError as exc:
        if exc.permanent or claim.attempts >= MAX_SEND_ATTEMPTS:
            outbox.release(record.id, purpose, status="failed")
            log.warning(f"{purpose}.failed", record_id=record.id, error=str(exc))
            return outcome(AckStatus.FAILED, str(exc), notifier.channel)
        outbox.release(record.id, purpose)
        raise
    outbox.sent(
        record.id,
        purpose,
        delivery.sent_at.timestamp(),
        delivery.via,
        count=f"{purpose}s:{delivery.channel}",
    )
    log.info(f"{purpose}.sent", record_id=record.id, via=delivery.via)
    return outcome(
        AckStatus.SENT,
        f"sent via {delivery.via}",
        delivery.channel,
        delivery.sent_at,
        delivery.message_id,
    )
