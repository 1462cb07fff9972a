"""The scaled-out deployment files say what the code can actually run."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from gateway.cli import app
from gateway.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data


def commands() -> set[str]:
    return {command.name or command.callback.__name__ for command in app.registered_commands}  # type: ignore[union-attr]


def test_compose_declares_redis_with_every_write_on_disk() -> None:
    redis = compose()["services"]["redis"]
    args = " ".join(redis["command"])
    assert "--appendonly yes" in args
    assert "--appendfsync always" in args
    assert "--maxmemory-policy noeviction" in args
    assert any(volume.endswith(":/data") for volume in redis["volumes"])


def test_each_part_runs_an_existing_command_with_known_settings() -> None:
    services = compose()["services"]
    known = {f"INTAKE_{name.upper()}" for name in Settings.model_fields}
    for name in ("smtp", "http", "worker"):
        service = services[name]
        [command] = service["command"]
        assert command == name and command in commands()
        unknown = set(service["environment"]) - known
        assert not unknown, f"{name}: unknown settings {unknown}"
        assert service["environment"]["INTAKE_REDIS_URL"].startswith("redis://redis:")
        assert "redis" in service["depends_on"]
        assert any(v.endswith(":/var/lib/intake") for v in service["volumes"])
    assert services["smtp"]["ports"] == ["2525:2525"]
    assert services["http"]["ports"] == ["8000:8000"]
    assert services["worker"]["deploy"]["replicas"] >= 2


def test_dockerfile_runs_the_intake_command_as_a_plain_user() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^USER intake$", text, re.M)
    assert 'ENTRYPOINT ["intake"]' in text
    for package in ("gateway", "channels", "workers"):
        assert f"COPY {package} ./{package}" in text
