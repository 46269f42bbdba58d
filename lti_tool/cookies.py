"""Cookie attributes for a tool that lives inside another site's iframe.

Over HTTPS every cookie is ``SameSite=None; Secure; Partitioned``: sent in the platform's iframe,
and kept by browsers that block unpartitioned third-party cookies (CHIPS). Plain-http loopback
development gets ``SameSite=Lax`` without ``Secure``, which browsers accept on http.

Every login and launch sets or deletes a cookie, so the usual case (a token-shaped name and value
and a lifetime) writes its ``Set-Cookie`` line directly, with the ``Expires`` date formatted once
per second; it reads exactly as Werkzeug's ``dump_cookie`` writes it (tests/test_cookies.py
compares the two). Any other value goes through Werkzeug, which quotes it.
"""

from __future__ import annotations

import re
import time
from functools import lru_cache

from flask import Response, current_app, request
from werkzeug.http import http_date

# Names and values that need no quoting in a cookie (base64url, hex, decimal).
_PLAIN = re.compile(r"[A-Za-z0-9_.\-]*")
_SECURE = "Secure; HttpOnly; Path=/; SameSite=None; Partitioned"
_LAX = "HttpOnly; Path=/; SameSite=Lax"


def is_secure_context() -> bool:
    return request.is_secure or current_app.config["NPQSL"].public_url.startswith("https://")


@lru_cache(maxsize=64)
def _http_date(epoch_seconds: int) -> str:
    return http_date(epoch_seconds)


def set_cookie(response: Response, name: str, value: str, max_age: int | None) -> None:
    secure = is_secure_context()
    if max_age is not None and _PLAIN.fullmatch(name) and _PLAIN.fullmatch(value):
        expires = _http_date(int(time.time()) + max_age)
        attributes = _SECURE if secure else _LAX
        response.headers.add("Set-Cookie", f"{name}={value}; Expires={expires}; Max-Age={max_age}; {attributes}")
    elif secure:
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            path="/",
            secure=True,
            httponly=True,
            samesite="None",
            partitioned=True,
        )
    else:
        response.set_cookie(name, value, max_age=max_age, path="/", httponly=True, samesite="Lax")


def delete_cookie(response: Response, name: str) -> None:
    set_cookie(response, name, "", max_age=0)
