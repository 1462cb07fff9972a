"""Drain a queue in burst mode in this process and print how long the work itself took.

``python -m harness.drain pipeline`` runs the gateway's worker (``run_worker`` with
``burst=True``, configured from ``INTAKE_*`` as ``intake worker --burst`` is), with
``--steps a,b,c`` over only those steps of ``workers.pipeline.PIPELINE``;
``python -m harness.drain noop --queue NAME`` runs rq's ``SimpleWorker`` over a queue of
no-op jobs with the same serializer and work() options. Imports and interpreter start-up are not
timed. The last line printed is JSON: ``{"seconds": ..., "vmhwm_kb": ...}``.
"""

from __future__ import annotations

import argparse
import json
import os
import time

from harness.common import read_status_kb


def drain_pipeline(steps: str | None) -> float:
    from gateway.logs import configure_logging
    from gateway.settings import load_settings
    from workers import pipeline
    from workers.runner import run_worker, warm_up

    if steps:
        chosen = tuple(steps.split(","))
        unknown = set(chosen) - set(pipeline.PIPELINE)
        if unknown:
            raise SystemExit(f"no such step: {', '.join(sorted(unknown))}")
        pipeline.PIPELINE = tuple(name for name in pipeline.PIPELINE if name in chosen)

    settings = load_settings()
    if not settings.redis_url:
        raise SystemExit("INTAKE_REDIS_URL must be set")
    configure_logging(settings.log_level, settings.log_json, settings.log_file)
    # Start-up is not timed, as for the no-op worker: the worker's warm-up (loading the
    # rules, a second or so of compiling patterns, and the modules and templates the first
    # job would load) happens here, and run_worker finds it all loaded.
    warm_up(settings)
    started = time.perf_counter()
    run_worker(settings, settings.redis_url, burst=True)
    return time.perf_counter() - started


def drain_noop(queue_name: str) -> float:
    from rq import Queue, SimpleWorker
    from rq.serializers import JSONSerializer

    from gateway.connection import connect

    url = os.environ["INTAKE_REDIS_URL"]
    connection = connect(url)
    queue = Queue(queue_name, connection=connection, serializer=JSONSerializer)
    started = time.perf_counter()
    worker = SimpleWorker([queue], connection=connection, serializer=JSONSerializer)
    worker.work(burst=True, with_scheduler=False, logging_level="WARNING")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("mode", choices=["pipeline", "noop"])
    parser.add_argument("--queue", default="bench-noop")
    parser.add_argument("--steps", help="pipeline: comma-separated steps to run (default all)")
    args = parser.parse_args()
    seconds = drain_pipeline(args.steps) if args.mode == "pipeline" else drain_noop(args.queue)
    result = {"seconds": seconds, "vmhwm_kb": read_status_kb(os.getpid(), "VmHWM")}
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
