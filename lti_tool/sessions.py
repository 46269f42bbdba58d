"""Flask's signed-cookie session, opened only for requests that carry one.

Flask builds the session's signing serializer on every request. Only the demo platform keeps
anything in the session, so requests without its cookie (every LTI login and launch) get an
empty session without that work; a request with the cookie is read exactly as Flask reads it.
"""

from __future__ import annotations

from flask import Flask, Request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface


class LazyCookieSessionInterface(SecureCookieSessionInterface):
    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if app.secret_key and not request.cookies.get(self.get_cookie_name(app)):
            return self.session_class()
        return super().open_session(app, request)
