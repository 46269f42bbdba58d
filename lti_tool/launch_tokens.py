"""Signed launch references that follow-up requests carry instead of relying on cookies.

Inside an iframe the browser may refuse the tool's cookies, so pages put a signed, expiring
reference to their launch in links and forms; the database row behind it holds the rest.

A reference reads ``l1.<launch id>.<issued at, hex seconds>.<MAC>``: HMAC-SHA256 (truncated to
128 bits) under a key derived from the secret key, as the login states are. Every page of a
launch carries one, so it is built with the standard library alone. References in the earlier
itsdangerous format are still read until they expire.
"""

from __future__ import annotations

import base64
import hmac
import time

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from .errors import LaunchError

SALT = "npqsl-lti.launch"
PREFIX = "l1."
_MAC_BYTES = 16
# A reference from a few seconds ahead (another server's clock) is still taken.
_CLOCK_SKEW_SECONDS = 5


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class LaunchTokens:
    def __init__(self, secret_key: str, max_age: int):
        self._key = hmac.digest(secret_key.encode(), SALT.encode(), "sha256")
        self._legacy = URLSafeTimedSerializer(secret_key, salt=SALT)
        self._max_age = max_age
        self._last: tuple[str, int, str] = ("", 0, "")

    def _mac(self, signed: str) -> str:
        return _b64(hmac.digest(self._key, signed.encode("utf-8", "surrogatepass"), "sha256")[:_MAC_BYTES])

    def issue(self, launch_id: str) -> str:
        """The reference for a launch; a page asking again within the second gets the same one.

        A reference is its launch id and a timestamp in whole seconds, signed, so reusing the
        last one issued changes nothing but the cost: pages ask for it in several places.
        """
        now = int(time.time())
        last_id, issued_at, token = self._last
        if last_id == launch_id and issued_at == now:
            return token
        signed = f"{PREFIX}{launch_id}.{now:x}"
        token = f"{signed}.{self._mac(signed)}"
        self._last = (launch_id, now, token)
        return token

    def read(self, token: str | None) -> str:
        """The launch id a reference names, if this tool signed it and it has not expired."""
        if not token:
            raise LaunchError("launch_expired", "no launch reference on the request")
        if not token.startswith(PREFIX):
            return self._read_legacy(token)
        signed, _, mac = token.rpartition(".")
        if not signed or not hmac.compare_digest(mac.encode("utf-8", "surrogatepass"), self._mac(signed).encode()):
            raise LaunchError("launch_expired", "launch reference signature invalid")
        launch_id, _, issued_hex = signed[len(PREFIX) :].rpartition(".")
        issued_at = int(issued_hex, 16)  # signed by us, so a hex number
        age = time.time() - issued_at
        if age > self._max_age or age < -_CLOCK_SKEW_SECONDS:
            raise LaunchError("launch_expired", "launch reference expired")
        return launch_id

    def _read_legacy(self, token: str) -> str:
        try:
            return self._legacy.loads(token, max_age=self._max_age)
        except SignatureExpired:
            raise LaunchError("launch_expired", "launch reference expired") from None
        except BadSignature:
            raise LaunchError("launch_expired", "launch reference signature invalid") from None
