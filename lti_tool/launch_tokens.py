"""Signed launch references that follow-up requests carry instead of relying on cookies.

Inside an iframe the browser may refuse the tool's cookies, so pages put a signed, expiring
reference to their launch in links and forms; the database row behind it holds the rest.
"""

from __future__ import annotations

import time

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from .errors import LaunchError

SALT = "npqsl-lti.launch"


class LaunchTokens:
    def __init__(self, secret_key: str, max_age: int):
        self._serializer = URLSafeTimedSerializer(secret_key, salt=SALT)
        self._max_age = max_age
        self._last: tuple[str, int, str] = ("", 0, "")

    def issue(self, launch_id: str) -> str:
        """The reference for a launch; a page asking again within the second gets the same one.

        A reference is its launch id and a timestamp in whole seconds, signed, so reusing the
        last one issued changes nothing but the cost: pages ask for it in several places.
        """
        now = int(time.time())
        last_id, issued_at, token = self._last
        if last_id == launch_id and issued_at == now:
            return token
        token = self._serializer.dumps(launch_id)
        self._last = (launch_id, now, token)
        return token

    def read(self, token: str | None) -> str:
        if not token:
            raise LaunchError("launch_expired", "no launch reference on the request")
        try:
            return self._serializer.loads(token, max_age=self._max_age)
        except SignatureExpired:
            raise LaunchError("launch_expired", "launch reference expired") from None
        except BadSignature:
            raise LaunchError("launch_expired", "launch reference signature invalid") from None
