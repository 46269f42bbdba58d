"""The tool's Set-Cookie lines read as Werkzeug writes them, over http and https."""

from __future__ import annotations

import pytest
from flask import Flask, Response
from werkzeug.http import dump_cookie

from lti_tool.cookies import delete_cookie, set_cookie


class _Settings:
    def __init__(self, public_url: str):
        self.public_url = public_url


@pytest.fixture(params=["http://127.0.0.1:5000", "https://tool.example.ac.uk"])
def app(request):
    app = Flask(__name__)
    app.config["NPQSL"] = _Settings(request.param)
    return app


def _werkzeug(app: Flask, name: str, value: str, max_age: int | None) -> str:
    if app.config["NPQSL"].public_url.startswith("https://"):
        attributes = {"secure": True, "samesite": "None", "partitioned": True}
    else:
        attributes = {"samesite": "Lax"}
    return dump_cookie(name, value, max_age=max_age, path="/", httponly=True, **attributes)


@pytest.mark.parametrize(
    ("name", "value", "max_age"),
    [
        ("lti_state_3f9c0a", "Zm9vYmFyLWJhei1xdXV4XzEyMw", 300),
        ("lti_cookie_probe", "1", 365 * 86400),
        ("lti_state_3f9c0a", "", 0),
        ("odd", 'a value; with "quotes"', 60),
        ("odd", "caf\u00e9", 60),
        ("session_like", "abc", None),
    ],
)
def test_set_cookie_matches_werkzeug(app, name, value, max_age):
    with app.test_request_context("/"):
        response = Response()
        set_cookie(response, name, value, max_age)
        expected = _werkzeug(app, name, value, max_age)
        (line,) = response.headers.getlist("Set-Cookie")
        # The two may straddle a second boundary; everything but the Expires date must agree.
        assert line.split("; Expires=")[0] == expected.split("; Expires=")[0]
        assert _without_expires(line) == _without_expires(expected)


def test_delete_cookie_expires_at_once(app):
    with app.test_request_context("/"):
        response = Response()
        delete_cookie(response, "lti_state_abc")
        (line,) = response.headers.getlist("Set-Cookie")
        assert line.startswith("lti_state_abc=; Expires=")
        assert "; Max-Age=0;" in line


def _without_expires(line: str) -> str:
    return "; ".join(part for part in line.split("; ") if not part.startswith("Expires="))
