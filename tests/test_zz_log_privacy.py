"""Runs last: every log line the suite produced carries ids, never contact details.

The suite sends mail from and to many addresses; if any log line, from this process or
from the gateway processes the tests started, names one, a customer's address would be
leaking into logs in production too.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gateway.logs import configure_logging, get_logger

EMAIL = re.compile(r"[\w.+'-]+@[\w-]+(?:\.[\w-]+)+")
UK_PHONE = re.compile(r"(?:\+44\s?\d{4}|\b0\d{4})\s?\d{3}\s?\d{3}\b|\+\d{10,14}\b")


def test_the_suite_logged_no_address_or_phone_number(suite_log: Path) -> None:
    text = suite_log.read_text(encoding="utf-8", errors="replace")
    assert "smtp.accepted" in text, "the suite's logs were not captured"
    leaks = [line for line in text.splitlines() if EMAIL.search(line) or UK_PHONE.search(line)]
    assert leaks == [], "\n".join(leaks[:10])


def test_a_careless_log_call_is_masked(tmp_path: Path, suite_log: Path) -> None:
    own = tmp_path / "own.log"
    configure_logging("info", json=True, file=own)
    try:
        get_logger("test").warning(
            "careless", detail="from sam.taylor@example.net, call 07700 900123 or +447700900123"
        )
        text = own.read_text()
    finally:
        configure_logging("debug", json=True, file=suite_log)
    assert "careless" in text
    assert "example.net" not in text and "900123" not in text


@pytest.fixture(autouse=True)
def _keep_order() -> None:
    """This module's name sorts last so that it reads the whole suite's log."""
