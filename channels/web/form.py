"""The complaint form's questions, the answers as typed, and the checks on them.

Answers are kept exactly as typed so that a page with errors shows them back unchanged;
``check`` turns them into a ``Complaint`` or into messages, one per field, in the order
the fields appear. Messages follow the GOV.UK Design System's wording: they say what to
do, in plain English. Only the way of contact a person chose is required of them; every
other contact detail is optional and checked only when given.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from starlette.datastructures import FormData

from gateway.contact import email_address, phone_e164
from gateway.plaintext import clean_line, clean_text
from gateway.working_days import uk_date

FIELDS = (
    "name",
    "contact",
    "email",
    "phone",
    "address",
    "rep_name",
    "rep_relationship",
    "rep_email",
    "rep_phone",
    "details",
    "incident_day",
    "incident_month",
    "incident_year",
    "outcome",
    "support",
)
CONTACT_METHODS = {
    "email": "Email",
    "phone": "Phone",
    "post": "Post",
    "representative": "Through someone acting for me, such as a relative, carer or advocate",
}
LIMITS = {
    "name": 200,
    "email": 254,
    "phone": 40,
    "address": 1000,
    "rep_name": 200,
    "rep_relationship": 200,
    "rep_email": 254,
    "rep_phone": 40,
    "details": 20_000,
    "outcome": 5000,
    "support": 5000,
}
LABELS = {
    "name": "Your name",
    "email": "Email address",
    "phone": "Phone number",
    "address": "Your address",
    "rep_name": "Their name",
    "rep_relationship": "How they know you",
    "rep_email": "Their email address",
    "rep_phone": "Their phone number",
    "details": "What happened",
    "outcome": "What would put things right",
    "support": "Support you need",
}
EMAIL_FORMAT = "Enter an email address in the correct format, like name@example.com"
PHONE_FORMAT = "Enter a phone number, like 01632 960 001, 07700 900 982 or +44 808 157 0192"

Answers = dict[str, str]
Problems = list[tuple[str, str]]
Report = Callable[[str, str], None]


@dataclass(frozen=True)
class Complaint:
    name: str
    contact: str
    email: str | None
    phone: str | None
    address: str | None
    representative: dict[str, str | None] | None
    details: str
    incident_date: date | None
    outcome: str | None
    support: str | None


def answers_from(form: FormData) -> Answers:
    """The text answers of a posted form; anything else (files, unknown fields) is ignored."""
    answers: Answers = {}
    for field in FIELDS:
        value = form.get(field)
        if isinstance(value, str):
            answers[field] = value.replace("\r\n", "\n").replace("\r", "\n")
    return answers


def check(answers: Answers) -> tuple[Complaint | None, Problems]:
    problems: Problems = []
    given = {field: answers.get(field, "").strip() for field in FIELDS}
    for field, limit in LIMITS.items():
        if len(given[field]) > limit:
            problems.append((field, f"{LABELS[field]} must be {limit:,} characters or fewer"))
    too_long = {field for field, _ in problems}

    def problem(field: str, message: str) -> None:
        if field not in too_long:
            problems.append((field, message))

    name = clean_line(given["name"])
    if not name:
        problem("name", "Enter your name")
    contact = given["contact"]
    if contact not in CONTACT_METHODS:
        problem("contact", "Select how you would like us to contact you")
    email = _email(given["email"], "email", contact == "email", problem)
    phone = _phone(given["phone"], "phone", contact == "phone", problem)
    address = clean_text(given["address"]) or None
    if contact == "post" and not address:
        problem("address", "Enter your postal address, including the postcode")
    representative = _representative(given, contact == "representative", problem)
    details = clean_text(given["details"])
    if not details:
        problem("details", "Tell us what happened")
    incident_date = _incident_date(given, problem)
    problems.sort(key=lambda item: FIELDS.index(item[0]))
    if problems:
        return None, problems
    return (
        Complaint(
            name=name,
            contact=contact,
            email=email,
            phone=phone,
            address=address,
            representative=representative,
            details=details,
            incident_date=incident_date,
            outcome=clean_text(given["outcome"]) or None,
            support=clean_text(given["support"]) or None,
        ),
        [],
    )


def _email(value: str, field: str, required: bool, problem: Report) -> str | None:
    if not value:
        if required:
            problem(field, "Enter your email address")
        return None
    try:
        return email_address(value)
    except ValueError:
        problem(field, EMAIL_FORMAT)
        return None


def _phone(value: str, field: str, required: bool, problem: Report) -> str | None:
    if not value:
        if required:
            problem(field, "Enter your phone number")
        return None
    try:
        return phone_e164(value)
    except ValueError:
        problem(field, PHONE_FORMAT)
        return None


def _representative(given: Answers, chosen: bool, problem: Report) -> dict[str, str | None] | None:
    name = clean_line(given["rep_name"])
    email = _email(given["rep_email"], "rep_email", False, problem)
    phone = _phone(given["rep_phone"], "rep_phone", False, problem)
    if not chosen:
        return None
    if not name:
        problem("rep_name", "Enter the name of the person acting for you")
    if not given["rep_email"] and not given["rep_phone"]:
        problem("rep_email", "Enter an email address or phone number for the person acting for you")
    return {
        "name": name,
        "relationship": clean_line(given["rep_relationship"]) or None,
        "email": email,
        "phone": phone,
    }


def _incident_date(given: Answers, problem: Report) -> date | None:
    parts = [given["incident_day"], given["incident_month"], given["incident_year"]]
    if not any(parts):
        return None
    if not all(parts):
        problem("incident_day", "The date must include a day, month and year")
        return None
    if not all(part.isascii() and part.isdigit() for part in parts) or len(parts[2]) != 4:
        problem("incident_day", "The date must be a real date, like 27 3 2026")
        return None
    try:
        when = date(int(parts[2]), int(parts[1]), int(parts[0]))
    except ValueError:
        problem("incident_day", "The date must be a real date, like 27 3 2026")
        return None
    if when > uk_date(datetime.now(UTC)):
        problem("incident_day", "The date must be today or in the past")
        return None
    return when


def payload(
    complaint: Complaint, files: list[dict[str, Any]], submission_key: str
) -> dict[str, Any]:
    """What is stored as the raw input: the answers as checked, the files by sha256."""
    return {
        "form": "complaint/1",
        "submission_key": submission_key,
        "name": complaint.name,
        "contact": complaint.contact,
        "email": complaint.email,
        "phone": complaint.phone,
        "address": complaint.address,
        "representative": complaint.representative,
        "details": complaint.details,
        "incident_date": complaint.incident_date.isoformat() if complaint.incident_date else None,
        "outcome": complaint.outcome,
        "support": complaint.support,
        "attachments": files,
    }
