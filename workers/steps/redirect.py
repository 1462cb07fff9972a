"""Redirect: matters that are another organisation's go to the right place, with reasons.

A message wholly about another organisation's matter (council tax, Universal Credit, an
energy bill) becomes ``redirected``: the customer is told, by the channel they used, who
deals with it, how to reach them, and how to tell us if they think it is ours after all.
A message that mixes our matters with another's stays a case of ours with the advice
added; an emergency is never redirected away. Nothing is dropped either way.
"""

from __future__ import annotations

from channels import notifier_for
from gateway.ledger import LedgerEntry
from gateway.schema import (
    Acknowledgement,
    AckStatus,
    Disposition,
    IntakeRecord,
    Redirect,
)
from workers.context import WorkerContext
from workers.directory import load_directory
from workers.notify import compose, outcome, send_once, template_values
from workers.triage.classify import message_words
from workers.triage.rules import load_rules

PURPOSE = "redirect"
_NOT_REDIRECTED = (Disposition.DUPLICATE, Disposition.FOLLOW_UP, Disposition.IGNORED)


class RedirectStep:
    name = "redirect"
    always_runs = False

    def process(self, record: IntakeRecord, entry: LedgerEntry, ctx: WorkerContext) -> IntakeRecord:
        triage = record.triage
        if triage is None or record.disposition in _NOT_REDIRECTED:
            return record
        rules = load_rules(ctx.settings.rules_dir)
        directory = load_directory(ctx.settings.rules_dir)
        text = rules.prepare(message_words(record.subject, record.text))
        decision = directory.redirect_for(text, triage, rules)
        if decision is None:
            return record
        redirect = Redirect(
            organisation=decision.organisation.name,
            contact=decision.organisation.contact,
            reason=decision.reason(),
        )
        if not decision.wholly_theirs or record.disposition == Disposition.NEEDS_REVIEW:
            return record.model_copy(update={"redirect": redirect})
        record = record.model_copy(
            update={"redirect": redirect, "disposition": Disposition.REDIRECTED}
        )
        notice = _notify(record, redirect, decision.organisation.deals_with, ctx)
        return record.model_copy(
            update={"redirect": redirect.model_copy(update={"notice": notice})}
        )


def _notify(
    record: IntakeRecord, redirect: Redirect, deals_with: str, ctx: WorkerContext
) -> Acknowledgement:
    if record.source.automated:
        return outcome(AckStatus.SUPPRESSED, "automated mail is never answered")
    notifier = notifier_for(record.channel.value, ctx.settings)
    if notifier is None:
        return outcome(AckStatus.NOT_APPLICABLE, "no automatic reply on this channel")
    if getattr(notifier, "internal", False):
        return outcome(
            AckStatus.NOT_APPLICABLE,
            "the team that forwarded it gets the advice with the acknowledgement",
            notifier.channel,
        )
    recipient = notifier.recipient_for(record)
    if not recipient:
        return outcome(AckStatus.NOT_APPLICABLE, "no address to reply to", notifier.channel)
    values = template_values(record, ctx, redirect=redirect, deals_with=deals_with)
    return send_once(notifier, compose(record, PURPOSE, recipient, values, ctx), ctx)
