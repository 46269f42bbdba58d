"""The baseline for benchmarks/launch.py: an LTI 1.3 tool built on pylti1p3 alone.

Served by gunicorn like our tool (``gunicorn 'pylti1p3_baseline:create_app()'``, with
``BASELINE_LTI_CONFIG`` naming its JSON configuration). It works the way pylti1p3's own Flask
example does (dmitry-viskov/pylti1.3-flask-example, ``game/app.py``), so the comparison is with
what a team gets by following the library's example:

- every view builds its tool configuration with ``ToolConfJsonFile(path)``: the JSON file and the
  tool's private (and public) key file are read from disk and parsed on every request;
- the login and launch data live in a Flask-Caching "simple" cache (``SimpleCache``, 600 s
  default timeout, default threshold) through ``FlaskCacheDataStorage``;
- ``/login`` is ``FlaskOIDCLogin(...).redirect(target_link_uri)``;
- ``/launch`` is a ``FlaskMessageLaunch`` subclass (the example's nonce exception for the IMS
  reference platform's deep links) and ``get_launch_data()``, which validates the state, the
  JWT, the nonce, the registration, the signature, the deployment and the message, then renders
  a template with the launch data;
- no ``set_public_key_caching()``: the platform's JWKS is fetched on every launch (pylti1p3
  makes a new ``requests.Session`` per launch), and a gunicorn sync worker waits for it.

Deviations from the example, and which way they lean:

- ``enable_check_cookies()`` is off (towards the baseline). With it, every login first answers a
  page that needs JavaScript to test cookies and continue; the benchmark's client runs no
  JavaScript. In a browser it would add one more request per launch.
- The launch does not ``pprint`` the launch data to stdout (towards the baseline).
- The template is a short page of our own rather than the example's game (neutral: ours also
  renders one small page).
- pylti1p3 is the installed ``pylti1p3next`` fork, the one our tool depends on (neutral: same API
  and code paths).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask, jsonify, render_template
from flask_caching import Cache
from pylti1p3.contrib.flask import (
    FlaskCacheDataStorage,
    FlaskMessageLaunch,
    FlaskOIDCLogin,
    FlaskRequest,
)
from pylti1p3.tool_config import ToolConfJsonFile

CONFIG_ENV = "BASELINE_LTI_CONFIG"
HERE = Path(__file__).resolve().parent


def write_config(
    directory: Path,
    *,
    issuer: str,
    client_id: str,
    deployment_id: str,
    auth_login_url: str,
    auth_token_url: str,
    key_set_url: str,
) -> Path:
    """Write the tool's JSON configuration and a new key pair into `directory`; return the JSON path."""
    directory.mkdir(parents=True, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (directory / "private.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    (directory / "public.key").write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    config = {
        issuer: [
            {
                "default": True,
                "client_id": client_id,
                "auth_login_url": auth_login_url,
                "auth_token_url": auth_token_url,
                "auth_audience": None,
                "key_set_url": key_set_url,
                "key_set": None,
                "private_key_file": "private.key",
                "public_key_file": "public.key",
                "deployment_ids": [deployment_id],
            }
        ]
    }
    path = directory / "tool.json"
    path.write_text(json.dumps(config, indent=4))
    return path


class BaselineMessageLaunch(FlaskMessageLaunch):
    def validate_nonce(self):
        # As in the example: the IMS reference platform sends a bad nonce on deep-linking launches.
        if self.get_iss() == "http://imsglobal.org" and self.is_deep_link_launch():
            return self
        return super().validate_nonce()


def create_app(config_path: str | None = None) -> Flask:
    """The baseline tool: /login, /launch and /jwks; the configuration is read per request."""
    config_path = config_path or os.environ[CONFIG_ENV]
    app = Flask("pylti1p3-baseline", template_folder=str(HERE / "templates"))
    app.config.from_mapping(
        {
            # The example's CACHE_TYPE "simple"; Flask-Caching 2 names it SimpleCache.
            "CACHE_TYPE": "SimpleCache",
            "CACHE_DEFAULT_TIMEOUT": 600,
            "SECRET_KEY": "benchmark-only",
            "SESSION_COOKIE_HTTPONLY": True,
            "SESSION_COOKIE_SECURE": False,
        }
    )
    cache = Cache(app)

    def tool_conf() -> ToolConfJsonFile:
        return ToolConfJsonFile(config_path)

    @app.route("/login", methods=["GET", "POST"])
    def login():
        conf = tool_conf()
        storage = FlaskCacheDataStorage(cache)
        flask_request = FlaskRequest()
        target_link_uri = flask_request.get_param("target_link_uri")
        if not target_link_uri:
            return "Missing target_link_uri", 400
        oidc_login = FlaskOIDCLogin(flask_request, conf, launch_data_storage=storage)
        return oidc_login.redirect(target_link_uri)

    @app.route("/launch", methods=["POST"])
    def launch():
        conf = tool_conf()
        flask_request = FlaskRequest()
        storage = FlaskCacheDataStorage(cache)
        message_launch = BaselineMessageLaunch(flask_request, conf, launch_data_storage=storage)
        data = message_launch.get_launch_data()
        custom = data.get("https://purl.imsglobal.org/spec/lti/claim/custom") or {}
        return render_template(
            "baseline_launch.html",
            page_title="pylti1p3 baseline",
            is_deep_link_launch=message_launch.is_deep_link_launch(),
            launch_data=data,
            launch_id=message_launch.get_launch_id(),
            curr_user_name=data.get("name", ""),
            curr_diff=custom.get("difficulty", "normal"),
        )

    @app.route("/jwks", methods=["GET"])
    def jwks():
        return jsonify(tool_conf().get_jwks())

    return app
