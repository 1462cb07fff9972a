"""A bare Starlette endpoint: the baseline for the JSON API's benchmark.

It does the least any intake endpoint must: read the body, validate it with the API's own
request model, and push it to Redis with one LPUSH. No key check, no idempotency, no blob
store, no ledger: the gateway's ``POST /v1/intake`` is measured against this. It runs
under uvicorn with the gateway's settings (no access log, the collector frozen after
start-up), so the two differ only in the work done per request.

    python -m harness.http_baseline --port N --redis unix:///path/redis.sock
"""

from __future__ import annotations

import argparse
import gc

import redis.asyncio as aioredis
import uvicorn
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from channels.api.models import IntakeRequest

LIST_KEY = "bench:baseline"


def build(redis_url: str) -> Starlette:
    client = aioredis.Redis.from_url(redis_url)

    async def intake(request: Request) -> JSONResponse:
        body = await request.body()
        try:
            IntakeRequest.model_validate_json(body)
        except ValidationError as exc:
            return JSONResponse({"errors": len(exc.errors())}, status_code=422)
        length = await client.lpush(LIST_KEY, body)
        return JSONResponse({"queued": length}, status_code=201)

    return Starlette(routes=[Route("/v1/intake", intake, methods=["POST"])])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis", required=True, help="redis:// or unix:// URL")
    args = parser.parse_args()
    config = uvicorn.Config(
        build(args.redis), host=args.host, port=args.port, log_config=None, access_log=False
    )
    gc.collect()
    gc.freeze()
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
