"""Acknowledge: tell the customer we have their message, its reference and what happens next.

Never to machines (autoresponders, bounces, lists), never to our own addresses, at most
``ack_limit_per_recipient`` a day to one address (autoresponders that carry no RFC 3834
headers would otherwise loop with us), and never twice for one record (the outbox guard).
Every decision, sent or not, is written on the record with its reason, and the dates the
customer is given are the ones the record keeps.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

from channels import Notifier, notifier_for, refusal_for
from gateway.ledger import LedgerEntry
from gateway.schema import AckStatus, Disposition, IntakeRecord
from gateway.working_days import compute_deadlines, uk_date
from workers.context import WorkerContext
from workers.notify import compose, outcome, send_once, template_values
from workers.outbox import Allowance

PURPOSE = "acknowledgement"
DAY = 86400
_NOT_ANSWERED = {
    Disposition.DUPLICATE: "a repeat of a message already acknowledged",
    Disposition.FOLLOW_UP: "a follow-up to an existing case",
    Disposition.IGNORED: "marked to be ignored (junk or an automatic reply)",
    Disposition.REDIRECTED: "another organisation's matter: the customer was told who does",
}


@dataclass(frozen=True)
class Skip:
    """No acknowledgement, and why."""

    status: AckStatus
    reason: str
    channel: str | None = None


@dataclass(frozen=True)
class Target:
    notifier: Notifier
    recipient: str


class Acknowledge:
    name = "acknowledge"
    always_runs = False

    def process(self, record: IntakeRecord, entry: LedgerEntry, ctx: WorkerContext) -> IntakeRecord:
        decision = _decide(record, ctx)
        if isinstance(decision, Skip):
            ack = outcome(decision.status, decision.reason, decision.channel)
            return _with_deadlines(record, ctx, None).model_copy(update={"acknowledgement": ack})
        today = uk_date(datetime.now(UTC))
        record = _with_deadlines(record, ctx, today)
        templates = getattr(decision.notifier, "templates", None)
        values = template_values(record, ctx)
        notice = compose(record, PURPOSE, decision.recipient, values, ctx, templates)
        # The day's allowance for the address is checked as the send is claimed, in the
        # same step.
        allowance = Allowance(decision.recipient, ctx.settings.ack_limit_per_recipient, DAY)
        ack = send_once(decision.notifier, notice, ctx, allowance)
        if ack.status != AckStatus.SENT:
            record = _with_deadlines(record, ctx, None)
        elif ack.sent_at is not None and uk_date(ack.sent_at) != today:
            # Sent by an earlier run of this job, on another day: the dates it quoted hold.
            record = _with_deadlines(record, ctx, uk_date(ack.sent_at))
        return record.model_copy(update={"acknowledgement": ack})


def _decide(record: IntakeRecord, ctx: WorkerContext) -> Skip | Target:
    """Whom to acknowledge, or why not."""
    settings = ctx.settings
    if record.source.automated:
        reasons = "; ".join(record.source.automated_reasons)
        return Skip(AckStatus.SUPPRESSED, f"automated mail: {reasons}")
    notifier = notifier_for(record.channel.value, settings)
    # Our own team (a forwarded social post) hears about every record, redirected or not.
    internal = bool(getattr(notifier, "internal", False))
    if record.disposition in _NOT_ANSWERED and not (
        internal and record.disposition == Disposition.REDIRECTED
    ):
        note = record.source.extra.get("keyword_note")
        if record.disposition == Disposition.IGNORED and note:
            return Skip(AckStatus.SUPPRESSED, str(note))
        return Skip(AckStatus.SUPPRESSED, _NOT_ANSWERED[record.disposition])
    if notifier is None:
        return Skip(AckStatus.NOT_APPLICABLE, "no automatic reply on this channel")
    recipient = notifier.recipient_for(record)
    if not recipient:
        return Skip(AckStatus.NOT_APPLICABLE, "no address to reply to", notifier.channel)
    if not internal and recipient.rpartition("@")[2].lower() in settings.domains:
        return Skip(
            AckStatus.SUPPRESSED, "the sender is one of our own addresses", notifier.channel
        )
    refusal = refusal_for(notifier, record, recipient)
    if refusal:
        return Skip(AckStatus.SUPPRESSED, refusal, notifier.channel)
    return Target(notifier, recipient)


def _with_deadlines(
    record: IntakeRecord, ctx: WorkerContext, acknowledged_on: date | None
) -> IntakeRecord:
    """Deadlines for the record's stage: the response is due so many working days after
    today's acknowledgement, or, when none is sent, after the date a person must send one."""
    if record.source.automated:
        return record
    stage = record.triage.stage if record.triage else 1
    deadlines = compute_deadlines(
        record.received_at, ctx.settings, stage=stage, acknowledged_on=acknowledged_on
    )
    return record.model_copy(update={"deadlines": deadlines})
