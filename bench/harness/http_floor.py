"""The least an endpoint can do and still keep the gateway's promise: the floor of the
JSON API's benchmark.

A bare Starlette endpoint that validates the body with the API's request model, then
hands it to the gateway's own ``accept`` through the same batcher the API uses: the raw
body durable in the blob store, the ledger entry and the job in Redis's fsynced
append-only file, before the 201. No key check, no idempotency header, no FastAPI. Its
rate against the baseline is the most any implementation of ``POST /v1/intake`` can
reach on the machine it runs on. Settings come from the environment (``INTAKE_*``), as
the gateway's do.

    python -m harness.http_floor --port N
"""

from __future__ import annotations

import argparse
import gc

import uvicorn
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from ulid import ULID

from channels.api.models import IntakeRequest
from gateway.batching import AcceptBatcher
from gateway.connection import connect
from gateway.intake import Arrival, IntakeContext
from gateway.settings import load_settings


def build() -> Starlette:
    settings = load_settings()
    batcher = AcceptBatcher(IntakeContext.from_settings(settings, connect(settings.redis_url)))

    async def intake(request: Request) -> JSONResponse:
        body = await request.body()
        try:
            channel = IntakeRequest.model_validate_json(body).channel
        except ValidationError as exc:
            return JSONResponse({"errors": len(exc.errors())}, status_code=422)
        arrival = Arrival(channel, "http", "api", body, f"api:{ULID()}")
        receipt = await batcher.accept(arrival)
        return JSONResponse({"id": receipt.id, "reference": receipt.reference}, status_code=201)

    async def alive(request: Request) -> JSONResponse:
        return JSONResponse({})

    return Starlette(
        routes=[Route("/v1/intake", intake, methods=["POST"]), Route("/", alive)],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    config = uvicorn.Config(
        build(), host=args.host, port=args.port, log_config=None, access_log=False
    )
    gc.collect()
    gc.freeze()
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
