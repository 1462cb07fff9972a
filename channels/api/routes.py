"""``POST /v1/intake``: checks in the order that costs a caller least, then ``accept``.

The key is checked before the body is read, the content type and size before it is
parsed, the body before anything is stored; only then is the record accepted, and the
caller told its id and reference once ``accept`` has returned. Every refusal is a
``Problem`` body naming the field at fault; storage or Redis trouble is a 503 with
Retry-After, so the caller's retry (with the same Idempotency-Key) makes one record.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.types import Message, Receive
from ulid import ULID

from channels.api import idempotency
from channels.api.auth import ApiKeyring
from channels.api.models import (
    MODEL_ERROR_FIELDS,
    FieldProblem,
    IntakeReceipt,
    IntakeRequest,
    Problem,
)
from gateway.batching import AcceptBatcher
from gateway.errors import (
    IdempotencyConflictError,
    RejectedError,
    RequestTooLargeError,
    TemporaryError,
)
from gateway.intake import Arrival, IntakeContext
from gateway.logs import get_logger
from gateway.settings import ApiKey

log = get_logger("channels.api")

PATH = "/v1/intake"
RETRY_AFTER_SECONDS = 30
_bearer = HTTPBearer(auto_error=False, description="an API key from INTAKE_API_KEYS")
_PROBLEMS: dict[int | str, dict[str, Any]] = {
    status: {"model": Problem, "description": text}
    for status, text in {
        400: "The body is not JSON.",
        401: "No API key, or one that is not known.",
        403: "The API key may not submit this channel.",
        409: "The Idempotency-Key was used before with a different body.",
        413: "The body is too large.",
        415: "The body is not application/json.",
        422: "The body does not match the schema; `errors` names each field and why.",
        503: "Storage or Redis unavailable: nothing was recorded; retry later.",
    }.items()
}


def problem(
    status: int,
    error: str,
    message: str,
    errors: list[FieldProblem] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = Problem(error=error, message=message, errors=errors or [])
    log.info("api.refused", status=status, error=error)
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


def api_router(ctx: IntakeContext, batcher: AcceptBatcher) -> APIRouter:
    keyring = ApiKeyring(ctx.settings.api_keys)
    router = APIRouter(route_class=_guarded_route(keyring, ctx.settings.api_max_body_bytes))

    @router.post(
        PATH,
        status_code=201,
        response_model=IntakeReceipt,
        tags=["intake"],
        summary="Submit a complaint taken by phone, letter, in person, a partner or social media",
        responses={200: {"model": IntakeReceipt, "description": "A repeat."}, **_PROBLEMS},
    )
    async def submit(
        body: IntakeRequest,
        request: Request,
        response: Response,
        idempotency_key: Annotated[
            str | None,
            Header(
                alias="Idempotency-Key",
                min_length=1,
                max_length=255,
                pattern=r"^[\x21-\x7e]+$",
                description="the same key and body again give the same record, once",
            ),
        ] = None,
        _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)] = None,
    ) -> IntakeReceipt:
        """Record one complaint and answer with its id and the customer's reference."""
        key: ApiKey = request.state.api_key
        if body.channel not in key.channels:
            raise RejectedError(
                f"this API key may not submit channel {body.channel}",
                smtp_reply="554 5.7.1 Not allowed",
                http_status=403,
            )
        ttl = ctx.settings.idempotency_ttl_days * 86400
        if idempotency_key is None:
            accept_key = f"api:{ULID()}"
        else:
            accept_key = idempotency.scoped_key(key.name, idempotency_key)
            digest = idempotency.body_hash(body.model_dump(mode="json"))
            await run_in_threadpool(idempotency.claim, ctx.connection, accept_key, digest, ttl)
        raw: bytes = request.state.raw_body
        arrival = Arrival(
            channel=body.channel,
            transport="http",
            normaliser="api",
            raw=raw,
            idempotency_key=accept_key,
            meta={"extra": {"api_key": key.name, "idempotency_key": idempotency_key}},
            received_at=body.received_at,
        )
        receipt = await batcher.accept(arrival)
        log.info(
            "api.accepted",
            record_id=receipt.id,
            repeat=receipt.duplicate,
            channel=body.channel,
            api_key=key.name,
            size=len(raw),
        )
        if receipt.duplicate:
            response.status_code = 200
        return IntakeReceipt(id=receipt.id, reference=receipt.reference, repeat=receipt.duplicate)

    return router


Handler = Callable[[Request], Coroutine[Any, Any, Response]]


def _guarded_route(keyring: ApiKeyring, max_body: int) -> type[APIRoute]:
    """A route class that checks key, content type and size before FastAPI reads the body,
    and answers every refusal, FastAPI's own included, as a ``Problem``."""

    class GuardedRoute(APIRoute):
        def get_route_handler(self) -> Handler:
            handler = super().get_route_handler()

            async def guarded(request: Request) -> Response:
                key = keyring.identify(request.headers.get("authorization"))
                if key is None:
                    return problem(
                        401,
                        "unauthorised",
                        "Give a valid API key: Authorization: Bearer <key>.",
                        headers={"WWW-Authenticate": 'Bearer realm="intake"'},
                    )
                if not _is_json(request.headers.get("content-type")):
                    return problem(
                        415, "unsupported_media_type", "Send the body as application/json."
                    )
                try:
                    raw = await _read_body(request, max_body)
                except RequestTooLargeError:
                    return problem(413, "too_large", f"The body must be at most {max_body} bytes.")
                request.state.api_key = key
                request.state.raw_body = raw
                try:
                    return await handler(Request(request.scope, _replay(raw, request.receive)))
                except RequestValidationError as exc:
                    return _invalid(exc)
                except RejectedError as exc:
                    return problem(exc.http_status, "forbidden", _sentence(str(exc)))
                except IdempotencyConflictError as exc:
                    return problem(409, "idempotency_conflict", _sentence(str(exc)))
                except TemporaryError as exc:
                    log.warning("api.deferred", error=type(exc).__name__)
                    return problem(
                        503,
                        "unavailable",
                        "Nothing was recorded; please retry shortly.",
                        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
                    )
                except HTTPException as exc:  # FastAPI's own: a body that is not UTF-8 JSON
                    if exc.status_code == 400:
                        return problem(400, "bad_json", "The body is not valid JSON.")
                    return problem(exc.status_code, "bad_request", str(exc.detail))

            return guarded

    return GuardedRoute


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + "."


def _is_json(content_type: str | None) -> bool:
    mime = (content_type or "").split(";")[0].strip().lower()
    return mime == "application/json" or (
        mime.startswith("application/") and mime.endswith("+json")
    )


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise RequestTooLargeError("declared body too large")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestTooLargeError("body too large")
        chunks.append(chunk)
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that gives the body already read, then defers to the connection."""
    given = False

    async def replay() -> Message:
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _invalid(exc: RequestValidationError) -> JSONResponse:
    errors = list(exc.errors())
    if any(error.get("type") == "json_invalid" for error in errors):
        detail = str((errors[0].get("ctx") or {}).get("error", "")).strip()
        return problem(
            400, "bad_json", f"The body is not valid JSON ({detail}).".replace(" ()", "")
        )
    problems = [_field_problem(error) for error in errors]
    return problem(
        422,
        "invalid",
        "The request does not match the schema: "
        + "; ".join(f"{p.field}: {p.message}" for p in problems),
        errors=problems,
    )


def _field_problem(error: Any) -> FieldProblem:
    loc = [str(part) for part in error.get("loc", ())]
    if loc and loc[0] in ("body", "header", "query", "path"):
        source, loc = loc[0], loc[1:]
    else:
        source = "body"
    field = ".".join(loc) or MODEL_ERROR_FIELDS.get(str(error.get("type")), "")
    if source == "body" and not field:
        field = "(body)"
    message = str(error.get("msg", "invalid"))
    if error.get("type") == "missing" and field == "(body)":
        message = "the request has no body"
    return FieldProblem(field=field, message=message)
