"""``GET /`` and ``POST /``: the complaint form, and what happens when it is sent.

A post is checked in the order that costs least: the address's rate, the body's size, the
CSRF token, the honeypot, the answers, the files. Whatever goes wrong, the person gets
the form back with their answers in it and a message at the top that says what to do —
never a bare error page while their words can still be shown to them. Only a submission
``accept`` has stored is confirmed, with its reference and the dates it is held to; the
submission key makes a double click or a browser resubmission one record.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.types import Message, Receive

from channels.web import notices
from channels.web.form import CONTACT_METHODS, FIELDS, Answers, Problems, answers_from, check
from channels.web.form import payload as form_payload
from channels.web.pages import page, stylesheet
from channels.web.ratelimit import RateLimiter
from channels.web.tokens import (
    COOKIE,
    TOKEN_MAX_AGE_SECONDS,
    Signer,
    csrf_token,
    csrf_valid,
    new_id,
    well_formed,
)
from channels.web.uploads import ACCEPT_ATTRIBUTE, StoredFile, UploadChecker
from gateway.errors import RateLimitedError, RequestTooLargeError, TemporaryError
from gateway.intake import Arrival, IntakeContext, Receipt, accept
from gateway.logs import get_logger
from gateway.working_days import compute_deadlines, uk_date

log = get_logger("channels.web")

ORDER = (*FIELDS, "attachments")
FIELD_ALLOWANCE = 2 * 1024 * 1024  # the text fields and multipart framing, beside the files


class ComplaintForm:
    """The form's two endpoints, with what they share built once."""

    def __init__(self, ctx: IntakeContext) -> None:
        settings = ctx.settings
        self.ctx = ctx
        self.signer = Signer(settings, ctx.connection)
        self.limiter = RateLimiter(
            ctx.connection, settings.web_rate_limit, settings.web_rate_window_seconds
        )
        self.uploads = UploadChecker(
            ctx.blobs, settings.upload_max_files, settings.upload_max_bytes
        )
        self.max_body = settings.upload_max_files * settings.upload_max_bytes + FIELD_ALLOWANCE
        self.secure_cookie = (settings.public_url or "").startswith("https://")
        self.site = {
            "organisation": settings.organisation_name,
            "contact_phone": settings.contact_phone,
            "escalation_url": settings.escalation_url,
        }

    async def show(self, request: Request) -> Response:
        try:
            await run_in_threadpool(self.signer.key)  # a form that could not be sent is no use
        except TemporaryError as exc:
            log.warning("web.unavailable", error=type(exc).__name__)
            return self.problem_page(503, *notices.form_down())
        return self.form_page(200, request.cookies.get(COOKIE))

    async def submit(self, request: Request) -> Response:
        limited: RateLimitedError | None = None
        try:
            await run_in_threadpool(self.limiter.hit, request.client.host if request.client else "")
        except RateLimitedError as exc:
            limited = exc
        except TemporaryError:
            pass  # the outage is reported below, with the person's answers kept
        declared = request.headers.get("content-length", "")
        try:
            if declared.isascii() and declared.isdigit() and int(declared) > self.max_body:
                raise RequestTooLargeError("declared form body too large")
            form = await Request(request.scope, _limited(request.receive, self.max_body)).form(
                max_files=self.uploads.max_files + 10, max_fields=200
            )
        except RequestTooLargeError:
            too_large = notices.too_large(self.uploads.max_files, self.uploads.max_text)
            return self.refuse(413, "too_large", *too_large)
        except HTTPException:
            return self.refuse(400, "unreadable", *notices.unreadable())
        try:
            return await self.handle(request, form, limited)
        finally:
            await form.close()

    async def handle(
        self, request: Request, form: FormData, limited: RateLimitedError | None
    ) -> Response:
        answers = answers_from(form)
        browser_id = request.cookies.get(COOKIE)
        submission_key = _text(form.get("submission_key"))
        kept = self.kept_files(form)

        def again(
            status: int, reason: str, notice: list[str], problems: Problems | None = None
        ) -> Response:
            problems = problems or []
            log.info("web.refused", reason=reason, fields=[field for field, _ in problems])
            headers = {"Retry-After": str(limited.retry_after)} if limited else {}
            return self.form_page(
                status, browser_id, answers, problems, notice, kept, submission_key, headers
            )

        if limited is not None:
            phone = self.site["contact_phone"]
            return again(429, "rate_limited", notices.rate_limited(limited.retry_after, phone))
        try:
            valid_token = csrf_valid(
                self.signer, _text(form.get("csrf_token")), browser_id, submission_key
            )
            if not valid_token:
                return again(400, "csrf", notices.expired())
            if _text(form.get("website")):
                return again(400, "honeypot", notices.not_accepted())
            complaint, problems = check(answers)
            new_files = [
                item
                for item in form.getlist("attachments")
                if isinstance(item, UploadFile) and (item.filename or item.size)
            ]
            files, refused = await self.uploads.add(new_files, kept)
            kept = files
            problems = sorted(
                [*problems, *(("attachments", message) for message in refused)],
                key=lambda item: ORDER.index(item[0]),
            )
            if complaint is None or problems:
                return again(422, "invalid", [], problems)
            data = form_payload(complaint, [vars(f) for f in files], submission_key)
            raw = json.dumps(data, ensure_ascii=False, sort_keys=True).encode()
            arrival = Arrival(
                channel="web",
                transport="http",
                normaliser="web",
                raw=raw,
                idempotency_key=f"web:{submission_key}:{hashlib.sha256(raw).hexdigest()[:32]}",
            )
            receipt = await run_in_threadpool(accept, arrival, self.ctx)
            received_at = await run_in_threadpool(self.received_at, receipt)
        except TemporaryError as exc:
            log.warning("web.deferred", error=type(exc).__name__)
            return again(503, "unavailable", notices.unavailable(self.site["contact_phone"]))
        log.info(
            "web.accepted",
            record_id=receipt.id,
            repeat=receipt.duplicate,
            files=len(files),
            size=len(raw),
        )
        acknowledged_on = uk_date(received_at) if complaint.email else None
        return page(
            "confirmation.html.j2",
            200,
            self.ctx.settings.templates_dir,
            title="Complaint sent",
            has_errors=False,
            site=self.site,
            reference=receipt.reference,
            emailed=bool(complaint.email),
            deadlines=compute_deadlines(
                received_at, self.ctx.settings, acknowledged_on=acknowledged_on
            ),
        )

    def kept_files(self, form: FormData) -> list[StoredFile]:
        """The files of an earlier try that the person left ticked, if their tokens hold."""
        try:
            found = [
                stored
                for token in form.getlist("kept_file")
                if isinstance(token, str) and (stored := StoredFile.from_token(self.signer, token))
            ]
        except TemporaryError:
            return []
        return found[: self.uploads.max_files]

    def received_at(self, receipt: Receipt) -> datetime:
        """When the record was received: now, or for a repeat, when the first one was."""
        if receipt.duplicate:
            return self.ctx.ledger.load(receipt.id).received_at
        return datetime.now(UTC)

    def form_page(
        self,
        status: int,
        browser_id: str | None,
        answers: Answers | None = None,
        problems: Problems | None = None,
        notice: list[str] | None = None,
        kept: list[StoredFile] | None = None,
        submission_key: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        """The form, with a fresh CSRF token; the browser's cookie is set or renewed."""
        if not well_formed(browser_id):
            browser_id = new_id()
        if not well_formed(submission_key):
            submission_key = new_id()
        assert browser_id is not None and submission_key is not None
        try:
            token = csrf_token(self.signer, browser_id, submission_key)
            kept_files = [(f, f.token(self.signer)) for f in kept or []]
        except TemporaryError:
            # No secret to sign with (Redis unreachable since start-up): the answers are
            # still shown; sending them again is refused until the secret can be read.
            token, kept_files = "", []
        problems = problems or []
        errors: dict[str, list[str]] = {}
        for field, message in problems:
            errors.setdefault(field, []).append(message)
        response = page(
            "form.html.j2",
            status,
            self.ctx.settings.templates_dir,
            headers,
            title="Make a complaint",
            has_errors=bool(problems or notice),
            site=self.site,
            answers=answers or {},
            problems=problems,
            errors=errors,
            notice=notice or [],
            kept_files=kept_files,
            csrf_token=token,
            submission_key=submission_key,
            contact_methods=CONTACT_METHODS,
            max_files=self.uploads.max_files,
            max_size=self.uploads.max_text,
            accept=ACCEPT_ATTRIBUTE,
        )
        response.set_cookie(
            COOKIE,
            browser_id,
            max_age=TOKEN_MAX_AGE_SECONDS,
            path="/",
            httponly=True,
            samesite="lax",
            secure=self.secure_cookie,
        )
        return response

    def problem_page(self, status: int, title: str, paragraphs: list[str]) -> Response:
        return page(
            "problem.html.j2",
            status,
            self.ctx.settings.templates_dir,
            title=title,
            has_errors=False,
            site=self.site,
            paragraphs=paragraphs,
        )

    def refuse(self, status: int, reason: str, title: str, paragraphs: list[str]) -> Response:
        log.info("web.refused", reason=reason)
        return self.problem_page(status, title, paragraphs)


def web_router(ctx: IntakeContext) -> APIRouter:
    form = ComplaintForm(ctx)
    router = APIRouter(include_in_schema=False)
    router.add_api_route("/", form.show, methods=["GET"])
    router.add_api_route("/", form.submit, methods=["POST"])

    @router.get("/assets/form.css")
    def css() -> Response:
        return Response(
            stylesheet(),
            media_type="text/css",
            headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"},
        )

    return router


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _limited(receive: Receive, limit: int) -> Receive:
    """``receive`` that raises RequestTooLargeError once the body passes ``limit`` bytes."""
    seen = 0

    async def limited() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise RequestTooLargeError(f"form body over {limit} bytes")
        return message

    return limited
