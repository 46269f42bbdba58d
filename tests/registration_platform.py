"""A test platform that also answers LTI Dynamic Registration the way Moodle does."""

from __future__ import annotations

import json
import secrets

import jwt
import requests
from werkzeug.wrappers import Request, Response

from .platform_emulator import TestPlatform


class RegisteringPlatform(TestPlatform):
    """TestPlatform plus /.well-known/openid-configuration and a registration endpoint."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.registration_token = "rt-" + secrets.token_hex(8)
        self.registrations: list[dict] = []
        self.registration_status = 200
        self.config_overrides: dict = {}
        self.config_requests = 0
        self.placed_items: list[dict] = []

    @property
    def openid_configuration_url(self) -> str:
        return self.base_url + "/.well-known/openid-configuration"

    def openid_configuration(self) -> dict:
        config = {
            "issuer": self.issuer,
            "authorization_endpoint": self.auth_url,
            "token_endpoint": self.token_url,
            "jwks_uri": self.jwks_url,
            "registration_endpoint": self.base_url + "/register",
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
            "scopes_supported": [
                "openid",
                "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
                "https://purl.imsglobal.org/spec/lti-ags/scope/score",
                "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly",
                "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly",
            ],
            "id_token_signing_alg_values_supported": ["RS256"],
            "https://purl.imsglobal.org/spec/lti-platform-configuration": {
                "product_family_code": "moodle",
                "version": "4.5",
                "messages_supported": [{"type": "LtiResourceLinkRequest"}, {"type": "LtiDeepLinkingRequest"}],
            },
        }
        config.update(self.config_overrides)
        return config

    def _wsgi(self, environ, start_response):
        request = Request(environ)
        if self.available and request.path == "/.well-known/openid-configuration":
            self.config_requests += 1
            return self._json(self.openid_configuration())(environ, start_response)
        if self.available and request.path == "/register" and request.method == "POST":
            return self._register(request)(environ, start_response)
        if self.available and request.path == "/deep_link_return" and request.method == "POST":
            return self._deep_link_return(request)(environ, start_response)
        return super()._wsgi(environ, start_response)

    def _deep_link_return(self, request: Request) -> Response:
        """Verify the tool's signed LtiDeepLinkingResponse and keep its items, as Moodle does."""
        token = request.form.get("JWT", "")
        try:
            kid = jwt.get_unverified_header(token)["kid"]
            jwks = requests.get(self.tool_jwks_url, timeout=5).json()
            key = jwt.algorithms.RSAAlgorithm.from_jwk(next(k for k in jwks["keys"] if k["kid"] == kid))
            claims = jwt.decode(token, key, algorithms=["RS256"], audience=self.issuer)
        except Exception as exc:  # noqa: BLE001 - anything wrong is a refused response
            return self._json({"error": "invalid_response", "detail": str(exc)}, 400)
        if claims.get("iss") != self.client_id:
            return self._json({"error": "invalid_response", "detail": "iss must be the client_id"}, 400)
        items = claims.get("https://purl.imsglobal.org/spec/lti-dl/claim/content_items", [])
        self.placed_items.extend(items)
        return Response(f"<p>Placed {len(items)} item(s)</p>", content_type="text/html")

    def _register(self, request: Request) -> Response:
        if request.headers.get("Authorization") != "Bearer " + self.registration_token:
            return self._json({"error": "invalid_token"}, 401)
        body = json.loads(request.get_data(as_text=True))
        self.registrations.append(body)
        if self.registration_status != 200:
            return self._json({"error": "refused"}, self.registration_status)
        self.redirect_uris.extend(body.get("redirect_uris", []))
        self.tool_jwks_url = body.get("jwks_uri")
        answer = dict(body)
        answer["client_id"] = self.client_id
        answer["https://purl.imsglobal.org/spec/lti-tool-configuration"] = {
            **body["https://purl.imsglobal.org/spec/lti-tool-configuration"],
            "deployment_id": self.deployment_id,
        }
        return self._json(answer)
