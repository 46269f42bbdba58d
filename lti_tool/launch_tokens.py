"""Signed launch references that follow-up requests carry instead of relying on cookies.

Inside an iframe the browser may refuse the tool's cookies, so pages put a signed, expiring
reference to their launch in links and forms; the database row behind it holds the rest.
"""

from __future__ import annotations

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from .errors import LaunchError

SALT = "npqsl-lti.launch"


class LaunchTokens:
    def __init__(self, secret_key: str, max_age: int):
        self._serializer = URLSafeTimedSerializer(secret_key, salt=SALT)
        self._max_age = max_age

    def issue(self, launch_id: str) -> str:
        return self._serializer.dumps(launch_id)

    def read(self, token: str | None) -> str:
        if not token:
            raise LaunchError("launch_expired", "no launch reference on the request")
        try:
            return self._serializer.loads(token, max_age=self._max_age)
        except SignatureExpired:
            raise LaunchError("launch_expired", "launch reference expired") from None
        except BadSignature:
            raise LaunchError("launch_expired", "launch reference signature invalid") from None
