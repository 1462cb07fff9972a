"""Is this request from Twilio? The ``X-Twilio-Signature`` check.

Twilio signs the full URL it was told to call together with the POST parameters, using
the account's auth token. Behind a TLS-terminating proxy the app sees
``http://10.0.0.5:8000/twilio/messages`` while Twilio signed
``https://intake.example.org/twilio/messages``, so the URL is rebuilt from
``INTAKE_PUBLIC_URL`` and the request's own path and query: never from the Host or
``X-Forwarded-*`` headers, which anyone can send. A request signed for any other URL,
including the app's internal one, is refused.
"""

from __future__ import annotations

from twilio.request_validator import RequestValidator

from channels.sms.payload import Form
from gateway.settings import Settings

SIGNATURE_HEADER = "X-Twilio-Signature"


class SignatureCheck:
    """Checks signatures for one deployment; unusable until both settings are given."""

    def __init__(self, settings: Settings) -> None:
        token = settings.twilio_auth_token
        self.public_url = settings.public_url
        self.validator = RequestValidator(token.get_secret_value()) if token else None

    @property
    def configured(self) -> bool:
        return self.validator is not None and self.public_url is not None

    def signed_url(self, path: str, query: str) -> str:
        """The URL Twilio called, as the public sees it."""
        return f"{self.public_url}{path}" + (f"?{query}" if query else "")

    def valid(self, path: str, query: str, form: Form, signature: str | None) -> bool:
        if self.validator is None or not signature:
            return False
        return bool(self.validator.validate(self.signed_url(path, query), form, signature))
