"""The normalised record, schema ``intake/v1``: the contract with back-office consumers.

Field names are part of that contract. New fields may be added freely; renaming or
removing one needs a new schema version. ``intake schema`` prints the JSON Schema, and a
committed copy (``docs/intake-v1.schema.json``) is checked against this module by a test.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = "intake/v1"


class Channel(StrEnum):
    EMAIL = "email"
    SMS = "sms"
    WHATSAPP = "whatsapp"
    WEB = "web"
    SOCIAL = "social"
    PHONE = "phone"
    LETTER = "letter"
    IN_PERSON = "in_person"
    API = "api"


class Kind(StrEnum):
    COMPLAINT = "complaint"
    SERVICE_REQUEST = "service_request"
    COMPLIMENT = "compliment"
    ENQUIRY = "enquiry"
    FEEDBACK = "feedback"
    SPAM = "spam"
    AUTO_REPLY = "auto_reply"


class Priority(StrEnum):
    EMERGENCY = "emergency"
    HIGH = "high"
    NORMAL = "normal"


class Disposition(StrEnum):
    NEW_CASE = "new_case"
    FOLLOW_UP = "follow_up"
    DUPLICATE = "duplicate"
    REDIRECTED = "redirected"
    IGNORED = "ignored"
    NEEDS_REVIEW = "needs_review"


class AckStatus(StrEnum):
    SENT = "sent"
    SUPPRESSED = "suppressed"
    FAILED = "failed"
    NOT_APPLICABLE = "not_applicable"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", use_enum_values=False)


class Source(_Model):
    """Where the record came from, as the transport saw it."""

    transport: Literal["smtp", "imap", "twilio", "http"]
    message_id: str | None = None
    raw_sha256: str = Field(description="sha256 of the raw input as stored in the blob store")
    raw_size: int = 0
    envelope_from: str | None = Field(default=None, description="SMTP MAIL FROM, '' for null")
    recipients: list[str] = Field(default_factory=list, description="SMTP RCPT TO / mailbox")
    automated: bool = Field(default=False, description="machine-sent mail; never answered")
    automated_reasons: list[str] = Field(default_factory=list)
    extra: dict[str, Any] = Field(default_factory=dict, description="transport-specific facts")


class Representative(_Model):
    """Someone acting for the customer (a relative, carer, advocate, councillor, MP)."""

    name: str
    relationship: str | None = None
    email: str | None = None
    phone: str | None = Field(default=None, description="E.164")


class Customer(_Model):
    name: str | None = None
    email: str | None = None
    phone: str | None = Field(default=None, description="E.164")
    handle: str | None = None
    preferred_contact: Literal["email", "phone", "sms", "whatsapp", "post", "social"] | None = None
    address: str | None = Field(default=None, description="postal address, as given")
    representative: Representative | None = Field(
        default=None, description="someone acting for the customer, to be contacted instead"
    )
    support_needs: str | None = Field(
        default=None, description="support, adjustments or language the customer asked for"
    )


class SocialPost(_Model):
    """The public post a complaint made on social media came from."""

    platform: str
    post_url: str
    posted_at: datetime | None = None


class Attachment(_Model):
    filename: str | None = None
    content_type: str
    size: int
    sha256: str


class Thread(_Model):
    in_reply_to: str | None = None
    references: list[str] = Field(default_factory=list)
    case_reference: str | None = None


class Triage(_Model):
    kind: Kind
    categories: list[str] = Field(default_factory=list)
    priority: Priority = Priority.NORMAL
    vulnerability: list[str] = Field(default_factory=list)
    incident_date: date | None = None
    within_time_limit: bool | None = None
    stage: int = Field(default=1, ge=1, le=2)
    language: str | None = None
    reasons: list[str] = Field(default_factory=list)


class Deadlines(_Model):
    acknowledge_by: date
    respond_by: date


class Acknowledgement(_Model):
    channel: str | None = None
    status: AckStatus
    reason: str
    sent_at: datetime | None = None
    message_id: str | None = None


class Redirect(_Model):
    organisation: str
    contact: str
    reason: str
    notice: Acknowledgement | None = Field(
        default=None, description="the message telling the customer who deals with it"
    )


class Campaign(_Model):
    """Near-identical text from several customers (a petition, a residents' letter).

    Each customer keeps their own case. The feed is append-only, so records published
    before the campaign was recognised do not carry it: its id is its first record's id,
    and the record that recognised it names the others in ``earlier_records``.
    """

    id: str = Field(description="id of the campaign's first record")
    count: int = Field(description="customers who had sent this text when this was processed")
    earlier_records: list[str] = Field(
        default_factory=list,
        description="on the record that recognised the campaign: the records before it",
    )


class Deduplication(_Model):
    """Why the dedupe step decided as it did: follow-up, repeat, campaign or new case."""

    reasons: list[str] = Field(default_factory=list)
    similarity: float | None = Field(
        default=None, description="estimated text similarity (0-1) to the record in duplicate_of"
    )


class IntakeRecord(_Model):
    """One complaint, enquiry or other message, however it arrived."""

    schema_: Literal["intake/v1"] = Field(default="intake/v1", alias="schema")
    id: str = Field(description="ULID, sortable by arrival")
    reference: str = Field(description="customer-facing reference, e.g. CX-2026-000123")
    channel: Channel
    received_at: datetime
    source: Source
    customer: Customer = Field(default_factory=Customer)
    subject: str | None = None
    text: str = ""
    language: str | None = None
    attachments: list[Attachment] = Field(default_factory=list)
    thread: Thread = Field(default_factory=Thread)
    triage: Triage | None = None
    deadlines: Deadlines | None = None
    disposition: Disposition = Disposition.NEW_CASE
    duplicate_of: str | None = None
    campaign: Campaign | None = None
    dedupe: Deduplication | None = None
    redirect: Redirect | None = None
    acknowledgement: Acknowledgement | None = None
    review_reasons: list[str] = Field(
        default_factory=list, description="why a person should look at this record"
    )
    incident_date: date | None = Field(
        default=None, description="when it happened, as the customer told us"
    )
    desired_outcome: str | None = Field(
        default=None, description="what the customer says would put things right"
    )
    social: SocialPost | None = Field(
        default=None, description="the post, when the complaint was made on social media"
    )

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True)

    @classmethod
    def from_json(cls, data: str | bytes) -> IntakeRecord:
        return cls.model_validate_json(data)


def json_schema() -> dict[str, Any]:
    """The JSON Schema of ``intake/v1`` as consumers should validate it.

    New fields may appear within v1, so the published schema allows properties it does not
    name (the model itself still refuses unknown input).
    """
    schema = IntakeRecord.model_json_schema(by_alias=True, mode="serialization")
    for definition in [schema, *schema.get("$defs", {}).values()]:
        definition.pop("additionalProperties", None)
    schema["$id"] = "https://schemas.intake-gateway.invalid/intake-v1.schema.json"
    schema["title"] = "intake/v1"
    return schema
