"""Triage: what the message is, what it is about, how urgent, and why.

The rules are data (``workers/rules/triage.yaml``); every result carries the reasons that
produced it, so a complaints officer can check and overrule it. The stage it finds sets
the statutory clock, which the acknowledge step writes once it knows when the customer was
acknowledged; spam and machine-sent mail are kept and published, marked to be ignored, and
never answered.
"""

from __future__ import annotations

from gateway.ledger import LedgerEntry
from gateway.schema import Disposition, IntakeRecord, Kind
from gateway.working_days import uk_date
from workers.context import WorkerContext
from workers.directory import load_directory
from workers.triage.classify import MessageFacts, classify
from workers.triage.rules import load_rules


class TriageStep:
    name = "triage"
    always_runs = False

    def process(self, record: IntakeRecord, entry: LedgerEntry, ctx: WorkerContext) -> IntakeRecord:
        settings = ctx.settings
        facts = MessageFacts(
            text=record.text,
            subject=record.subject,
            received_on=uk_date(record.received_at),
            language=record.language,
            automated=record.source.automated,
            automated_reasons=tuple(record.source.automated_reasons),
        )
        rules = load_rules(settings.rules_dir)
        elsewhere = load_directory(settings.rules_dir).is_elsewhere(rules)
        triage = classify(facts, rules, settings.time_limit_months, elsewhere)
        update: dict[str, object] = {"triage": triage}
        keyword = record.source.extra.get("keyword")
        if keyword:
            # STOP, START and the like change what we may send; they are not cases.
            triage = triage.model_copy(
                update={"reasons": [*triage.reasons, f"opt-in or opt-out keyword '{keyword}'"]}
            )
            update["triage"] = triage
        if (keyword or triage.kind in (Kind.SPAM, Kind.AUTO_REPLY)) and (
            record.disposition == Disposition.NEW_CASE
        ):
            update["disposition"] = Disposition.IGNORED
        return record.model_copy(update=update)
