"""Acknowledge: tell the customer we have their message, its reference and what happens next.

Never to machines (autoresponders, bounces, lists), never to our own addresses, at most
``ack_limit_per_recipient`` a day to one address (autoresponders that carry no RFC 3834
headers would otherwise loop with us), and never twice for one record (the outbox guard).
Every decision, sent or not, is written on the record with its reason.
"""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime

from channels import Notice, notifier_for
from gateway.errors import DeliveryError, StepBusyError
from gateway.ledger import PREFIX, LedgerEntry
from gateway.logs import get_logger
from gateway.schema import Acknowledgement, AckStatus, Disposition, IntakeRecord
from gateway.working_days import compute_deadlines, uk_date
from workers.context import WorkerContext
from workers.messages import render
from workers.outbox import Outbox

log = get_logger("workers.steps.acknowledge")

PURPOSE = "acknowledgement"
MAX_SEND_ATTEMPTS = 6  # about two lease periods of a relay outage
DAY = 86400
_NOT_ANSWERED = {
    Disposition.DUPLICATE: "a repeat of a message already acknowledged",
    Disposition.FOLLOW_UP: "a follow-up to an existing case",
    Disposition.IGNORED: "marked to be ignored",
}


class Acknowledge:
    name = "acknowledge"
    always_runs = False

    def process(self, record: IntakeRecord, entry: LedgerEntry, ctx: WorkerContext) -> IntakeRecord:
        settings = ctx.settings
        if record.source.automated:
            return _decided(
                record,
                AckStatus.SUPPRESSED,
                "automated mail: " + "; ".join(record.source.automated_reasons),
            )
        if record.deadlines is None:
            today = uk_date(datetime.now(UTC))
            record = record.model_copy(
                update={
                    "deadlines": compute_deadlines(
                        record.received_at, settings, acknowledged_on=today
                    )
                }
            )
        if record.disposition in _NOT_ANSWERED:
            return _decided(record, AckStatus.SUPPRESSED, _NOT_ANSWERED[record.disposition])
        notifier = notifier_for(record.channel.value, settings)
        if notifier is None:
            return _decided(record, AckStatus.NOT_APPLICABLE, "no automatic reply on this channel")
        recipient = notifier.recipient_for(record)
        if not recipient:
            return _decided(
                record, AckStatus.NOT_APPLICABLE, "no address to reply to", notifier.channel
            )
        if recipient.rpartition("@")[2].lower() in settings.domains:
            return _decided(
                record,
                AckStatus.SUPPRESSED,
                "the sender is one of our own addresses",
                notifier.channel,
            )
        if _over_daily_limit(ctx, recipient, record.id):
            return _decided(
                record,
                AckStatus.SUPPRESSED,
                f"already {settings.ack_limit_per_recipient} acknowledgements to this address "
                "in 24 hours (possible mail loop)",
                notifier.channel,
            )

        outbox = Outbox(ctx.connection, settings.outbox_claim_seconds)
        claim = outbox.claim(record.id, PURPOSE)
        if claim.state == "busy":
            raise StepBusyError(f"{record.id}: acknowledgement being sent by another worker")
        message_id = f"<ack.{record.id}@{settings.domains[0]}>"
        if claim.state == "sent":
            return _decided(
                record,
                AckStatus.SENT,
                f"sent via {claim.via}",
                notifier.channel,
                datetime.fromtimestamp(claim.sent_at or time.time(), UTC),
                message_id,
            )
        values = {
            "record": record,
            "deadlines": record.deadlines,
            "greeting_name": record.customer.name or "customer",
            "organisation": settings.organisation_name,
            "contact_phone": settings.contact_phone,
            "escalation_url": settings.escalation_url,
        }
        notice = Notice(
            record=record,
            purpose=PURPOSE,
            recipient=recipient,
            subject=render("acknowledgement.subject.j2", settings.templates_dir, **values).strip(),
            text=render("acknowledgement.txt.j2", settings.templates_dir, **values),
            html=render("acknowledgement.html.j2", settings.templates_dir, **values),
            message_id=message_id,
        )
        try:
            delivery = notifier.send(notice)
        except DeliveryError as exc:
            if exc.permanent or claim.attempts >= MAX_SEND_ATTEMPTS:
                outbox.release(record.id, PURPOSE, status="failed")
                log.warning("acknowledge.failed", record_id=record.id, error=str(exc))
                return _decided(record, AckStatus.FAILED, str(exc), notifier.channel)
            outbox.release(record.id, PURPOSE)
            raise
        outbox.sent(record.id, PURPOSE, delivery.sent_at.timestamp(), delivery.via)
        ctx.ledger.count(f"acknowledgements:{delivery.channel}")
        log.info("acknowledge.sent", record_id=record.id, via=delivery.via)
        return _decided(
            record,
            AckStatus.SENT,
            f"sent via {delivery.via}",
            delivery.channel,
            delivery.sent_at,
            message_id,
        )


def _decided(
    record: IntakeRecord,
    status: AckStatus,
    reason: str,
    channel: str | None = None,
    sent_at: datetime | None = None,
    message_id: str | None = None,
) -> IntakeRecord:
    ack = Acknowledgement(
        channel=channel, status=status, reason=reason, sent_at=sent_at, message_id=message_id
    )
    return record.model_copy(update={"acknowledgement": ack})


def _over_daily_limit(ctx: WorkerContext, recipient: str, record_id: str) -> bool:
    """True when this record is past the day's allowance for its recipient.

    Each record is added once (ZADD NX), so running the step again counts nothing new.
    """
    digest = hashlib.sha256(recipient.strip().lower().encode()).hexdigest()[:32]
    key = f"{PREFIX}:ackrate:{digest}"
    now = time.time()
    with ctx.connection.pipeline(transaction=True) as pipe:
        pipe.zremrangebyscore(key, "-inf", now - DAY)
        pipe.zadd(key, {record_id: now}, nx=True)
        pipe.zrank(key, record_id)
        pipe.expire(key, DAY)
        _, _, rank, _ = pipe.execute()
    return rank is not None and int(rank) >= ctx.settings.ack_limit_per_recipient
