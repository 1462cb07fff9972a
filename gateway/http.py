"""The HTTP app: health, metrics and OpenAPI here; channel routes are added by adapters."""

from __future__ import annotations

from typing import Any

import redis
from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from channels.api.routes import api_router
from channels.imap.status import health as mailbox_health
from channels.sms.webhook import twilio_router
from channels.web.routes import web_router
from gateway import __version__
from gateway.batching import AcceptBatcher
from gateway.intake import IntakeContext
from gateway.ledger import DEAD, PENDING
from gateway.metrics import RedisCollector
from gateway.settings import Settings


def create_app(settings: Settings, connection: redis.Redis) -> FastAPI:
    app = FastAPI(
        title="intake-gateway",
        version=__version__,
        description="Takes in complaints from every channel and feeds the back office.",
    )
    registry = CollectorRegistry()
    registry.register(RedisCollector(connection, settings))
    queue_key = f"rq:queue:{settings.queue_name}"

    @app.get("/healthz", tags=["operations"])
    def healthz() -> JSONResponse:
        """Liveness and readiness: 200 when Redis answers, 503 when it does not."""
        body: dict[str, Any] = {"version": __version__}
        try:
            with connection.pipeline(transaction=False) as pipe:
                pipe.ping()
                pipe.llen(queue_key)
                pipe.zcard(PENDING)
                pipe.hlen(DEAD)
                _, depth, unfinished, dead = pipe.execute()
        except redis.RedisError as exc:
            body.update(status="unavailable", redis="down", error=type(exc).__name__)
            return JSONResponse(body, status_code=503)
        body.update(
            status="ok",
            redis="up",
            queue_depth=depth,
            unfinished_records=unfinished,
            dead_records=dead,
        )
        if settings.imap_mailboxes:
            mailboxes = mailbox_health(connection, settings.imap_failing_after)
            body.update(mailboxes)
            if mailboxes["failing_mailboxes"]:
                body["status"] = "degraded"  # still 200: the other channels take messages in
        return JSONResponse(body)

    @app.get("/metrics", tags=["operations"])
    def metrics() -> Response:
        """Prometheus metrics."""
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    intake_ctx = IntakeContext.from_settings(settings, connection)
    # One batcher for the channels served here, so that what arrives at the same moment
    # by any of them is stored together.
    batcher = AcceptBatcher(intake_ctx)
    app.include_router(twilio_router(intake_ctx, batcher))
    app.include_router(api_router(intake_ctx, batcher))
    app.include_router(web_router(intake_ctx))
    return app
