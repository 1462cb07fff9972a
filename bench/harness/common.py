"""Processes, ports, Redis and statistics for the benchmarks.

Every process a benchmark starts is a :class:`Service`: started in its own session (so
that it and any child it forks share one process group, whose id is the service's pid),
its output written to a log file in the benchmark's temporary directory, and stopped by
:meth:`Service.stop` — SIGTERM to the service, then SIGKILL to its group for anything left.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from types import FrameType
from typing import Any, ClassVar

import redis

from gateway.redis_server import EmbeddedRedis

BENCH_DIR = Path(__file__).resolve().parents[1]
REPO_ROOT = BENCH_DIR.parent
HOST = "127.0.0.1"
DOMAIN = "housing.test"
RECIPIENT = f"complaints@{DOMAIN}"


class BenchError(Exception):
    """A benchmark could not run (a process did not start, a tool is missing)."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def exit_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit so that ``finally`` blocks stop what was started."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This environment without any ``INTAKE_*`` setting, ``bench/`` on the module path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTAKE_")}
    path = env.get("PYTHONPATH")
    env["PYTHONPATH"] = str(BENCH_DIR) + (os.pathsep + path if path else "")
    env.update(extra or {})
    return env


def gateway_env(redis_url: str, data_dir: Path, **settings: str | int | float) -> dict[str, str]:
    """The environment of a gateway process: ``INTAKE_<NAME>`` for each setting given."""
    values: dict[str, str] = {
        "INTAKE_REDIS_URL": redis_url,
        "INTAKE_DATA_DIR": str(data_dir),
        "INTAKE_DOMAINS": DOMAIN,
        "INTAKE_LOG_LEVEL": "warning",
    }
    values.update({f"INTAKE_{name.upper()}": str(value) for name, value in settings.items()})
    return child_env(values)


def read_status_kb(pid: int, field: str) -> int | None:
    """A ``kB`` field (VmRSS, VmHWM) of /proc/PID/status, or None once the process is gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


class Service:
    """One process started by a benchmark; see the module docstring.

    Every service not yet stopped is listed in ``Service.live``, so that a script can stop
    whatever is left, however it ends, with :meth:`stop_all`.
    """

    live: ClassVar[list[Service]] = []

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        env: Mapping[str, str],
        log_dir: Path,
    ) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            list(argv),
            env=dict(env),
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        Service.live.append(self)

    @property
    def pid(self) -> int:
        return self.process.pid

    def running(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def fail(self, what: str) -> BenchError:
        return BenchError(
            f"{self.name}: {what}\n--- last lines of {self.name}.log ---\n" + self.log_tail()
        )

    def wait_smtp(self, port: int, timeout: float = 60.0) -> None:
        """Wait until ``port`` answers with an SMTP greeting."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running():
                raise self.fail(f"exited with {self.process.returncode} before listening")
            try:
                with socket.create_connection((HOST, port), timeout=2) as sock:
                    greeting = sock.recv(512)
                    sock.sendall(b"QUIT\r\n")
                    if greeting.startswith(b"220"):
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise self.fail(f"no SMTP greeting on port {port} within {timeout:.0f}s")

    def wait(self, timeout: float) -> int:
        """Wait for the service to exit by itself; stop it and fail after ``timeout``."""
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise self.fail(f"did not finish within {timeout:.0f}s") from None

    def result_line(self, prefix: str) -> str:
        """The last line of the log that starts with ``prefix``."""
        lines = [ln for ln in self.log_tail(10_000).splitlines() if ln.startswith(prefix)]
        if not lines:
            raise self.fail(f"printed no line starting with {prefix!r}")
        return lines[-1]

    def vmhwm_kb(self) -> int | None:
        """Peak resident set size so far (VmHWM), or None once the process is gone."""
        return read_status_kb(self.pid, "VmHWM")

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM, wait up to ``timeout``, then SIGKILL the group; returns the exit code."""
        if self not in Service.live:  # stopped already: its group id may be reused by now
            return self.process.returncode
        try:
            if self.running():
                self.process.send_signal(signal.SIGTERM)
                with suppress(subprocess.TimeoutExpired):
                    self.process.wait(timeout)
            # Anything left in the group: the service itself, or a child it forked.
            with suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)
            self.process.wait()
        finally:
            self._log.close()
            with suppress(ValueError):
                Service.live.remove(self)
        return self.process.returncode

    @classmethod
    def stop_all(cls) -> None:
        """Stop every service still running, the most recently started first."""
        for service in reversed(list(cls.live)):
            service.stop(timeout=5.0)


@contextmanager
def private_redis(directory: Path) -> Iterator[EmbeddedRedis]:
    """A private redis-server (appendonly yes, appendfsync always) on a unix socket."""
    server = EmbeddedRedis(directory)
    try:
        server.start()
        yield server
    finally:
        server.stop()


def redis_client(server: EmbeddedRedis) -> redis.Redis:
    return redis.Redis(unix_socket_path=str(server.socket))


def count_keys(client: redis.Redis, pattern: str) -> int:
    return sum(1 for _ in client.scan_iter(match=pattern, count=1000))


def sink_service(port: int, log_dir: Path, name: str = "sink") -> Service:
    """The bare aiosmtpd server of ``harness.sink`` on ``port``, ready to take mail."""
    service = Service(
        name, [sys.executable, "-m", "harness.sink", "--port", str(port)], child_env(), log_dir
    )
    try:
        service.wait_smtp(port)
    except BaseException:
        service.stop()
        raise
    return service


def mb(kb: int | None) -> str:
    return "n/a" if kb is None else f"{kb / 1024:.1f} MB"


def median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    if not ordered:
        return math.nan
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile: the smallest value with ``fraction`` of values at or below."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def verdict(ok: bool) -> str:
    return "MET" if ok else "MISSED"


def write_json(path: Path | None, data: Mapping[str, Any]) -> None:
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    print(f"results written to {path}")


def find_smtp_source(explicit: str | None) -> Path | None:
    """postfix's smtp-source: the path given, else PATH, else the sbin directories."""
    if explicit:
        return Path(explicit) if os.access(explicit, os.X_OK) else None
    search = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin"])
    found = shutil.which("smtp-source", path=search)
    return Path(found) if found else None


SMTP_SOURCE_HELP = """\
smtp-source (from postfix) was not found; it is the load generator this benchmark needs,
since a Python SMTP client cannot saturate the server on a small machine. On Debian or
Ubuntu install it with (the postfix daemon need not run):

    sudo DEBIAN_FRONTEND=noninteractive apt-get install -y postfix

or give its path with --smtp-source PATH."""


def file_creation_us(directory: Path, count: int = 1000) -> float:
    """Microseconds of CPU (user and system) it takes to create one empty file in
    ``directory``: every blob the gateway stores is a new file, and on some file systems
    this alone outweighs the rest of a request. Read from the thread's own CPU clock:
    the process clock's ticks are coarser than the figure on a fast file system."""
    folder = directory / ".file-creation-probe"
    folder.mkdir(parents=True)
    try:
        before = time.thread_time()
        for number in range(count):
            os.close(os.open(folder / f"f{number}", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        spent = time.thread_time() - before
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return spent / count * 1e6
