"""The official ``twilio`` client, pointed at ``INTAKE_TWILIO_API_URL``.

The library always builds ``https://api.twilio.com/...`` URLs; the way Twilio documents
for sending them elsewhere is a custom HTTP client, so this one rewrites the origin and
nothing else: the same requests, signed with the same credentials, reach a local
stand-in in tests or a forward proxy in locked-down networks. The library's own request
logging is kept at warning level by the gateway's logging set-up.
"""

from __future__ import annotations

from typing import Any

from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from gateway.settings import Settings

TWILIO_API = "https://api.twilio.com"
TIMEOUT_SECONDS = 15.0


class ApiUrlHttpClient(TwilioHttpClient):  # type: ignore[misc]
    """TwilioHttpClient that sends what was meant for api.twilio.com to ``api_url``."""

    def __init__(self, api_url: str) -> None:
        super().__init__(timeout=TIMEOUT_SECONDS)
        self.api_url = api_url.rstrip("/")

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        if url.startswith(TWILIO_API + "/"):
            url = self.api_url + url[len(TWILIO_API) :]
        return super().request(method, url, *args, **kwargs)


def configured(settings: Settings) -> bool:
    return bool(settings.twilio_account_sid and settings.twilio_auth_token)


def twilio_client(settings: Settings) -> Client:
    """A client for the configured account; check :func:`configured` first."""
    token = settings.twilio_auth_token.get_secret_value() if settings.twilio_auth_token else None
    return Client(
        settings.twilio_account_sid,
        token,
        http_client=ApiUrlHttpClient(settings.twilio_api_url),
        # Not os.environ (an empty mapping would fall back to it): TWILIO_EDGE or
        # TWILIO_REGION there would send requests past INTAKE_TWILIO_API_URL.
        environment={"TWILIO_EDGE": "", "TWILIO_REGION": ""},
    )
