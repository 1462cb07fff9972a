"""Requests per second and p99 latency of the HTTP intake, against a bare Starlette endpoint.

Each run starts a private Redis (appendonly yes, appendfsync always) and one server under
uvicorn on 127.0.0.1, then ``wrk`` posts to it for a fixed time (16 connections):

* gateway: ``intake http``, ``POST /v1/intake`` with a bearer key, every body different
  (a counter in the text), so each 201 means a new blob durable on disk and a new ledger entry
  and job in Redis's fsynced append-only file;
* baseline: ``harness.http_baseline``, a bare Starlette endpoint that validates the same
  body with the same model and does one LPUSH;
* twilio: ``intake http``, ``POST /twilio/messages`` with a valid X-Twilio-Signature on
  each request (distinct MessageSids, signed in advance), when the route exists;
* floor: ``harness.http_floor``, a bare Starlette endpoint that validates the body and
  calls the gateway's own ``accept`` (through the API's batcher): the least an endpoint
  can do and keep the promise that a 2xx means stored and queued. Its ratio is printed
  as the ceiling any implementation of ``POST /v1/intake`` can reach on this machine.

Targets run alternately (the order flips every round) because these machines drift; the
figure to read is the median of the per-round ratios to the baseline. After each gateway
run the ledger is counted: every request answered 2xx must be a record.

    python bench/http_intake.py            # 3 rounds of 10 s per target
    python bench/http_intake.py --quick    # 1 round of 4 s per target
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

from harness.common import (
    HOST,
    BenchError,
    Service,
    child_env,
    count_keys,
    exit_on_sigterm,
    file_creation_us,
    free_port,
    gateway_env,
    mb,
    median,
    private_redis,
    redis_client,
    verdict,
    write_json,
)

from gateway.ledger import record_key

TARGET_RATIO = 0.5
API_KEY = "bench-key-not-a-real-key"
TWILIO_TOKEN = "bench-twilio-token-not-real"
TWILIO_SID = "AC" + "0" * 32
WRK_HELP = """\
wrk was not found; it is the load generator this benchmark needs. On Debian or Ubuntu:

    sudo apt-get install -y wrk

or give its path with --wrk PATH."""
BODY = {
    "channel": "phone",
    "customer": {
        "name": "Sam Taylor",
        "email": "sam.taylor@example.net",
        "phone": "07700 900123",
        "preferred_contact": "phone",
    },
    "subject": "Leak through the kitchen ceiling",
    "text": "Water has been coming through the kitchen ceiling since Monday. Call %s-%d-%d.",
    "incident_date": "2026-11-23",
    "desired_outcome": "Fix the leak and repaint the ceiling.",
}
JSON_SCRIPT = """\
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {key}"
local template = [==[{body}]==]
local threads = 0
local counter = 0
function setup(thread)
  threads = threads + 1
  thread:set("id", threads)
end
function request()
  counter = counter + 1
  return wrk.format(nil, nil, nil, string.format(template, "{label}", id, counter))
end
"""
TWILIO_SCRIPT = """\
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
local signatures, bodies, count = {{}}, {{}}, 0
local threads, next_one = 0, 0
function setup(thread)
  threads = threads + 1
  thread:set("id", threads)
end
function init(args)
  for line in io.lines("{data}") do
    local tab = string.find(line, "\\t", 1, true)
    count = count + 1
    signatures[count] = string.sub(line, 1, tab - 1)
    bodies[count] = string.sub(line, tab + 1)
  end
  next_one = ((id - 1) * 7919) % count  -- threads start at different messages
end
function request()
  next_one = next_one % count + 1
  wrk.headers["X-Twilio-Signature"] = signatures[next_one]
  return wrk.format(nil, nil, nil, bodies[next_one])
end
"""


@dataclass
class Run:
    target: str
    seconds: float
    requests: int
    rate: float
    p50_ms: float
    p99_ms: float
    errors: int  # non-2xx answers and socket errors
    peak_rss_kb: int | None = None
    records: int | None = None  # ledger entries after the run (gateway targets)
    extra: dict[str, int] = field(default_factory=dict)

    @property
    def lost(self) -> int:
        if self.records is None:
            return 0
        return max(0, self.requests - self.errors - self.records)


def wait_http(service: Service, port: int, path: str, timeout: float = 60.0) -> None:
    """Wait until ``path`` answers at all (any status: the server is up)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not service.running():
            raise service.fail(f"exited with {service.process.returncode} before listening")
        try:
            urllib.request.urlopen(f"http://{HOST}:{port}{path}", timeout=2).close()
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.1)
    raise service.fail(f"no HTTP answer on port {port} within {timeout:.0f}s")


_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    found = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if not found:
        raise BenchError(f"cannot read wrk's latency {text!r}")
    return float(found.group(1)) * _UNIT_MS[found.group(2)]


def run_wrk(
    args: argparse.Namespace, url: str, script: Path, seconds: float
) -> tuple[int, float, float, float, int]:
    """(requests, requests/s, p50 ms, p99 ms, errors) of one wrk run."""
    argv = [
        args.wrk,
        f"--threads={args.threads}",
        f"--connections={args.connections}",
        f"--duration={max(1, round(seconds))}s",
        "--timeout=10s",
        "--latency",
        f"--script={script}",
        url,
    ]
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"wrk did not finish within {exc.timeout:.0f}s") from exc
    out = result.stdout
    if result.returncode != 0 or "Requests/sec" not in out:
        raise BenchError(f"wrk failed ({result.returncode}): {result.stderr.strip() or out}")
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    errors = 0
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non_2xx:
        errors += int(non_2xx.group(1))
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    if socket_errors:
        errors += sum(int(n) for n in socket_errors.groups())
    return requests, rate, p50, p99, errors


def json_script(workdir: Path, label: str) -> Path:
    """A wrk script posting a body that differs on every request (and from other runs')."""
    body = json.dumps(BODY, separators=(",", ":"))
    path = workdir / f"intake-{label}.lua"
    path.write_text(JSON_SCRIPT.format(key=API_KEY, body=body, label=label))
    return path


def twilio_script(workdir: Path, public_url: str, count: int, label: str) -> Path:
    """A wrk script cycling through ``count`` distinct messages, each validly signed."""
    from urllib.parse import urlencode

    from twilio.request_validator import RequestValidator

    validator = RequestValidator(TWILIO_TOKEN)
    url = f"{public_url}/twilio/messages"
    data = workdir / f"twilio-{label}.tsv"
    with data.open("w") as lines:
        for number in range(count):
            form = {
                "MessageSid": f"SM{label}{number:031x}",
                "AccountSid": TWILIO_SID,
                "From": "+447700900123",
                "To": "+447700900000",
                "Body": f"The lift in block C is broken again, day {number}.",
                "NumMedia": "0",
                "NumSegments": "1",
            }
            signature = validator.compute_signature(url, form)
            lines.write(f"{signature}\t{urlencode(form)}\n")
    path = workdir / f"twilio-{label}.lua"
    path.write_text(TWILIO_SCRIPT.format(data=data))
    return path


def gateway_run(target: str, workdir: Path, args: argparse.Namespace) -> Run:
    port = free_port()
    public_url = f"http://{HOST}:{port}"
    with private_redis(workdir / "redis") as server:
        keys = [
            {
                "name": "bench",
                "sha256": hashlib.sha256(API_KEY.encode()).hexdigest(),
                "channels": ["phone"],
            }
        ]
        env = gateway_env(
            server.url,
            workdir / "data",
            http_port=port,
            bind_host=HOST,
            api_keys=json.dumps(keys),
            public_url=public_url,
            twilio_account_sid=TWILIO_SID,
            twilio_auth_token=TWILIO_TOKEN,
            web_rate_limit=10**9,
        )
        service = Service("http", [sys.executable, "-m", "gateway.cli", "http"], env, workdir)
        try:
            wait_http(service, port, "/healthz")
            if target == "twilio":
                path = "/twilio/messages"
                warm = twilio_script(workdir, public_url, int(args.warmup * 3000) + 1000, "a")
                script = twilio_script(workdir, public_url, int(args.seconds * 3000) + 2000, "b")
            else:
                path = "/v1/intake"
                warm, script = json_script(workdir, "a"), json_script(workdir, "b")
            run_wrk(args, public_url + path, warm, args.warmup)
            client = redis_client(server)
            before = count_keys(client, record_key("*"))
            requests, rate, p50, p99, errors = run_wrk(
                args, public_url + path, script, args.seconds
            )
            time.sleep(0.5)  # the last answers' records
            records = count_keys(client, record_key("*")) - before
            client.close()
            peak = service.vmhwm_kb()
        finally:
            code = service.stop()
        if code not in (0, -signal.SIGTERM):  # uvicorn ends by re-raising the signal
            raise service.fail(f"exited with {code} after SIGTERM")
    return Run(target, args.seconds, requests, rate, p50, p99, errors, peak, records)


def baseline_run(workdir: Path, args: argparse.Namespace) -> Run:
    port = free_port()
    with private_redis(workdir / "redis") as server:
        argv = [sys.executable, "-m", "harness.http_baseline", "--port", str(port)]
        service = Service("baseline", [*argv, "--redis", server.url], child_env(), workdir)
        try:
            wait_http(service, port, "/")
            url = f"http://{HOST}:{port}/v1/intake"
            run_wrk(args, url, json_script(workdir, "a"), args.warmup)
            script = json_script(workdir, "b")
            requests, rate, p50, p99, errors = run_wrk(args, url, script, args.seconds)
            peak = service.vmhwm_kb()
        finally:
            service.stop()
    return Run("baseline", args.seconds, requests, rate, p50, p99, errors, peak)


def floor_run(workdir: Path, args: argparse.Namespace) -> Run:
    port = free_port()
    with private_redis(workdir / "redis") as server:
        env = gateway_env(server.url, workdir / "data")
        argv = [sys.executable, "-m", "harness.http_floor", "--port", str(port)]
        service = Service("floor", argv, env, workdir)
        try:
            wait_http(service, port, "/")
            url = f"http://{HOST}:{port}/v1/intake"
            run_wrk(args, url, json_script(workdir, "a"), args.warmup)
            client = redis_client(server)
            before = count_keys(client, record_key("*"))
            requests, rate, p50, p99, errors = run_wrk(
                args, url, json_script(workdir, "b"), args.seconds
            )
            time.sleep(0.5)
            records = count_keys(client, record_key("*")) - before
            client.close()
            peak = service.vmhwm_kb()
        finally:
            service.stop()
    return Run("floor", args.seconds, requests, rate, p50, p99, errors, peak, records)


def twilio_route_exists() -> bool:
    """Whether the Twilio webhook is part of this build (it is measured only then)."""
    try:
        from channels.sms.webhook import twilio_router  # noqa: F401
    except ImportError:
        return False
    return True


def describe(round_number: int, run: Run) -> str:
    line = (
        f"round {round_number}  {run.target:<8}  {run.rate:8.1f} req/s  "
        f"p50 {run.p50_ms:6.2f} ms  p99 {run.p99_ms:6.2f} ms  "
        f"({run.requests} in {run.seconds:.0f} s, errors {run.errors}, "
        f"peak RSS {mb(run.peak_rss_kb)}"
    )
    if run.records is not None:
        line += f", records {run.records}"
    return line + ")"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="HTTP intake rate and p99 latency against a bare Starlette endpoint."
    )
    parser.add_argument("--quick", action="store_true", help="1 round of 4 s per target")
    parser.add_argument("--rounds", type=int, help="rounds of all targets (default 3)")
    parser.add_argument("--seconds", type=float, help="timed seconds per run (default 10)")
    parser.add_argument("--warmup", type=float, default=2.0, help="untimed seconds first")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--no-twilio", action="store_true", help="skip the Twilio webhook")
    parser.add_argument("--no-floor", action="store_true", help="skip the floor endpoint")
    parser.add_argument("--wrk", help="path of wrk")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args()
    args.rounds = args.rounds or (1 if args.quick else 3)
    args.seconds = args.seconds or (4.0 if args.quick else 10.0)
    if args.rounds < 1 or args.seconds < 1 or args.connections < 1 or args.threads < 1:
        parser.error("--rounds, --seconds, --connections and --threads must be at least 1")
    args.wrk = args.wrk or shutil.which("wrk")
    return args


def main() -> int:
    args = parse_args()
    if not args.wrk:
        print(WRK_HELP, file=sys.stderr)
        return 2
    exit_on_sigterm()
    targets = ["gateway", "baseline"]
    if not args.no_twilio and twilio_route_exists():
        targets.append("twilio")
    if not args.no_floor:
        targets.append("floor")
    print(
        f"http_intake: {args.rounds} round(s) of {args.seconds:.0f} s per target "
        f"({', '.join(targets)}), {args.connections} connections, {args.threads} wrk "
        f"thread(s), +{args.warmup:.0f} s warm-up per run"
    )
    rounds: list[dict[str, Run]] = []
    with tempfile.TemporaryDirectory(prefix="intake-bench-http-") as tmp:
        creation = file_creation_us(Path(tmp))
        print(f"creating one file here costs {creation:.0f} us of CPU (each request stores one)")
        for number in range(1, args.rounds + 1):
            runs: dict[str, Run] = {}
            order = targets if number % 2 else list(reversed(targets))
            for target in order:
                workdir = Path(tmp) / f"{number}-{target}"
                workdir.mkdir()
                if target == "baseline":
                    runs[target] = baseline_run(workdir, args)
                elif target == "floor":
                    runs[target] = floor_run(workdir, args)
                else:
                    runs[target] = gateway_run(target, workdir, args)
                print(describe(number, runs[target]), flush=True)
                shutil.rmtree(workdir, ignore_errors=True)
            for target in targets:
                if target != "baseline":
                    ratio = runs[target].rate / runs["baseline"].rate
                    print(f"round {number}  ratio {target:<8} {ratio:6.2f}", flush=True)
            rounds.append(runs)

    print()
    print("summary")
    results: dict[str, object] = {"benchmark": "http_intake", "settings": {}}
    failed = False
    for target in targets:
        rates = [r[target].rate for r in rounds]
        p99s = [r[target].p99_ms for r in rounds]
        print(
            f"  {target:<8}  median {median(rates):8.1f} req/s "
            f"(min {min(rates):.1f}, max {max(rates):.1f})  "
            f"p99 median {median(p99s):6.2f} ms (max {max(p99s):.2f})"
        )
        results[target] = [asdict(r[target]) for r in rounds]
    for target in targets:
        if target == "baseline":
            continue
        ratios = [r[target].rate / r["baseline"].rate for r in rounds]
        ratio = median(ratios)
        results[f"ratio_{target}"] = ratio
        if target == "floor":
            print(
                f"  ratio {target:<8} median {ratio:6.2f}  "
                f"(rounds: {', '.join(f'{x:.2f}' for x in ratios)})  "
                "the most any implementation keeping the 2xx promise reaches here"
            )
            continue
        failed |= ratio < TARGET_RATIO
        print(
            f"  ratio {target:<8} median {ratio:6.2f}  "
            f"(rounds: {', '.join(f'{x:.2f}' for x in ratios)})  "
            f"target >= {TARGET_RATIO}: {verdict(ratio >= TARGET_RATIO)}"
        )
    lost = sum(r[t].lost for r in rounds for t in targets)
    errors = sum(r[t].errors for r in rounds for t in targets)
    print(f"  requests answered 2xx without a record: {lost}  {'OK' if lost == 0 else 'FAIL'}")
    print(f"  non-2xx answers and socket errors: {errors}")
    print(f"  creating one file in the data directory: {creation:.0f} us of CPU")
    results["settings"] = {k: v for k, v in vars(args).items() if k not in ("json",)}
    results["lost"] = lost
    results["file_creation_us"] = creation
    write_json(args.json, results)
    if lost:
        return 1
    return 1 if args.strict and failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as exc:
        print(f"http_intake: {exc}", file=sys.stderr)
        sys.exit(1)
