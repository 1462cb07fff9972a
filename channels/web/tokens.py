"""Signed values the form hands to the browser and gets back: CSRF tokens and file tokens.

The CSRF token is bound to a random id in a cookie (SameSite=Lax, HttpOnly) and to the
form's submission key, so a page on another site can neither read one nor replay one it
fetched itself. File tokens let a person who must correct a field keep files already
uploaded without choosing them again, and cannot be forged to point at other blobs.

The secret is ``INTAKE_WEB_SECRET``; unset, a random one is created once in Redis (SET NX)
so every HTTP process signs alike and a restart does not void forms being filled in.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time

import redis

from gateway.errors import QueueError
from gateway.ledger import PREFIX
from gateway.settings import Settings

COOKIE = "intake_form"
TOKEN_MAX_AGE_SECONDS = 24 * 3600
SECRET_KEY = f"{PREFIX}:web:secret"
_ID = re.compile(r"[A-Za-z0-9_-]{16,64}")
_SEPARATOR = "\x1f"
_HEX_SIGNATURE = re.compile(r"[0-9a-f]{64}")


def new_id() -> str:
    """A random id for a browser or a form rendering."""
    return secrets.token_urlsafe(18)


def well_formed(value: str | None) -> bool:
    return bool(value) and _ID.fullmatch(value or "") is not None


class Signer:
    """HMAC-SHA256 over the parts of a value, with the form's secret."""

    def __init__(self, settings: Settings, connection: redis.Redis) -> None:
        self.connection = connection
        configured = settings.web_secret
        self._key = configured.get_secret_value().encode() if configured else None
        self._lock = threading.Lock()

    def key(self) -> bytes:
        """The secret; the first call may read (or create) it in Redis."""
        if self._key is None:
            with self._lock:
                if self._key is None:
                    self._key = self._shared_secret()
        return self._key

    def _shared_secret(self) -> bytes:
        try:
            self.connection.set(SECRET_KEY, secrets.token_hex(32), nx=True)
            value = self.connection.get(SECRET_KEY)
        except redis.RedisError as exc:
            raise QueueError(f"could not read the form secret: {type(exc).__name__}") from exc
        if value is None:
            raise QueueError("the form secret vanished from Redis")
        return value.encode() if isinstance(value, str) else bytes(value)

    def sign(self, *parts: str) -> str:
        message = _SEPARATOR.join(parts).encode("utf-8", "surrogateescape")
        return hmac.new(self.key(), message, hashlib.sha256).hexdigest()

    def verify(self, signature: str, *parts: str) -> bool:
        if not _HEX_SIGNATURE.fullmatch(signature):
            return False
        return hmac.compare_digest(signature.encode(), self.sign(*parts).encode())


def csrf_token(signer: Signer, browser_id: str, submission_key: str) -> str:
    issued = str(int(time.time()))
    return f"{issued}.{signer.sign('csrf', browser_id, submission_key, issued)}"


def csrf_valid(signer: Signer, token: str, browser_id: str | None, submission_key: str) -> bool:
    """True when ``token`` was issued to this browser for this form, within the max age."""
    if not well_formed(browser_id) or not well_formed(submission_key):
        return False
    issued, _, signature = token.partition(".")
    if not (issued.isascii() and issued.isdigit()) or len(issued) > 12:
        return False
    age = time.time() - int(issued)
    if not -300 <= age <= TOKEN_MAX_AGE_SECONDS:
        return False
    return signer.verify(signature, "csrf", browser_id or "", submission_key, issued)
