"""The Twilio endpoints: ``POST /twilio/messages`` and ``POST /twilio/status``.

Both answer only requests signed by Twilio for our public URL (403 otherwise, with
nothing recorded). A message is confirmed (200, empty TwiML: the reply goes out later
through the API) only once ``accept`` has stored and queued it; when Redis or the disk
is down the answer is 503, so that Twilio tries again or fails over, and nothing has been
confirmed. The work done here is small and bounded so that Twilio, which gives up after
a few seconds, is answered well within one.
"""

from __future__ import annotations

import redis
from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from channels.sms.inbound import take_in
from channels.sms.numbers import e164
from channels.sms.payload import Form, parse_form
from channels.sms.signature import SIGNATURE_HEADER, SignatureCheck
from channels.sms.status import FAILURES, DeliveryStatuses
from channels.sms.suppression import SuppressionList
from gateway.batching import AcceptBatcher
from gateway.errors import RejectedError, TemporaryError
from gateway.intake import IntakeContext
from gateway.logs import get_logger

log = get_logger("channels.sms.webhook")

MAX_BODY_BYTES = 64 * 1024
FORM_TYPE = "application/x-www-form-urlencoded"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
OPTED_OUT = "21610"


def _plain(status: int, message: str) -> Response:
    headers = {"Retry-After": "30"} if status == 503 else None
    return Response(message + "\n", status_code=status, media_type="text/plain", headers=headers)


async def _signed_form(request: Request, check: SignatureCheck) -> tuple[bytes, Form] | Response:
    """The body and its fields when the request is Twilio's; else the refusal to send."""
    path = request.url.path
    if not check.configured:
        log.error("twilio.not_configured", path=path)
        return _plain(503, "Twilio is not configured on this service")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        return _plain(413, "request too large")
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY_BYTES:
            return _plain(413, "request too large")
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != FORM_TYPE:
        log.info("twilio.refused", path=path, reason="content_type")
        return _plain(415, f"expected {FORM_TYPE}")
    form = parse_form(raw)
    signature = request.headers.get(SIGNATURE_HEADER)
    if not check.valid(path, request.url.query, form, signature):
        log.warning("twilio.refused", path=path, reason="signature" if signature else "unsigned")
        return _plain(403, "invalid signature")
    return raw, form


def twilio_router(ctx: IntakeContext, batcher: AcceptBatcher) -> APIRouter:
    settings, connection = ctx.settings, ctx.connection
    check = SignatureCheck(settings)
    router = APIRouter(prefix="/twilio", tags=["twilio"])

    @router.post("/messages", response_class=Response)
    async def messages(request: Request) -> Response:
        """Twilio's Messaging webhook for SMS and WhatsApp (signed)."""
        signed = await _signed_form(request, check)
        if isinstance(signed, Response):
            return signed
        raw, form = signed
        try:
            receipt = await take_in(raw, form, ctx, batcher)
        except RejectedError as exc:
            log.info("twilio.rejected", status=exc.http_status)
            return _plain(exc.http_status, str(exc))
        except TemporaryError as exc:
            log.warning("twilio.deferred", error=type(exc).__name__)
            return _plain(503, "temporarily unavailable, please retry")
        except Exception as exc:  # the last guard: Twilio must retry, never lose it
            log.error("twilio.internal_error", error=type(exc).__name__)
            return _plain(503, "temporarily unavailable, please retry")
        log.info(
            "twilio.accepted",
            record_id=receipt.id,
            message_sid=form.first("MessageSid"),
            repeat=receipt.duplicate,
            size=len(raw),
        )
        return Response(EMPTY_TWIML, media_type="text/xml")

    @router.post("/status", response_class=Response)
    async def status(request: Request) -> Response:
        """Twilio's status callbacks for the messages we send (signed)."""
        signed = await _signed_form(request, check)
        if isinstance(signed, Response):
            return signed
        _, form = signed
        message_sid = form.first("MessageSid") or form.first("SmsSid")
        message_status = (form.first("MessageStatus") or form.first("SmsStatus") or "").lower()
        if not message_sid or not message_status:
            return _plain(400, "MessageSid and MessageStatus are required")
        try:
            moved = await run_in_threadpool(_record_status, form, message_sid, message_status)
        except redis.RedisError as exc:
            log.warning("twilio.status_deferred", error=type(exc).__name__)
            return _plain(503, "temporarily unavailable, please retry")
        log.info("twilio.status", message_sid=message_sid, status=message_status, moved=moved)
        return Response(status_code=204)

    def _record_status(form: Form, message_sid: str, message_status: str) -> bool:
        error_code = form.first("ErrorCode")
        moved = DeliveryStatuses(connection).update(message_sid, message_status, error_code)
        number = e164(form.first("To"))
        if message_status in FAILURES and error_code == OPTED_OUT and number is not None:
            SuppressionList(connection).add(number, f"Twilio error {OPTED_OUT} on delivery")
        return moved

    return router
