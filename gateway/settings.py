"""Every setting the gateway reads, in one place.

Built once per entry point from ``INTAKE_*`` environment variables and passed down;
nothing else in the code base reads the environment. A bad value stops start-up with one
line that names the variable (see :func:`load_settings`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

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


class Settings(BaseSettings):
    """The gateway's configuration; field ``x`` is read from ``INTAKE_X``."""

    model_config = SettingsConfigDict(env_prefix="INTAKE_", extra="ignore", frozen=True)

    # Storage and queue
    redis_url: str | None = Field(
        default=None,
        description="Redis to use; unset starts an embedded Redis under the data directory.",
    )
    data_dir: Path = Field(default=Path("intake-data"), description="Blobs, embedded Redis.")
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

    templates_dir: Path | None = Field(
        default=None, description="Folder of templates that replace the shipped ones by name."
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
