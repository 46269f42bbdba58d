"""The baseline for benchmarks/launch.py: a minimal LTI 1.3 tool built on pylti1p3 alone.

It is configured the way pylti1p3's upstream Flask example (pylti1.3-flask-example, game/app.py)
is, so the comparison is against what a team gets by following the library's own example:

- the registration in a ``ToolConfDict`` (issuer, client_id, auth_login_url, auth_token_url,
  key_set_url, deployment_ids, the tool's private key PEM);
- ``FlaskOIDCLogin`` with ``FlaskCacheDataStorage`` over a Flask-Caching ``SimpleCache``
  (the example's ``CACHE_TYPE="simple"``, spelt ``SimpleCache`` in Flask-Caching 2,
  ``CACHE_DEFAULT_TIMEOUT=600``, the default threshold of 500 items);
- ``FlaskMessageLaunch(...).get_launch_data()`` at the launch, which runs ``validate()``;
- no ``set_public_key_caching``: the platform's JWKS is fetched on every launch, over a new
  ``requests.Session`` each time (pylti1p3 makes one per ``MessageLaunch``), as in the example.

Two deliberate differences from the example, both in the baseline's favour or neutral:

- ``enable_check_cookies()`` is off. It answers the login with a JavaScript page that a
  non-JavaScript client cannot follow; without it the login is one 302 to the platform, the same
  number of hops as our tool for a returning browser (whose probe cookie is already set).
- The tool configuration is built once at start-up rather than read from a JSON file on every
  request, and the launch page is a tiny HTML string instead of a rendered game template.

Nothing here records the launch anywhere but the cache: this is the floor a pylti1p3 tool
costs, not a feature-equivalent tool.
"""

from __future__ import annotations

import threading
from html import escape

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask, jsonify
from flask_caching import Cache
from pylti1p3.contrib.flask import (
    FlaskCacheDataStorage,
    FlaskMessageLaunch,
    FlaskOIDCLogin,
    FlaskRequest,
)
from pylti1p3.exception import LtiException, OIDCException
from pylti1p3.tool_config import ToolConfDict
from werkzeug.serving import make_server


def _key_pair() -> tuple[str, str]:
    """A fresh RSA key pair for the tool, as PEM strings (private, public)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public_pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private_pem, public_pem


def make_tool_conf(
    *,
    issuer: str,
    client_id: str,
    deployment_id: str,
    auth_login_url: str,
    auth_token_url: str,
    key_set_url: str,
) -> ToolConfDict:
    """The platform registration as pylti1p3's ToolConfDict, with a generated tool key."""
    conf = ToolConfDict(
        {
            issuer: {
                "default": True,
                "client_id": client_id,
                "auth_login_url": auth_login_url,
                "auth_token_url": auth_token_url,
                "key_set_url": key_set_url,
                "key_set": None,
                "deployment_ids": [deployment_id],
            }
        }
    )
    private_pem, public_pem = _key_pair()
    conf.set_private_key(issuer, private_pem)
    conf.set_public_key(issuer, public_pem)
    return conf


def create_app(tool_conf: ToolConfDict) -> Flask:
    """The baseline tool: /login, /launch and /jwks, as in the upstream example."""
    app = Flask("pylti1p3-baseline")
    app.config.from_mapping(
        {
            # The example's "simple"; Flask-Caching 2 only knows it by its class name.
            "CACHE_TYPE": "SimpleCache",
            "CACHE_DEFAULT_TIMEOUT": 600,
            "SECRET_KEY": "benchmark-only",
            "SESSION_COOKIE_HTTPONLY": True,
            "SESSION_COOKIE_SECURE": False,
        }
    )
    cache = Cache(app)

    def launch_data_storage() -> FlaskCacheDataStorage:
        return FlaskCacheDataStorage(cache)

    @app.route("/login", methods=["GET", "POST"])
    def login():
        flask_request = FlaskRequest()
        target_link_uri = flask_request.get_param("target_link_uri")
        if not target_link_uri:
            return "Missing target_link_uri", 400
        oidc_login = FlaskOIDCLogin(flask_request, tool_conf, launch_data_storage=launch_data_storage())
        try:
            return oidc_login.redirect(target_link_uri)
        except OIDCException as exc:
            return f"Login refused: {escape(str(exc))}", 400

    @app.route("/launch", methods=["POST"])
    def launch():
        flask_request = FlaskRequest()
        message_launch = FlaskMessageLaunch(flask_request, tool_conf, launch_data_storage=launch_data_storage())
        try:
            data = message_launch.get_launch_data()
        except LtiException as exc:
            return f"Launch refused: {escape(str(exc))}", 403
        name = escape(str(data.get("name", "")))
        return f"<!doctype html><title>Launched</title><p>Hello {name}</p>"

    @app.route("/jwks", methods=["GET"])
    def jwks():
        return jsonify(tool_conf.get_jwks())

    return app


class BaselineServer:
    """The baseline app behind a threaded Werkzeug server on 127.0.0.1, like tests.tool_server."""

    def __init__(self, tool_conf: ToolConfDict):
        self.app = create_app(tool_conf)
        self._server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.base_url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @classmethod
    def for_platform(cls, platform) -> BaselineServer:
        """A baseline registered with a tests.platform_emulator.TestPlatform (both ways)."""
        conf = make_tool_conf(
            issuer=platform.issuer,
            client_id=platform.client_id,
            deployment_id=platform.deployment_id,
            auth_login_url=platform.auth_url,
            auth_token_url=platform.token_url,
            key_set_url=platform.jwks_url,
        )
        server = cls(conf)
        # The test platform refuses an authorization request whose redirect_uri it does not know.
        platform.redirect_uris.append(server.launch_url)
        return server

    @property
    def login_url(self) -> str:
        return self.base_url + "/login"

    @property
    def launch_url(self) -> str:
        return self.base_url + "/launch"

    def start(self) -> BaselineServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
