"""Triage and redirect accuracy on the labelled evaluation set (tests/data/triage/eval.jsonl).

Prints per-field accuracy, emergency recall and precision, redirect accuracy and the kind
confusion matrix, and lists the misses so rules can be improved. Targets: kind accuracy
>= 0.90, emergency recall 1.0 with precision >= 0.8, redirect accuracy >= 0.95,
time-limit detection >= 0.95.

    python bench/triage_eval.py [--misses N] [--file PATH]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from datetime import date, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway.working_days import uk_date  # noqa: E402
from workers.directory import load_directory  # noqa: E402
from workers.triage.classify import MessageFacts, classify, message_words  # noqa: E402
from workers.triage.rules import load_rules  # noqa: E402

KINDS = ["complaint", "service_request", "compliment", "enquiry", "feedback", "spam", "auto_reply"]
DEFAULT_FILE = ROOT / "tests" / "data" / "triage" / "eval.jsonl"


def predict(item: dict[str, Any]) -> dict[str, Any]:
    rules, directory = load_rules(None), load_directory(None)
    received = datetime.fromisoformat(item["received_at"].replace("Z", "+00:00"))
    facts = MessageFacts(
        text=item["text"],
        subject=item.get("subject"),
        received_on=uk_date(received),
        language=item.get("language", "en"),
        automated=item.get("automated", False),
    )
    triage = classify(facts, rules, 3, directory.is_elsewhere(rules))
    text = rules.prepare(message_words(item.get("subject"), item["text"]))
    decision = directory.redirect_for(text, triage, rules)
    return {
        "kind": triage.kind.value,
        "categories": sorted(triage.categories),
        "priority": triage.priority.value,
        "vulnerability": sorted(triage.vulnerability),
        "incident_date": triage.incident_date.isoformat() if triage.incident_date else None,
        "within_time_limit": triage.within_time_limit,
        "stage": triage.stage,
        "redirect": decision.organisation.key if decision else None,
        "redirect_only": bool(decision and decision.wholly_theirs),
        "reasons": triage.reasons,
    }


def ratio(hits: int, total: int) -> str:
    return f"{hits / total:.3f} ({hits}/{total})" if total else "n/a"


def set_scores(pairs: list[tuple[set[str], set[str]]]) -> tuple[float, float, float]:
    tp = sum(len(e & p) for e, p in pairs)
    fp = sum(len(p - e) for e, p in pairs)
    fn = sum(len(e - p) for e, p in pairs)
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", type=Path, default=DEFAULT_FILE)
    parser.add_argument("--misses", type=int, default=15, help="misses to list per field")
    args = parser.parse_args()
    items = [json.loads(line) for line in args.file.read_text().splitlines() if line.strip()]
    results = [(item, item["expected"], predict(item)) for item in items]
    total = len(results)
    print(f"triage evaluation: {total} messages from {args.file.name}\n")

    def field_accuracy(name: str) -> int:
        return sum(exp.get(name) == got[name] for _, exp, got in results)

    print(f"kind accuracy            {ratio(field_accuracy('kind'), total)}")
    print(f"priority accuracy        {ratio(field_accuracy('priority'), total)}")
    emergencies = [
        (e["priority"] == "emergency", g["priority"] == "emergency") for _, e, g in results
    ]
    tp = sum(e and g for e, g in emergencies)
    print(f"emergency recall         {ratio(tp, sum(e for e, _ in emergencies))}")
    print(f"emergency precision      {ratio(tp, sum(g for _, g in emergencies))}")
    categories = [(set(e["categories"]), set(g["categories"])) for _, e, g in results]
    p, r, f = set_scores(categories)
    exact = sum(e == g for e, g in categories)
    print(f"categories exact         {ratio(exact, total)}   micro P {p:.3f} R {r:.3f} F1 {f:.3f}")
    vulnerability = [(set(e["vulnerability"]), set(g["vulnerability"])) for _, e, g in results]
    p, r, f = set_scores(vulnerability)
    exact = sum(e == g for e, g in vulnerability)
    print(f"vulnerability exact      {ratio(exact, total)}   micro P {p:.3f} R {r:.3f} F1 {f:.3f}")
    print(f"incident date exact      {ratio(field_accuracy('incident_date'), total)}")
    print(f"time-limit detection     {ratio(field_accuracy('within_time_limit'), total)}")
    print(f"stage accuracy           {ratio(field_accuracy('stage'), total)}")
    print(f"redirect accuracy        {ratio(field_accuracy('redirect'), total)}")
    print(f"redirect-only accuracy   {ratio(field_accuracy('redirect_only'), total)}")

    print("\nkind confusion (rows: expected, columns: predicted)")
    confusion = Counter((e["kind"], g["kind"]) for _, e, g in results)
    short = [k[:8] for k in KINDS]
    print(" " * 16 + " ".join(f"{s:>8}" for s in short))
    for expected in KINDS:
        row = [confusion[(expected, predicted)] for predicted in KINDS]
        print(f"{expected:>16}" + " ".join(f"{n:>8}" for n in row))

    if args.misses:
        for name in ("kind", "priority", "redirect", "within_time_limit", "stage"):
            misses = [(i, e, g) for i, e, g in results if e.get(name) != g[name]]
            if not misses:
                continue
            print(f"\nmisses: {name} ({len(misses)})")
            for item, exp, got in misses[: args.misses]:
                text = " ".join(item["text"].split())[:110]
                print(f"  {item['id']}: expected {exp.get(name)!r}, got {got[name]!r}: {text}")
    today = date.today().isoformat()
    print(f"\n(run on {today})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
