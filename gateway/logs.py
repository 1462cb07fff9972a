"""Structured logs that carry ids, never personal data.

Log calls pass record ids, sizes and error class names only. As a second line of defence a
processor masks anything in an event that looks like an email address or a phone number,
so a careless field cannot leak a customer's contact details into the logs.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any, TextIO

import structlog

_EMAIL = re.compile(r"[\w.+'-]+@[\w-]+(?:\.[\w-]+)+")
_PHONE = re.compile(r"(?<![\w-])\+?\d[\d ()-]{8,}\d(?![\w-])")
MASK = "[redacted]"


def _mask(value: Any) -> Any:
    if isinstance(value, str):
        return _PHONE.sub(MASK, _EMAIL.sub(MASK, value))
    if isinstance(value, list | tuple):
        return type(value)(_mask(v) for v in value)
    if isinstance(value, dict):
        return {k: _mask(v) for k, v in value.items()}
    return value


def redact_personal_data(_: Any, __: str, event: MutableMapping[str, Any]) -> dict[str, Any]:
    return {key: _mask(value) for key, value in event.items()}


class MaskingFilter(logging.Filter):
    """The same masking for libraries that log through the standard library."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = _mask(record.getMessage())
        record.args = None
        return True


def configure_logging(level: str = "info", json: bool = True, file: Path | None = None) -> None:
    """Configure structlog and the standard library's logging to write one line per event.

    With ``file`` (``INTAKE_LOG_FILE``) lines are appended there instead of standard error.
    """
    numeric = getattr(logging, level.upper(), logging.INFO)
    stream: TextIO = open(file, "a", buffering=1, encoding="utf-8") if file else sys.stderr  # noqa: SIM115
    logging.basicConfig(
        level=numeric, stream=stream, format="%(levelname)s %(name)s %(message)s", force=True
    )
    for handler in logging.getLogger().handlers:
        handler.addFilter(MaskingFilter())
    for noisy in ("mail.log", "aiosmtpd", "rq.worker", "mailparser", "twilio", "imapclient"):
        logging.getLogger(noisy).setLevel(max(numeric, logging.WARNING))
    renderer: Any = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redact_personal_data,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
