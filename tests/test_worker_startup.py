"""A worker gets ready before its first job, and a broken message template stops it there.

What the first record would otherwise load while its customer waits (the channels'
parsers and senders, the function rq imports by name, the templates) is loaded as the
worker starts. A landlord's reworded template that does not compile is named, with its
line, when the worker starts, instead of failing every acknowledgement that uses it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.errors import TemplateError
from gateway.settings import load_settings
from workers.messages import environment
from workers.runner import check_rules

WARM_UP_AND_LIST = """
import json, sys
from gateway.settings import load_settings
from workers.messages import environment
from workers.runner import warm_up

settings = load_settings()
warm_up(settings)
print(json.dumps({
    "loaded": sorted(sys.modules),
    "compiled": sorted(t.name for t in environment(settings.templates_dir).cache.values()),
}))
"""


def test_warm_up_loads_what_the_first_job_needs(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTAKE_")}
    env["INTAKE_DATA_DIR"] = str(tmp_path)
    result = subprocess.run(
        [sys.executable, "-c", WARM_UP_AND_LIST],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    found = json.loads(result.stdout)
    loaded = set(found["loaded"])
    # rq's job function, and each channel's normaliser and notifier.
    for module in (
        "workers.entry",
        "channels.email.normalise",
        "channels.email.outbound",
        "channels.sms.normalise",
        "channels.sms.notify",
        "channels.web.normalise",
        "channels.api.normalise",
        "channels.email.social",
        "mailparser",
        "aiosmtplib",
    ):
        assert module in loaded, module
    for name in (
        "acknowledgement.subject.j2",
        "acknowledgement.txt.j2",
        "acknowledgement.html.j2",
        "redirect.txt.j2",
    ):
        assert name in found["compiled"], name


def test_a_template_that_does_not_compile_stops_start_up_naming_it(tmp_path: Path) -> None:
    (tmp_path / "acknowledgement.txt.j2").write_text(
        "Dear {{ greeting_name }},\n\nYour reference is {{ record.reference }\n"
    )
    settings = load_settings(data_dir=tmp_path / "data", templates_dir=tmp_path)
    with pytest.raises(TemplateError) as error:
        check_rules(settings)
    assert "acknowledgement.txt.j2:3:" in str(error.value)


def test_a_worker_with_a_broken_template_exits_with_one_line(tmp_path: Path) -> None:
    (tmp_path / "redirect.subject.j2").write_text("{% if record %}Your message\n")
    result = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "worker", "--burst"],
        env={
            **os.environ,
            "INTAKE_TEMPLATES_DIR": str(tmp_path),
            "INTAKE_DATA_DIR": str(tmp_path / "data"),
            "INTAKE_REDIS_URL": "unix:///nx",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert "redirect.subject.j2:" in line


def test_the_shipped_templates_all_compile() -> None:
    settings = load_settings()
    check_rules(settings)
    compiled = {t.name for t in environment(settings.templates_dir).cache.values()}
    shipped = {p.name for p in (Path(__file__).parents[1] / "workers" / "templates").glob("*.j2")}
    assert shipped <= compiled
