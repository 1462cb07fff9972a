"""Bearer API keys, checked against the sha256 hashes in the settings.

The configuration holds only hashes, so it gives away no working key. The hash of the
presented key is compared with every configured hash in constant time, without stopping
at a match, so the time taken says nothing about which key nearly matched.
"""

from __future__ import annotations

import hashlib
import hmac

from gateway.settings import ApiKey

MAX_KEY_CHARS = 512


class ApiKeyring:
    """The configured keys; ``identify`` turns an Authorization header into one of them."""

    def __init__(self, keys: list[ApiKey]) -> None:
        self.keys = [(key, key.sha256.lower()) for key in keys]

    def identify(self, authorization: str | None) -> ApiKey | None:
        scheme, _, token = (authorization or "").strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token or len(token) > MAX_KEY_CHARS:
            return None
        digest = hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()
        found: ApiKey | None = None
        for key, expected in self.keys:
            if hmac.compare_digest(digest, expected):
                found = key
        return found
