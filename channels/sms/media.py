"""Fetching MMS and WhatsApp media (photos of damp, letters, voice notes) into the blob store.

Twilio hands us links, not files: each ``MediaUrlN`` is fetched with the account's
credentials, which are sent only to the Twilio API's own origin (a link anywhere else
is refused, not fetched); Twilio then redirects to its media store, and the credentials
are not carried across that redirect. Only allowed content types are fetched, and no
more than ``INTAKE_TWILIO_MEDIA_MAX_BYTES``; a temporary failure is tried again a few
times. Whatever is not kept is listed with its reason and its link, so that the message
is never lost with it and a person can fetch the file from Twilio by hand.
"""

from __future__ import annotations

import mimetypes
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from channels.sms.payload import MediaItem
from gateway.blobstore import BlobStore
from gateway.schema import Attachment
from gateway.settings import Settings

ATTEMPTS = 3
RETRY_PAUSE_SECONDS = 0.5
TIMEOUT = httpx.Timeout(30.0, connect=5.0)
MAX_REDIRECTS = 3


class MediaRefusedError(Exception):
    """One media item was not kept; the message says why, for a person to read."""


@dataclass(frozen=True)
class NotKept:
    index: int
    url: str
    content_type: str | None
    reason: str


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port or {"https": 443, "http": 80}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), port


def _base_type(content_type: str | None) -> str:
    return (content_type or "").split(";")[0].strip().lower()


class MediaFetcher:
    def __init__(self, settings: Settings, blobs: BlobStore) -> None:
        self.blobs = blobs
        self.api_origin = _origin(settings.twilio_api_url)
        token = settings.twilio_auth_token
        self.auth = (
            (settings.twilio_account_sid, token.get_secret_value())
            if settings.twilio_account_sid and token
            else None
        )
        self.max_bytes = settings.twilio_media_max_bytes
        self.allowed = frozenset(settings.twilio_media_types)

    def fetch_all(self, items: list[MediaItem]) -> tuple[list[Attachment], list[NotKept]]:
        kept: list[Attachment] = []
        not_kept: list[NotKept] = []
        if not items:
            return kept, not_kept
        with httpx.Client(
            timeout=TIMEOUT, follow_redirects=True, max_redirects=MAX_REDIRECTS
        ) as client:
            for item in items:
                try:
                    kept.append(self._fetch(client, item))
                except MediaRefusedError as exc:
                    not_kept.append(NotKept(item.index, item.url, item.content_type, str(exc)))
        return kept, not_kept

    def _fetch(self, client: httpx.Client, item: MediaItem) -> Attachment:
        declared = _base_type(item.content_type)
        if declared and declared not in self.allowed:
            raise MediaRefusedError(f"files of type {declared} are not accepted")
        if _origin(item.url) != self.api_origin:
            raise MediaRefusedError("the link is not on Twilio's API, so it was not followed")
        if self.auth is None:
            raise MediaRefusedError("no Twilio credentials are configured to fetch it with")
        last = ""
        for attempt in range(1, ATTEMPTS + 1):
            try:
                data, content_type = self._download(client, item.url)
            except _TemporaryFetchError as exc:
                last = str(exc)
                if attempt < ATTEMPTS:
                    time.sleep(RETRY_PAUSE_SECONDS * attempt)
                continue
            return Attachment(
                filename=f"media-{item.index + 1}{_extension(content_type)}",
                content_type=content_type,
                size=len(data),
                sha256=self.blobs.put(data),
            )
        raise MediaRefusedError(f"it could not be fetched ({last}) after {ATTEMPTS} attempts")

    def _download(self, client: httpx.Client, url: str) -> tuple[bytes, str]:
        try:
            with client.stream("GET", url, auth=self.auth) as response:
                if response.status_code == 429 or response.status_code >= 500:
                    raise _TemporaryFetchError(f"Twilio answered {response.status_code}")
                if response.status_code != 200:
                    raise MediaRefusedError(f"Twilio answered {response.status_code}")
                content_type = _base_type(response.headers.get("content-type"))
                if content_type not in self.allowed:
                    raise MediaRefusedError(
                        f"files of type {content_type or 'unknown'} are not accepted"
                    )
                declared_size = response.headers.get("content-length", "")
                if declared_size.isdigit() and int(declared_size) > self.max_bytes:
                    raise MediaRefusedError(self._too_large(int(declared_size)))
                chunks: list[bytes] = []
                size = 0
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise MediaRefusedError(self._too_large(None))
                    chunks.append(chunk)
                return b"".join(chunks), content_type
        except httpx.TooManyRedirects as exc:
            raise MediaRefusedError("it redirected too many times") from exc
        except httpx.HTTPError as exc:
            raise _TemporaryFetchError(type(exc).__name__) from exc

    def _too_large(self, size: int | None) -> str:
        found = f"{size} bytes" if size is not None else "larger"
        return f"it is too large ({found}; the limit is {self.max_bytes} bytes)"


class _TemporaryFetchError(Exception):
    """A failure worth another attempt: a 5xx, a 429, a network error."""


def _extension(content_type: str) -> str:
    return {"image/jpeg": ".jpg", "audio/mpeg": ".mp3"}.get(
        content_type, mimetypes.guess_extension(content_type) or ""
    )
