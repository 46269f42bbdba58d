"""A tool that does nothing, for measuring the harness: ``gunicorn 'noop_tool:create_app()'``.

It answers the same requests as a real tool with as little work as possible, so that its
launches per second show what the harness (client and platform) and one gunicorn sync worker can
carry at most. ``/login`` redirects to the platform's authorization endpoint with a fresh state
and nonce; ``/launch`` checks that an id_token and the state came back and greets the user named
in the token's payload (decoded, not verified). Settings come from the environment:
``NOOP_AUTH_URL``, ``NOOP_CLIENT_ID`` and ``NOOP_LAUNCH_URL``.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from html import escape
from urllib.parse import parse_qs, urlencode


def create_app():
    auth_url = os.environ["NOOP_AUTH_URL"]
    client_id = os.environ["NOOP_CLIENT_ID"]
    launch_url = os.environ["NOOP_LAUNCH_URL"]

    def app(environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path == "/login":
            args = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
            query = urlencode(
                {
                    "scope": "openid",
                    "response_type": "id_token",
                    "response_mode": "form_post",
                    "prompt": "none",
                    "client_id": client_id,
                    "redirect_uri": launch_url,
                    "login_hint": args.get("login_hint", ""),
                    "state": secrets.token_urlsafe(16),
                    "nonce": secrets.token_urlsafe(16),
                }
            )
            start_response("302 Found", [("Location", f"{auth_url}?{query}"), ("Content-Length", "0")])
            return [b""]
        if path == "/launch" and environ.get("REQUEST_METHOD") == "POST":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            form = {k: v[0] for k, v in parse_qs(environ["wsgi.input"].read(length).decode()).items()}
            token, state = form.get("id_token", ""), form.get("state", "")
            if token.count(".") != 2 or not state:
                start_response("400 Bad Request", [("Content-Length", "0")])
                return [b""]
            payload = token.split(".")[1]
            claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
            body = f"<!doctype html><p>Hello {escape(str(claims.get('name', '')))}</p>".encode()
            start_response("200 OK", [("Content-Type", "text/html"), ("Content-Length", str(len(body)))])
            return [body]
        start_response("404 Not Found", [("Content-Length", "0")])
        return [b""]

    return app
