"""The JSON API's bodies, in the record's own names, checked before anything is stored.

A request that passes here always makes a record: the worker reads the stored body back
through the same model (with ``STORED`` as context, which skips the checks that depend on
the clock, since a backlog must not turn a valid request into an invalid one). Every
string is cleaned as it is read: one-line fields lose control and bidi characters, texts
keep what the person wrote, emoji and right-to-left scripts included.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from gateway.contact import email_address, phone_e164
from gateway.plaintext import clean_line, clean_text
from gateway.working_days import uk_date

MAX_TEXT_CHARS = 100_000
MAX_NOTE_CHARS = 20_000
MAX_LINE_CHARS = 200
OLDEST_RECEIVED = timedelta(days=366)
CLOCK_SKEW = timedelta(minutes=5)
STORED = {"stored": True}
# Errors found across fields are reported against the field a caller must fix.
MODEL_ERROR_FIELDS = {
    "social_missing": "social",
    "social_unexpected": "social",
    "handle_missing": "customer.handle",
}


def _email(value: str) -> str:
    try:
        return email_address(value)
    except ValueError:
        raise PydanticCustomError(
            "email", "not an email address; give one like name@example.com"
        ) from None


def _phone(value: str) -> str:
    try:
        return phone_e164(value)
    except ValueError:
        raise PydanticCustomError(
            "phone", "not a phone number; give one like 01632 960001 or +44 7700 900123"
        ) from None


Line = Annotated[str, Field(max_length=MAX_LINE_CHARS), AfterValidator(clean_line)]
Note = Annotated[str, Field(max_length=MAX_NOTE_CHARS), AfterValidator(clean_text)]
Email = Annotated[
    str,
    Field(
        max_length=254, examples=["sam.taylor@example.net"], json_schema_extra={"format": "email"}
    ),
    AfterValidator(_email),
]
Phone = Annotated[str, Field(max_length=40, examples=["07700 900123"]), AfterValidator(_phone)]
ApiChannel = Literal["phone", "letter", "in_person", "social", "api"]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class RepresentativeIn(_Body):
    """Someone acting for the customer; contacted instead of them."""

    name: Line = Field(min_length=1)
    relationship: Line | None = None
    email: Email | None = None
    phone: Phone | None = None


class CustomerIn(_Body):
    name: Line | None = None
    email: Email | None = None
    phone: Phone | None = Field(default=None, description="any usual form; stored as E.164")
    handle: Line | None = Field(default=None, description="social media handle")
    preferred_contact: Literal["email", "phone", "sms", "whatsapp", "post", "social"] | None = None
    address: Annotated[str, Field(max_length=1000), AfterValidator(clean_text)] | None = None
    representative: RepresentativeIn | None = None
    support_needs: Note | None = Field(
        default=None, description="support, adjustments or language the customer asked for"
    )


class SocialIn(_Body):
    """The public post the social media team found the complaint in."""

    platform: Line = Field(min_length=1, max_length=50, examples=["facebook"])
    post_url: HttpUrl = Field(max_length=2048)
    posted_at: AwareDatetime


class IntakeRequest(_Body):
    """A complaint taken by staff (phone, letter, in person), a partner or the social team."""

    channel: ApiChannel
    customer: CustomerIn = Field(default_factory=CustomerIn)
    subject: Annotated[str, Field(max_length=998), AfterValidator(clean_line)] | None = None
    text: Annotated[str, Field(min_length=1, max_length=MAX_TEXT_CHARS)] = Field(
        description="what the customer said, in their words"
    )
    incident_date: date | None = Field(default=None, description="when it happened")
    desired_outcome: Note | None = Field(
        default=None, description="what the customer says would put things right"
    )
    received_at: AwareDatetime | None = Field(
        default=None,
        description="when the letter arrived or the call was taken; defaults to now",
    )
    social: SocialIn | None = Field(
        default=None, description="required for channel social, and only for it"
    )

    @field_validator("text")
    @classmethod
    def _text(cls, value: str) -> str:
        cleaned = clean_text(value)
        if not cleaned:
            raise PydanticCustomError("blank", "must contain some text")
        return cleaned

    @field_validator("incident_date")
    @classmethod
    def _incident_date(cls, value: date | None, info: ValidationInfo) -> date | None:
        if value is not None and not _stored(info) and value > uk_date(datetime.now(UTC)):
            raise PydanticCustomError("future_date", "must be today or in the past")
        return value

    @field_validator("received_at")
    @classmethod
    def _received_at(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        if value is None or _stored(info):
            return value
        now = datetime.now(UTC)
        if value > now + CLOCK_SKEW:
            raise PydanticCustomError("future_time", "must not be in the future")
        if value < now - OLDEST_RECEIVED:
            raise PydanticCustomError("too_old", "must be within the last year")
        return value

    @model_validator(mode="after")
    def _social_fields(self) -> IntakeRequest:
        if self.channel == "social":
            if self.social is None:
                raise PydanticCustomError(
                    "social_missing", "required for channel social (platform, post_url, posted_at)"
                )
            if not self.customer.handle:
                raise PydanticCustomError("handle_missing", "required for channel social")
        elif self.social is not None:
            raise PydanticCustomError("social_unexpected", "only for channel social")
        return self


def _stored(info: ValidationInfo) -> bool:
    context: Any = info.context
    return isinstance(context, dict) and bool(context.get("stored"))


class IntakeReceipt(BaseModel):
    """What the caller keeps: the record's id and the reference to give the customer."""

    id: str = Field(description="the record's id (ULID)")
    reference: str = Field(description="the customer's reference, e.g. CX-2026-000123")
    repeat: bool = Field(
        default=False, description="true when this repeats an earlier request (Idempotency-Key)"
    )


class FieldProblem(BaseModel):
    field: str = Field(description="where in the request, e.g. customer.email")
    message: str


class Problem(BaseModel):
    """Every error answer: a code, a sentence for people, and the fields at fault."""

    error: str
    message: str
    errors: list[FieldProblem] = Field(default_factory=list)
