"""The public contract: the record's schema, its committed copy, and the settings' errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.errors import SettingsError
from gateway.schema import IntakeRecord, json_schema
from gateway.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parent.parent
CONTRACT_FIELDS = {
    "schema",
    "id",
    "reference",
    "channel",
    "received_at",
    "source",
    "customer",
    "subject",
    "text",
    "language",
    "attachments",
    "thread",
    "triage",
    "deadlines",
    "disposition",
    "duplicate_of",
    "redirect",
    "acknowledgement",
}


def intake(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def test_committed_schema_matches_the_code() -> None:
    committed = json.loads((ROOT / "docs" / "intake-v1.schema.json").read_text())
    assert committed == json_schema(), "run `intake schema > docs/intake-v1.schema.json`"


def test_intake_schema_prints_the_schema() -> None:
    result = intake("schema")
    assert result.returncode == 0
    assert json.loads(result.stdout) == json_schema()


def test_schema_names_every_contract_field() -> None:
    properties = set(json_schema()["properties"])
    assert properties >= CONTRACT_FIELDS
    triage = json_schema()["$defs"]["Triage"]["properties"]
    assert {
        "kind",
        "categories",
        "priority",
        "vulnerability",
        "incident_date",
        "within_time_limit",
        "stage",
        "language",
        "reasons",
    } <= set(triage)


def test_a_record_round_trips_with_the_schema_field_named_schema() -> None:
    record = IntakeRecord.model_validate(
        {
            "schema": "intake/v1",
            "id": "01J0000000000000000000000",
            "reference": "CX-2026-000001",
            "channel": "sms",
            "received_at": "2026-11-27T12:00:00Z",
            "source": {"transport": "twilio", "raw_sha256": "0" * 64},
        }
    )
    data = json.loads(record.to_json())
    assert data["schema"] == "intake/v1"
    assert IntakeRecord.from_json(record.to_json()) == record


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("INTAKE_SMTP_PORT", "twenty-five"),
        ("INTAKE_SMTP_PORT", "70000"),
        ("INTAKE_DOMAINS", ""),
        ("INTAKE_REFERENCE_PREFIX", "cx-1"),
        ("INTAKE_UK_NATION", "france"),
        ("INTAKE_MAX_MESSAGE_BYTES", "-1"),
    ],
)
def test_a_bad_setting_stops_start_up_with_one_clear_line(variable: str, value: str) -> None:
    result = intake("worker", env={variable: value})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert variable in lines[0]
    assert "Traceback" not in result.stderr


def test_load_settings_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INTAKE_DOMAINS", "Housing.Example., intake.example")
    monkeypatch.setenv("INTAKE_SMTP_PORT", "2626")
    settings = load_settings()
    assert settings.domains == ["housing.example", "intake.example"]
    assert settings.smtp_port == 2626
    assert settings.ack_sender == "hello@housing.example"
    monkeypatch.setenv("INTAKE_DOMAINS", '["a.example", "b.example"]')
    assert load_settings().domains == ["a.example", "b.example"]
    monkeypatch.setenv("INTAKE_SMTP_PORT", "x")
    with pytest.raises(SettingsError, match="INTAKE_SMTP_PORT"):
        load_settings()


def test_defaults_are_the_documented_ones() -> None:
    defaults = Settings()
    assert defaults.smtp_port == 2525
    assert defaults.http_port == 8000
    assert defaults.max_message_bytes == 25 * 1024 * 1024
    assert defaults.redis_url is None
    assert defaults.ack_limit_per_recipient == 3
