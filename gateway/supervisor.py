"""``intake run``: every part on one machine, in one process tree.

Starts the embedded Redis when no Redis URL is set, then the SMTP listener, the HTTP app
and the workers as child processes, restarting any that dies. SIGTERM or Ctrl-C stops the
children first (each finishes what it has in hand) and Redis last.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

from gateway.logs import get_logger
from gateway.redis_server import EmbeddedRedis
from gateway.settings import Settings

log = get_logger("gateway.supervisor")


@dataclass
class Child:
    role: str
    process: subprocess.Popen[bytes] | None = None
    restarts: list[float] = field(default_factory=list)


def _spawn(role: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "gateway.cli", role], env=env)


def run_all(settings: Settings) -> int:
    embedded: EmbeddedRedis | None = None
    env = dict(os.environ)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if settings.redis_url:
        redis_url = settings.redis_url
    else:
        embedded = EmbeddedRedis(settings.data_dir / "redis")
        redis_url = embedded.start()
        env["INTAKE_REDIS_URL"] = redis_url
    children = [Child("smtp"), Child("http")] + [Child("worker") for _ in range(settings.workers)]
    if settings.imap_mailboxes:
        children.append(Child("imap"))
    stopping = False

    def request_stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    data_dir = settings.data_dir.resolve()
    domains = ", ".join(settings.domains)
    redis_text = f"embedded, {redis_url}" if embedded else "external"
    mail_text = (
        f"relay {settings.smtp_relay_url}"
        if settings.smtp_relay_url
        else f"no relay: replies are written to {data_dir / 'outbox'}"
    )
    imap_text = ", ".join(m.name for m in settings.imap_mailboxes) or "no mailbox configured"
    print(
        f"intake-gateway running\n"
        f"  SMTP   {settings.bind_host}:{settings.smtp_port}  (mail for {domains})\n"
        f"  HTTP   http://{settings.bind_host}:{settings.http_port}/  (/healthz, /metrics, /docs)\n"
        f"  Redis  {redis_text}\n"
        f"  Data   {data_dir}\n"
        f"  Mail   {mail_text}\n"
        f"  IMAP   {imap_text}\n"
        f"  Press Ctrl-C to stop.",
        flush=True,
    )
    try:
        for child in children:
            child.process = _spawn(child.role, env)
        while not stopping:
            for child in children:
                assert child.process is not None
                if child.process.poll() is not None and not stopping:
                    now = time.monotonic()
                    child.restarts = [t for t in child.restarts if now - t < 60] + [now]
                    if len(child.restarts) > 5:
                        log.error("supervisor.giving_up", role=child.role)
                        stopping = True
                        break
                    log.warning(
                        "supervisor.restart", role=child.role, code=child.process.returncode
                    )
                    time.sleep(min(2 ** len(child.restarts) * 0.1, 5))
                    child.process = _spawn(child.role, env)
            time.sleep(0.2)
    finally:
        for child in children:
            if child.process and child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + settings.shutdown_grace_seconds + 5
        for child in children:
            if child.process is None:
                continue
            try:
                child.process.wait(max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                child.process.kill()
                child.process.wait()
        if embedded:
            embedded.stop()
    print("intake-gateway stopped", flush=True)
    return 0
