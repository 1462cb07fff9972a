"""A schemathesis run against ``POST /v1/intake`` on the real app under uvicorn.

Schemathesis reads our own OpenAPI document and sends what it describes and what it does
not: valid bodies, invalid ones, missing and malformed headers, requests without the key.
Every answer must be a documented status with a body of the documented shape — and never
a 5xx. One check is left out: ``positive_data_acceptance`` expects every body that fits
the JSON Schema to be accepted, and some rules cannot be written in JSON Schema (a date
may not be in the future; ``social`` goes with channel ``social`` only), so such bodies
are rightly refused with a 422 that names the field.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import redis

from gateway.settings import Settings
from tests.browser import live_server

FUZZ_KEY = "test-key-schemathesis-not-a-real-key"
CHANNELS = ["phone", "letter", "in_person", "social", "api"]


def test_schemathesis_finds_no_server_error_and_no_undocumented_answer(
    settings: Settings, connection: redis.Redis, tmp_path: Path
) -> None:
    keys = [
        {
            "name": "fuzz",
            "sha256": hashlib.sha256(FUZZ_KEY.encode()).hexdigest(),
            "channels": CHANNELS,
        }
    ]
    with live_server(settings, INTAKE_API_KEYS=json.dumps(keys)) as base_url:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "schemathesis.cli",
                "run",
                f"{base_url}/openapi.json",
                "--header",
                f"Authorization: Bearer {FUZZ_KEY}",
                "--include-path",
                "/v1/intake",
                "--checks",
                "all",
                "--exclude-checks",
                "positive_data_acceptance",
                "--max-examples",
                "150",
                "--generation-deterministic",
                "--continue-on-failure",
                "--request-timeout",
                "30",
                "--no-color",
                "--report-dir",
                str(tmp_path),
            ],
            capture_output=True,
            text=True,
            timeout=600,
            cwd=tmp_path,  # its example database stays out of the source tree
        )
    summary = result.stdout[-6000:]
    assert result.returncode == 0, summary
    assert "passed" in summary and "POST /v1/intake" in result.stdout
    assert connection.llen("rq:queue:intake") > 0, "no generated request was accepted"
