"""The README is the user's manual: its commands, settings and example must be true."""

from __future__ import annotations

import re
import smtplib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

from gateway.settings import Settings
from tests.conftest import make_mail

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_the_two_commands_come_first_and_ci_runs_the_same_test_command() -> None:
    first_block = README.split("```")[0]
    assert "make run" in first_block and "make test" in first_block
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci and "make lint" in ci


def test_every_setting_is_documented() -> None:
    documented = set(re.findall(r"`(INTAKE_[A-Z0-9_]+)`", README))
    expected = {f"INTAKE_{name.upper()}" for name in Settings.model_fields}
    assert expected - documented == set()
    assert documented - expected == set(), "README documents settings that do not exist"


def test_the_feed_example_works(
    smtp_server: tuple[str, int], connection: redis.Redis, drain: Callable[[], None]
) -> None:
    code = README.split("<!-- feed-example -->")[1].split("```python")[1].split("```")[0]
    namespace: dict[str, Any] = {"__name__": "readme_example"}
    exec(compile(code, "README.md", "exec"), namespace)
    with smtplib.SMTP(*smtp_server, timeout=10) as client:
        client.sendmail("sam.taylor@example.net", ["hello@housing.test"], make_mail())
    drain()
    seen: list[dict[str, Any]] = []
    namespace["join_group"](connection)
    assert namespace["consume"](connection, "reader-1", seen.append, block_ms=100) == 1
    assert seen[0]["reference"].startswith("CX-")
    assert namespace["consume"](connection, "reader-1", seen.append, block_ms=100) == 0
    assert connection.xpending("intake:cases", "case-system")["pending"] == 0
