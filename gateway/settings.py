"""Every setting the gateway reads, in one place.

Built once per entry point from ``INTAKE_*`` environment variables and passed down;
nothing else in the code base reads the environment. A bad value stops start-up with one
line that names the variable (see :func:`load_settings`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from gateway.blobstore import BlobSync
from gateway.errors import SettingsError

UKNation = Literal["england", "wales", "scotland", "northern_ireland"]


def _split_list(value: object) -> object:
    """Accept both JSON lists and the friendlier comma-separated form."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            import json

            return json.loads(text)
        return [part.strip() for part in text.split(",") if part.strip()]
    return value


class IMAPMailbox(BaseModel):
    """One hosted mailbox the IMAP poller reads (an item of ``INTAKE_IMAP_MAILBOXES``).

    ``name`` identifies it in logs, metrics and Redis keys, so it may not hold an address.
    The password and the token are secrets: never printed, logged or shown in an error.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    host: str = Field(min_length=1)
    port: int | None = Field(default=None, ge=1, le=65535, description="993 or 143 by tls")
    tls: Literal["implicit", "starttls", "none"] = "implicit"
    verify_certificate: bool = True
    ca_file: Path | None = Field(default=None, description="Trust this CA (a private one).")
    username: str = Field(min_length=1)
    password: SecretStr | None = None
    oauth2_token: SecretStr | None = Field(default=None, description="XOAUTH2 access token.")
    address: str | None = Field(default=None, description="Defaults to the username.")
    folder: str = "INBOX"
    processed_folder: str = "Processed"
    unreadable_folder: str = "Unreadable"

    @model_validator(mode="after")
    def _coherent(self) -> IMAPMailbox:
        if (self.password is None) == (self.oauth2_token is None):
            raise ValueError(f"mailbox {self.name}: give either password or oauth2_token")
        folders = {self.folder, self.processed_folder, self.unreadable_folder}
        if len(folders) != 3:
            raise ValueError(f"mailbox {self.name}: the three folders must differ")
        return self

    @property
    def effective_port(self) -> int:
        return self.port or (993 if self.tls == "implicit" else 143)

    @property
    def recipient(self) -> str:
        return self.address or self.username


ApiChannel = Literal["phone", "letter", "in_person", "social", "api"]


class ApiKey(BaseModel):
    """One JSON API credential (an item of ``INTAKE_API_KEYS``).

    Only the sha256 of the key is configured, so a leaked configuration gives no working
    key. ``name`` is what records and logs show of the key; ``channels`` are the channels
    it may submit.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    sha256: str = Field(pattern=r"^[0-9a-fA-F]{64}$", description="sha256 hex of the key")
    channels: list[ApiChannel] = Field(min_length=1)


class Settings(BaseSettings):
    """The gateway's configuration; field ``x`` is read from ``INTAKE_X``."""

    model_config = SettingsConfigDict(env_prefix="INTAKE_", extra="ignore", frozen=True)

    # Storage and queue
    redis_url: str | None = Field(
        default=None,
        description="Redis to use; unset starts an embedded Redis under the data directory.",
    )
    data_dir: Path = Field(default=Path("intake-data"), description="Blobs, embedded Redis.")
    blob_sync: BlobSync = Field(
        default="filesystem",
        description="How stored blobs are made durable: a batch at a time, or each file alone.",
    )
    queue_name: str = "intake"
    job_lease_seconds: int = Field(
        default=120, ge=2, description="Re-run unfinished records after."
    )
    reaper_interval_seconds: float = Field(default=5.0, gt=0)
    failed_job_ttl_days: int = Field(default=14, ge=1)
    idempotency_ttl_days: int = Field(default=400, ge=1)
    workers: int = Field(default=2, ge=1, le=64, description="Worker processes for `intake run`.")

    # Listeners
    bind_host: str = "127.0.0.1"
    smtp_port: int = Field(default=2525, ge=0, le=65535)
    http_port: int = Field(default=8000, ge=0, le=65535)
    domains: Annotated[list[str], NoDecode] = Field(default=["intake.localhost"], min_length=1)
    social_mailbox: str = Field(
        default="social",
        description="Local part of the address the social media team forwards posts to.",
    )
    hostname: str = Field(default="intake.localhost", description="Name the SMTP server gives.")
    max_message_bytes: int = Field(default=25 * 1024 * 1024, ge=1024)
    smtp_idle_timeout_seconds: float = Field(default=60.0, gt=0)
    smtp_command_limit: int = Field(default=100, ge=5)
    smtp_tls_cert: Path | None = None
    smtp_tls_key: Path | None = None
    shutdown_grace_seconds: float = Field(default=30.0, ge=0)

    # Acknowledgements
    smtp_relay_url: str | None = Field(
        default=None,
        description="smtp://[user:pass@]host:port for outbound mail; unset writes to the outbox.",
    )
    ack_from: str | None = Field(default=None, description="Defaults to hello@<first domain>.")
    organisation_name: str = "Your housing team"
    reference_prefix: str = Field(default="CX", pattern=r"^[A-Z]{1,6}$")
    outbox_claim_seconds: int = Field(
        default=90, ge=1, description="How long a send may take before another worker retries it."
    )
    ack_limit_per_recipient: int = Field(default=3, ge=1)
    acknowledge_working_days: int = Field(default=5, ge=1)
    respond_working_days: int = Field(default=10, ge=1)
    stage2_acknowledge_working_days: int = Field(default=5, ge=1)
    stage2_respond_working_days: int = Field(default=20, ge=1)
    uk_nation: UKNation = "england"
    contact_phone: str = "0300 000 0000"
    escalation_url: str = "https://www.housing-ombudsman.org.uk/"

    rules_dir: Path | None = Field(
        default=None,
        description="Folder of rule files (triage.yaml, organisations.yaml) to use instead.",
    )
    time_limit_months: int = Field(
        default=3, ge=1, le=120, description="The policy's window for complaints, in months."
    )
    templates_dir: Path | None = Field(
        default=None, description="Folder of templates that replace the shipped ones by name."
    )

    # Mailboxes read over IMAP
    imap_mailboxes: list[IMAPMailbox] = Field(
        default_factory=list, description="JSON list of mailboxes for `intake imap`."
    )
    imap_poll_seconds: float = Field(
        default=60.0, gt=0, description="How often to look where the server has no IDLE."
    )
    imap_idle_renew_seconds: float = Field(
        default=540.0, gt=0, le=600, description="IDLE is ended and begun again this often."
    )
    imap_timeout_seconds: float = Field(
        default=30.0, gt=0, description="Connect and read timeout of IMAP connections."
    )
    imap_lock_seconds: float = Field(
        default=60.0, ge=3, description="Lease of a poller on its mailbox."
    )
    imap_backoff_max_seconds: float = Field(
        default=300.0, gt=0, description="Longest wait before reconnecting."
    )
    imap_failing_after: int = Field(
        default=3, ge=1, description="Failures in a row before a mailbox is reported failing."
    )

    # SMS and WhatsApp (Twilio)
    public_url: str | None = Field(
        default=None,
        description="This service's public base URL (https://...) as Twilio calls it; webhook "
        "signatures are checked against it, never against proxy headers.",
    )
    twilio_account_sid: str | None = Field(default=None, description="Twilio account SID.")
    twilio_auth_token: SecretStr | None = Field(
        default=None, description="Checks webhook signatures, sends messages, fetches media."
    )
    twilio_from: str | None = Field(
        default=None, description="SMS sender number; unset: the number the customer wrote to."
    )
    twilio_whatsapp_from: str | None = Field(
        default=None, description="WhatsApp sender; unset: the number the customer wrote to."
    )
    twilio_api_url: str = Field(
        default="https://api.twilio.com", description="Twilio's REST API (a stand-in in tests)."
    )
    twilio_media_max_bytes: int = Field(
        default=16 * 1024 * 1024, ge=1024, description="Largest photo or file fetched."
    )
    twilio_media_types: Annotated[list[str], NoDecode] = Field(
        default=[
            "image/jpeg",
            "image/png",
            "image/gif",
            "image/webp",
            "image/heic",
            "image/heif",
            "application/pdf",
            "audio/ogg",
            "audio/mpeg",
            "audio/mp4",
            "audio/amr",
            "video/mp4",
            "video/3gpp",
        ],
        description="Content types of media that are fetched; others are listed, not fetched.",
    )

    # Web form and JSON API
    api_keys: list[ApiKey] = Field(
        default_factory=list,
        description="JSON list of API keys: name, sha256 of the key, channels it may submit.",
    )
    api_max_body_bytes: int = Field(
        default=1024 * 1024, ge=1024, description="Largest JSON API request body."
    )
    web_secret: SecretStr | None = Field(
        default=None,
        description="Signs the form's tokens; unset, a random secret is kept in Redis.",
    )
    web_rate_limit: int = Field(
        default=20, ge=1, description="Form submissions allowed from one address per window."
    )
    web_rate_window_seconds: int = Field(default=3600, ge=1)
    upload_max_files: int = Field(default=5, ge=0, le=20, description="Files per form.")
    upload_max_bytes: int = Field(
        default=10 * 1024 * 1024, ge=1024, description="Largest file the form takes."
    )

    # Deduplication: follow-ups, repeats, campaigns
    duplicate_window_days: int = Field(
        default=30, ge=1, description="A customer's repeat within this many days is a duplicate."
    )
    duplicate_similarity: float = Field(
        default=0.8, gt=0, le=1, description="Estimated text similarity that counts as the same."
    )
    campaign_min_customers: int = Field(
        default=3, ge=2, description="Customers sending near-identical text that make a campaign."
    )
    follow_up_days: int = Field(
        default=400, ge=1, description="How long a reference is linked when quoted or replied to."
    )
    customer_directory: str | None = Field(
        default=None,
        description="module:factory of a customer directory; unset: email and phone only.",
    )

    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_json: bool = True
    log_file: Path | None = Field(default=None, description="Append logs here, not stderr.")

    @field_validator("domains", mode="before")
    @classmethod
    def _domains_list(cls, value: object) -> object:
        return _split_list(value)

    @field_validator("domains")
    @classmethod
    def _domains_lower(cls, value: list[str]) -> list[str]:
        cleaned = [d.strip().lower().rstrip(".") for d in value]
        for domain in cleaned:
            if not domain or "@" in domain or " " in domain:
                raise ValueError(f"not a domain name: {domain!r}")
        return cleaned

    @field_validator("imap_mailboxes")
    @classmethod
    def _mailbox_names_unique(cls, value: list[IMAPMailbox]) -> list[IMAPMailbox]:
        names = [mailbox.name for mailbox in value]
        if len(set(names)) != len(names):
            raise ValueError("two mailboxes share a name")
        return value

    @field_validator("api_keys")
    @classmethod
    def _api_keys_unique(cls, value: list[ApiKey]) -> list[ApiKey]:
        names = [key.name for key in value]
        hashes = [key.sha256.lower() for key in value]
        if len(set(names)) != len(names) or len(set(hashes)) != len(hashes):
            raise ValueError("two API keys share a name or a hash")
        return value

    @field_validator("twilio_media_types", mode="before")
    @classmethod
    def _media_types_list(cls, value: object) -> object:
        return _split_list(value)

    @field_validator("twilio_media_types")
    @classmethod
    def _media_types_lower(cls, value: list[str]) -> list[str]:
        return [item.strip().lower() for item in value if item.strip()]

    @field_validator("public_url", "twilio_api_url")
    @classmethod
    def _base_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("https://", "http://")) or "?" in value or "#" in value:
            raise ValueError(f"not an http(s) base URL: {value!r}")
        return value.rstrip("/")

    @property
    def ack_sender(self) -> str:
        return self.ack_from or f"hello@{self.domains[0]}"

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"

    @property
    def outbox_dir(self) -> Path:
        return self.data_dir / "outbox"


def load_settings(**overrides: object) -> Settings:
    """Build the settings, turning validation errors into one readable line."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else "?"
        raise SettingsError(f"INTAKE_{field.upper()}: {first['msg']}") from None
    except ValueError as exc:  # a JSON list that does not parse, raised before validation
        raise SettingsError(f"bad setting: {exc}") from None
