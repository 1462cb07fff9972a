"""Triage one message: kind, themes, priority, vulnerability, time limit, stage — with reasons.

How the signals combine, following the Housing Ombudsman's definitions:
- any expression of dissatisfaction with the service makes a *complaint*, whether or not
  the word is used; a repair request that also complains about how earlier requests were
  handled is a complaint too;
- otherwise praise is a *compliment*, a problem or request is a *service request*, a
  suggestion is *feedback*, and a question is an *enquiry*;
- machine-sent mail is an *auto_reply* and junk is *spam*, and neither outranks a
  customer's words about danger.
Every choice appends the rule and the words that made it, so a person can check it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

from dateutil.relativedelta import relativedelta

from gateway.schema import Kind, Priority, Triage
from workers.triage.rules import Hit, TriageRules
from workers.triage.timeline import incident_date

CODE_LIMIT_MONTHS = 12


@dataclass(frozen=True)
class MessageFacts:
    """What triage reads: the words, when they arrived, and what the transport knows."""

    text: str
    subject: str | None
    received_on: date
    language: str | None = None
    automated: bool = False
    automated_reasons: tuple[str, ...] = ()


def classify(
    facts: MessageFacts,
    rules: TriageRules,
    time_limit_months: int,
    elsewhere: Callable[[str, list[str]], bool] = lambda text, categories: False,
) -> Triage:
    """Triage one message. ``elsewhere`` says whether prepared text is wholly another
    organisation's matter (the redirect directory knows), which makes it an enquiry."""
    text = rules.prepare(message_words(facts.subject, facts.text))
    reasons: list[str] = []

    vulnerability: list[str] = []
    for name, rule in rules.vulnerability.items():
        hit = rules.find(rule, text)
        if hit is not None:
            vulnerability.append(name)
            reasons.append(f"vulnerability {hit.explain()}")
    if facts.language and facts.language != "en" and "communication_needs" not in vulnerability:
        vulnerability.append("communication_needs")
        reasons.append(f"vulnerability communication_needs: written in '{facts.language}'")

    categories: list[str] = []
    for name, rule in rules.categories.items():
        hit = rules.find(rule, text)
        if hit is not None:
            categories.append(name)
            reasons.append(f"category {hit.explain()}")

    emergencies: list[Hit] = []
    for rule in rules.emergency:
        if rule.requires_vulnerability and not vulnerability:
            continue
        hit = rules.find(rule, text)
        if hit is not None:
            emergencies.append(hit)
    if emergencies:
        priority = Priority.EMERGENCY
        reasons.extend(f"priority emergency, {hit.explain()}" for hit in emergencies)
    elif "damp_mould" in categories:
        priority = Priority.HIGH
        reasons.append("priority high: damp and mould is a health hazard with legal timescales")
    elif vulnerability:
        priority = Priority.HIGH
        reasons.append("priority high: " + ", ".join(vulnerability) + " indicated")
    else:
        priority = Priority.NORMAL

    kind = _kind(
        facts, text, rules, categories, emergencies, lambda: elsewhere(text, categories), reasons
    )

    stage = 1
    stage_hit = rules.find(rules.stage2, text)
    if stage_hit is not None and kind not in (Kind.SPAM, Kind.AUTO_REPLY, Kind.COMPLIMENT):
        stage = 2
        kind = Kind.COMPLAINT
        reasons.append(f"stage 2 escalation request, {stage_hit.explain()}")

    # Praise, junk and machine mail have no incident to date.
    undated = (Kind.COMPLIMENT, Kind.SPAM, Kind.AUTO_REPLY)
    found = None if kind in undated else incident_date(text, facts.received_on)
    within: bool | None = None
    if found is not None:
        limit = _months_before(facts.received_on, time_limit_months)
        within = found.day >= limit
        reasons.append(
            f'incident date {found.day.isoformat()} from "{found.words}": '
            + ("within" if within else "outside")
            + f" the {time_limit_months}-month time limit"
        )
        if not within:
            code_limit = _months_before(facts.received_on, CODE_LIMIT_MONTHS)
            reasons.append(
                "outside the policy's window: accepted all the same; a person decides whether "
                "to use discretion"
                + (
                    " (also more than 12 months ago, beyond the Code's expectation)"
                    if found.day < code_limit
                    else " (within the Code's 12 months)"
                )
            )

    return Triage(
        kind=kind,
        categories=categories,
        priority=priority,
        vulnerability=vulnerability,
        incident_date=found.day if found else None,
        within_time_limit=within,
        stage=stage,
        language=facts.language,
        reasons=reasons,
    )


@lru_cache(maxsize=256)
def _months_before(day: date, months: int) -> date:
    """``day`` less ``months`` calendar months; messages of a day share their limits."""
    return day - relativedelta(months=months)


_QUOTE_STARTS = re.compile(
    r"^(on .{0,200}wrote:\s*$|-{2,}\s*original message\s*-{2,}|_{10,}\s*$"
    r"|from: .+\n(sent|date): |sent from my )",
    re.IGNORECASE | re.MULTILINE,
)
_OUR_SUBJECT = re.compile(r"we have received your message|who can help", re.IGNORECASE)


def message_words(subject: str | None, text: str) -> str:
    """Subject and body as triage reads them: the writer's own words only. A reply's
    subject that repeats ours ("Re: We have received your message ...") is left out."""
    if subject and _OUR_SUBJECT.search(subject):
        subject = None
    return "\n".join(part for part in (subject, own_words(text)) if part)


def own_words(text: str) -> str:
    """The writer's own words: quoted replies and forwarded history are left out, so that
    our acknowledgement quoted back to us does not decide what the reply is."""
    cut = _QUOTE_STARTS.search(text)
    if cut is not None and cut.start() > 0:
        text = text[: cut.start()]
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith(">"))


def _kind(
    facts: MessageFacts,
    text: str,
    rules: TriageRules,
    categories: list[str],
    emergencies: list[Hit],
    elsewhere: Callable[[], bool],
    reasons: list[str],
) -> Kind:
    """The kind, from the signals in turn; ``elsewhere`` (the redirect directory's test) is
    asked only when the answer matters."""
    signals = rules.kind
    if facts.automated:
        reasons.append("kind auto_reply: " + "; ".join(facts.automated_reasons or ("automated",)))
        return Kind.AUTO_REPLY
    dissatisfied = rules.find_all(signals["dissatisfaction"], text)
    automatic = rules.find_all(signals["auto_reply"], text)
    if automatic and not dissatisfied and not emergencies:
        reasons.append(f"kind auto_reply, {automatic[0].explain()}")
        return Kind.AUTO_REPLY
    spam = _spam_hits(rules, text)
    request = rules.find_all(signals["request"], text)
    if len(spam) >= 2 or (spam and not dissatisfied and not request and not emergencies):
        reasons.append(f"kind spam, {spam[0].explain()}")
        return Kind.SPAM
    praise = rules.find_all(signals["praise"], text)
    if praise and not dissatisfied:
        reasons.append(f"kind compliment, {praise[0].explain()}")
        return Kind.COMPLIMENT
    if not emergencies and elsewhere():
        # A complaint about another organisation is not a complaint about us; asking us to
        # act on it for them is a request.
        act = _ACT_FOR_THEM.search(text)
        if act:
            reasons.append(
                "kind service_request: asks us to act on another organisation's matter "
                f'("{act.group(0)}"; see redirect)'
            )
            return Kind.SERVICE_REQUEST
        reasons.append("kind enquiry: about another organisation's matter (see redirect)")
        return Kind.ENQUIRY
    if dissatisfied:
        reasons.extend(f"kind complaint, {hit.explain()}" for hit in dissatisfied[:3])
        return Kind.COMPLAINT
    problem = rules.find_all(signals["problem"], text)
    suggestion = rules.find_all(signals["suggestion"], text)
    if suggestion and not problem:
        reasons.append(f"kind feedback, {suggestion[0].explain()}")
        return Kind.FEEDBACK
    if emergencies or request or problem:
        why = (emergencies or problem or request)[0].explain()
        reasons.append(f"kind service_request: a first report, no dissatisfaction found; {why}")
        return Kind.SERVICE_REQUEST
    question = rules.find_all(signals["question"], text)
    if question:
        reasons.append(f"kind enquiry, {question[0].explain()}")
        return Kind.ENQUIRY
    if suggestion:
        reasons.append(f"kind feedback, {suggestion[0].explain()}")
        return Kind.FEEDBACK
    ours = [c for c in categories if c not in _NOT_PROBLEMS]
    if ours:
        reasons.append(f"kind service_request: reports something about {ours[0]}")
        return Kind.SERVICE_REQUEST
    reasons.append("kind enquiry: no rule matched; a person should check")
    return Kind.ENQUIRY


_ACT_FOR_THEM = re.compile(
    r"\b(chase|contact|report (it|this)|pass (it|this) on|let them know|tell them|ring them"
    r"|speak to them|get (them|the council) to)\b"
)
_NOT_PROBLEMS = frozenset(
    {"communication", "rent", "lettings", "transfers_exchanges", "service_charges_money"}
)


def _spam_hits(rules: TriageRules, text: str) -> list[Hit]:
    """Each spam pattern that matches counts once: junk usually trips several."""
    hits: list[Hit] = []
    for rule in rules.kind["spam"]:
        for pattern in rules.searcher.candidates(rule.patterns, text):
            found = {m.group(0) for m in rules.searcher.finditer(pattern, text)}
            hits.extend(Hit(rule.id, rule.reason, words) for words in sorted(found))
    return hits
