"""A local stand-in for Twilio, and the fixtures of the SMS and WhatsApp tests.

The stand-in is a real HTTP server that answers as Twilio's REST API documents:
``POST /2010-04-01/Accounts/{AccountSid}/Messages.json`` with HTTP basic auth, a 201 and
the Message resource as JSON (with a new ``SM...`` SID), or Twilio's error JSON
(``{"code", "message", "more_info", "status"}``): 401/20003 for bad credentials,
400/21610 for a recipient who opted out, 5xx when told to fail. It also serves media as
Twilio does: the ``MediaUrl`` needs basic auth and answers with a redirect to a media
store on another origin. It records everything it receives. It also plays Twilio's
webhook side: forms are signed as Twilio signs them.

Credentials here are obviously not real ones.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest
import redis
import uvicorn
from pydantic import SecretStr
from twilio.request_validator import RequestValidator

from gateway.http import create_app
from gateway.settings import Settings
from tests.conftest import free_port
from workers.runner import run_worker

ACCOUNT_SID = "ACtest" + "NOTREAL" + "x" * 21  # 34 characters, as a real SID, but not hex
AUTH_TOKEN = "test-auth-token-not-a-real-one"
OUR_NUMBER = "+447700900000"  # Ofcom's range for drama: never a real subscriber
CUSTOMER = "+447700900123"
PUBLIC_URL = "https://intake.example.org"
DATA = Path(__file__).parent / "data" / "twilio"

GSM7 = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_ESCAPED = set("^{}\\[~]|€\f")


def segments(body: str) -> int:
    """Segments as a carrier counts them (Twilio's ``num_segments``), written independently
    of the gateway's own count so that each checks the other."""
    if all(ch in GSM7 or ch in GSM7_ESCAPED for ch in body):
        size = sum(2 if ch in GSM7_ESCAPED else 1 for ch in body)
        single, part = 160, 153
    else:
        size = len(body.encode("utf-16-le")) // 2
        single, part = 70, 67
    return 1 if size <= single else -(-size // part)


def sample(name: str, **changes: str) -> dict[str, str]:
    """A webhook form from tests/data/twilio, with some fields changed."""
    form: dict[str, str] = json.loads((DATA / name).read_text(encoding="utf-8"))
    form["AccountSid"] = ACCOUNT_SID
    form.update(changes)
    return form


def new_sid(prefix: str) -> str:
    return prefix + uuid.uuid4().hex


def sign(url: str, form: dict[str, str], token: str = AUTH_TOKEN) -> str:
    return str(RequestValidator(token).compute_signature(url, form))


def _error(code: int, message: str, status: int) -> dict[str, Any]:
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


@dataclass
class Media:
    data: bytes
    content_type: str
    declare_length: bool = True


@dataclass
class StandIn:
    """What the stand-in received, and how it is told to behave."""

    host: str = "127.0.0.1"
    port: int = 0
    messages: list[dict[str, str]] = field(default_factory=list)
    attempts: list[dict[str, str]] = field(default_factory=list)
    media: dict[str, Media] = field(default_factory=dict)
    media_requests: list[tuple[str, bool]] = field(default_factory=list)  # (path, had auth)
    opted_out: set[str] = field(default_factory=set)
    fail_next: list[int] = field(default_factory=list)
    media_fail_next: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def add_media(self, data: bytes, content_type: str, declare_length: bool = True) -> str:
        """Make a media item available; returns its MediaUrl as Twilio would give it."""
        media_sid = new_sid("ME")
        self.media[media_sid] = Media(data, content_type, declare_length)
        message_sid = new_sid("MM")
        return (
            f"{self.url}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{message_sid}/Media/{media_sid}"
        )

    def wait_for(self, count: int, timeout: float = 10.0) -> list[dict[str, str]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.messages) >= count:
                    return list(self.messages)
            time.sleep(0.02)
        with self.lock:
            return list(self.messages)


_MESSAGES = re.compile(r"^/2010-04-01/Accounts/([^/]+)/Messages\.json$")
_MEDIA = re.compile(r"^/2010-04-01/Accounts/([^/]+)/Messages/[^/]+/Media/([^/]+)$")
_STORE = re.compile(r"^/media-store/([^/]+)$")


class _Handler(BaseHTTPRequestHandler):
    server_version = "TwilioStandIn/1.0"
    state: StandIn  # set on the subclass made per server

    def log_message(self, format: str, *args: Any) -> None:  # the suite's logs stay clean
        pass

    def _authorised(self, account: str) -> bool:
        expected = base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
        return account == ACCOUNT_SID and self.headers.get("Authorization") == f"Basic {expected}"

    def _json(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        form = dict(parse_qsl(self.rfile.read(length).decode(), keep_blank_values=True))
        match = _MESSAGES.match(self.path)
        if not match:
            self._json(404, _error(20404, "The requested resource was not found", 404))
            return
        state = self.state
        with state.lock:
            state.attempts.append(form)
            failure = state.fail_next.pop(0) if state.fail_next else None
        if not self._authorised(match.group(1)):
            self._json(401, _error(20003, "Authenticate", 401))
            return
        if failure is not None:
            self._json(failure, _error(20500, "Internal Server Error", failure))
            return
        to, sender, body = form.get("To"), form.get("From"), form.get("Body")
        if not to:
            self._json(400, _error(21604, "A 'To' phone number is required.", 400))
            return
        if not sender and not form.get("MessagingServiceSid"):
            self._json(400, _error(21603, "A 'From' phone number is required.", 400))
            return
        if not body and not form.get("MediaUrl"):
            self._json(400, _error(21602, "Message body is required.", 400))
            return
        if len(body or "") > 1600:
            self._json(
                400,
                _error(
                    21617, "The concatenated message body exceeds the 1600 character limit.", 400
                ),
            )
            return
        if to.removeprefix("whatsapp:") in state.opted_out:
            self._json(400, _error(21610, "Attempt to send to unsubscribed recipient", 400))
            return
        sid = new_sid("SM")
        now = formatdate(usegmt=True)
        resource = {
            "account_sid": ACCOUNT_SID,
            "api_version": "2010-04-01",
            "body": body,
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": sender,
            "messaging_service_sid": form.get("MessagingServiceSid"),
            "num_media": "0",
            "num_segments": str(segments(body or "")),
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": "queued",
            "subresource_uris": {
                "media": f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{sid}/Media.json"
            },
            "to": to,
            "uri": f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{sid}.json",
        }
        with state.lock:
            state.messages.append({**form, "Sid": sid, "NumSegments": resource["num_segments"]})
        self._json(201, resource)

    def do_GET(self) -> None:
        state = self.state
        had_auth = "Authorization" in self.headers
        with state.lock:
            state.media_requests.append((self.path, had_auth))
        match = _MEDIA.match(self.path)
        if match:
            with state.lock:
                failure = state.media_fail_next.pop(0) if state.media_fail_next else None
            if not self._authorised(match.group(1)):
                self._json(401, _error(20003, "Authenticate", 401))
            elif failure is not None:
                self._json(failure, _error(20500, "Internal Server Error", failure))
            elif match.group(2) not in state.media:
                self._json(404, _error(20404, "The requested resource was not found", 404))
            else:  # Twilio sends the client on to its media store, on another origin
                self.send_response(307)
                self.send_header(
                    "Location", f"http://localhost:{state.port}/media-store/{match.group(2)}"
                )
                self.send_header("Content-Length", "0")
                self.end_headers()
            return
        match = _STORE.match(self.path)
        media = state.media.get(match.group(1)) if match else None
        if media is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", media.content_type)
        if media.declare_length:
            self.send_header("Content-Length", str(len(media.data)))
        self.end_headers()
        self.wfile.write(media.data)


def start_standin() -> tuple[StandIn, ThreadingHTTPServer]:
    state = StandIn()
    handler = type("Handler", (_Handler,), {"state": state})
    server = ThreadingHTTPServer((state.host, 0), handler)
    server.daemon_threads = True
    state.port = server.server_address[1]
    threading.Thread(
        target=server.serve_forever, args=(0.05,), name="twilio-standin", daemon=True
    ).start()
    return state, server


class LiveApp:
    """The real HTTP app served by uvicorn on a free port, in a thread."""

    def __init__(self, settings: Settings, connection: redis.Redis) -> None:
        self.port = free_port()
        config = uvicorn.Config(
            create_app(settings, connection),
            host="127.0.0.1",
            port=self.port,
            log_config=None,
            access_log=False,
            lifespan="off",
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="uvicorn", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> LiveApp:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        assert self.server.started, "uvicorn did not start"
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def twilio() -> Iterator[StandIn]:
    state, server = start_standin()
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def sms_settings(settings: Settings, twilio: StandIn) -> Settings:
    """The suite's settings with Twilio configured against the stand-in."""
    return settings.model_copy(
        update={
            "public_url": PUBLIC_URL,
            "twilio_account_sid": ACCOUNT_SID,
            "twilio_auth_token": SecretStr(AUTH_TOKEN),
            "twilio_api_url": twilio.url,
        }
    )


@pytest.fixture
def sms_drain(sms_settings: Settings, redis_url: str) -> Callable[[], None]:
    def run() -> None:
        run_worker(sms_settings, redis_url, burst=True)

    return run
