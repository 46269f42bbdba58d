"""Cookie attributes for a tool that lives inside another site's iframe.

Over HTTPS every cookie is ``SameSite=None; Secure; Partitioned``: sent in the platform's iframe,
and kept by browsers that block unpartitioned third-party cookies (CHIPS). Plain-http loopback
development gets ``SameSite=Lax`` without ``Secure``, which browsers accept on http.
"""

from __future__ import annotations

from flask import Response, current_app, request


def is_secure_context() -> bool:
    return request.is_secure or current_app.config["NPQSL"].public_url.startswith("https://")


def set_cookie(response: Response, name: str, value: str, max_age: int | None) -> None:
    if is_secure_context():
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
