"""A real browser and a real server for the form's tests.

The app runs as it does in production, ``intake http`` under uvicorn, in a child process
on a free port; the browser is Debian's ``chromium`` driven by Playwright, launched with
flags that keep it off the network; axe-core (from ``node_modules``, installed by
``npm ci``) is injected into pages to check them against WCAG 2.2 A and AA.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, Page, Playwright

from gateway.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
MISSING = (
    "{what} is missing: the browser tests need Debian's chromium (apt-get install chromium) "
    "and axe-core (npm ci); .ci/run installs both"
)


def launch(playwright: Playwright) -> Browser:
    if not CHROMIUM.exists():
        raise AssertionError(MISSING.format(what=str(CHROMIUM)))
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)


def axe_violations(page: Page, impacts: tuple[str, ...] = ("serious", "critical")) -> list[Any]:
    """axe-core's violations of the given impacts on the page as it is now."""
    if not AXE.exists():
        raise AssertionError(MISSING.format(what=str(AXE)))
    page.add_script_tag(path=str(AXE))
    results = page.evaluate(
        "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})", AXE_TAGS
    )
    return [
        {
            "id": v["id"],
            "impact": v["impact"],
            "help": v["help"],
            "nodes": [n["target"] for n in v["nodes"]],
        }
        for v in results["violations"]
        if v["impact"] in impacts
    ]


def _wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the HTTP app exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"the HTTP app did not listen on {port} within {timeout:.0f}s")


def gateway_env(settings: Settings, **extra_env: str) -> dict[str, str]:
    """The environment of a gateway process with the test's settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTAKE_")}
    env.update(
        INTAKE_REDIS_URL=settings.redis_url or "",
        INTAKE_DATA_DIR=str(settings.data_dir),
        INTAKE_HTTP_PORT=str(settings.http_port),
        INTAKE_BIND_HOST="127.0.0.1",
        INTAKE_DOMAINS=",".join(settings.domains),
        INTAKE_ORGANISATION_NAME=settings.organisation_name,
        **extra_env,
    )
    if settings.smtp_relay_url:
        env["INTAKE_SMTP_RELAY_URL"] = settings.smtp_relay_url
    if os.environ.get("INTAKE_LOG_FILE"):
        env["INTAKE_LOG_FILE"] = os.environ["INTAKE_LOG_FILE"]
    return env


@contextmanager
def live_server(settings: Settings, **extra_env: str) -> Iterator[str]:
    """``intake http`` in a child process with the test's settings; yields its base URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "http"],
        env=gateway_env(settings, **extra_env),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        _wait_for_port(settings.http_port, process)
        yield f"http://127.0.0.1:{settings.http_port}"
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def burst_worker(settings: Settings) -> None:
    """``intake worker --burst``: process what is queued, then stop."""
    subprocess.run(
        [sys.executable, "-m", "gateway.cli", "worker", "--burst"],
        env=gateway_env(settings),
        cwd=ROOT,
        check=True,
        timeout=120,
    )


def focused(page: Page) -> str:
    """The id (or tag) of the element that has the keyboard focus."""
    return str(
        page.locator(":focus").evaluate(
            "el => el.id || el.className || el.tagName.toLowerCase()", timeout=5000
        )
    )
