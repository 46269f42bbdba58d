"""A real LTI 1.3 platform for tests: an HTTP server on 127.0.0.1 with its own keys.

It behaves the way Moodle does where it matters: its authorization endpoint validates the OIDC
request and answers with an auto-posting form carrying a signed id_token; its token endpoint
verifies the tool's client-assertion JWT against the tool's published JWKS (fetched over HTTP);
its AGS and NRPS endpoints record what they receive. Tests shape each launch (claims, header,
signing key) to forge the bad ones.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from html import escape
from typing import Any

import jwt
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from lti_tool.keys import public_jwk

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
MEMBERSHIP = "http://purl.imsglobal.org/vocab/lis/v2/membership#"
LEARNER = MEMBERSHIP + "Learner"
INSTRUCTOR = MEMBERSHIP + "Instructor"
ADMIN = "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Administrator"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def hs256_token(claims: dict, secret: bytes, header: dict | None = None) -> str:
    """An HS256 JWT made by hand (PyJWT rightly refuses an RSA public key as an HMAC secret)."""
    head = b64url(json.dumps({"alg": "HS256", "typ": "JWT", **(header or {})}).encode())
    body = b64url(json.dumps(claims).encode())
    signature = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64url(signature)}"


def unsigned_token(claims: dict, header: dict | None = None) -> str:
    head = b64url(json.dumps({"alg": "none", "typ": "JWT", **(header or {})}).encode())
    return f"{head}.{b64url(json.dumps(claims).encode())}."


@dataclass
class PlatformKey:
    kid: str
    private_key: rsa.RSAPrivateKey

    @classmethod
    def generate(cls) -> PlatformKey:
        return cls(secrets.token_hex(8), rsa.generate_private_key(public_exponent=65537, key_size=2048))

    @property
    def jwk(self) -> dict:
        return public_jwk(self.private_key.public_key(), self.kid)

    @property
    def public_pem(self) -> bytes:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


@dataclass
class LaunchSpec:
    """What the platform puts in the id_token for one login_hint, and how to forge it."""

    sub: str | None = "user-1"
    roles: list[str] = field(default_factory=lambda: [LEARNER])
    message_type: str = "LtiResourceLinkRequest"
    context: dict | None = field(default_factory=lambda: {"id": "course-1", "title": "NPQSL Cohort 2026"})
    resource_link: dict | None = field(default_factory=lambda: {"id": "rl-1", "title": "Closing the Gap"})
    name: str | None = "Alex Candidate"
    email: str | None = "alex@example.org"
    custom: dict | None = None
    deployment_id: str | None = None
    extra_claims: dict = field(default_factory=dict)
    # The target the platform launches; None means the tool's redirect_uri.
    target_link_uri: str | None = None
    # Forgery hooks: change the claims/header after they are built, or sign differently.
    mutate_claims: Callable[[dict], None] | None = None
    header: dict = field(default_factory=dict)
    signer: Callable[[dict, dict], str] | None = None
    token_transform: Callable[[str], str] | None = None


class TestPlatform:
    """An LTI 1.3 platform served on 127.0.0.1 at a random port."""

    __test__ = False  # not a pytest test class

    def __init__(self, client_id: str = "tool-client-1", deployment_id: str = "deploy-1"):
        self.client_id = client_id
        self.deployment_id = deployment_id
        self.keys = [PlatformKey.generate()]
        self.redirect_uris: list[str] = []
        self.tool_jwks_url: str | None = None
        self.specs: dict[str, LaunchSpec] = {}
        self.auth_requests: list[dict] = []
        self.jwks_requests = 0
        self.token_requests: list[dict] = []
        self.scores: list[dict] = []
        self.members: list[dict] = []
        self.available = True
        self._server = make_server("127.0.0.1", 0, self._wsgi, threaded=True)
        self.base_url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> TestPlatform:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()

    @property
    def issuer(self) -> str:
        return self.base_url

    @property
    def auth_url(self) -> str:
        return self.base_url + "/auth"

    @property
    def token_url(self) -> str:
        return self.base_url + "/token"

    @property
    def jwks_url(self) -> str:
        return self.base_url + "/jwks"

    @property
    def signing_key(self) -> PlatformKey:
        return self.keys[-1]

    def rotate_key(self) -> PlatformKey:
        self.keys.append(PlatformKey.generate())
        return self.signing_key

    # -- what tests ask of it ------------------------------------------------------------
    def prepare(self, spec: LaunchSpec | None = None) -> str:
        """Register a launch and return the login_hint that selects it."""
        hint = "hint-" + secrets.token_hex(6)
        self.specs[hint] = spec or LaunchSpec()
        return hint

    def login_params(self, tool_launch_url: str, hint: str, **extra: str) -> dict[str, str]:
        """The third-party-initiated login request the platform sends to the tool."""
        params = {
            "iss": self.issuer,
            "login_hint": hint,
            "target_link_uri": tool_launch_url,
            "lti_message_hint": "msg-" + hint,
            "client_id": self.client_id,
            "lti_deployment_id": self.deployment_id,
        }
        params.update(extra)
        return {k: v for k, v in params.items() if v is not None}

    def id_token(self, spec: LaunchSpec, *, nonce: str | None, target_link_uri: str) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.client_id,
            "iat": now,
            "exp": now + 60,
            "nonce": nonce,
            CLAIM + "message_type": spec.message_type,
            CLAIM + "version": "1.3.0",
            CLAIM + "deployment_id": spec.deployment_id or self.deployment_id,
            CLAIM + "target_link_uri": target_link_uri,
            CLAIM + "roles": spec.roles,
        }
        if spec.sub is not None:
            claims["sub"] = spec.sub
        if spec.name:
            claims["name"] = spec.name
            claims["given_name"], _, claims["family_name"] = spec.name.partition(" ")
        if spec.email:
            claims["email"] = spec.email
        if spec.context is not None:
            claims[CLAIM + "context"] = spec.context
        if spec.message_type == "LtiResourceLinkRequest" and spec.resource_link is not None:
            claims[CLAIM + "resource_link"] = spec.resource_link
        if spec.message_type == "LtiDeepLinkingRequest":
            claims["https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"] = {
                "deep_link_return_url": self.base_url + "/deep_link_return",
                "accept_types": ["ltiResourceLink"],
                "accept_presentation_document_targets": ["iframe", "window"],
                "accept_multiple": True,
            }
        if spec.custom:
            claims[CLAIM + "custom"] = spec.custom
        claims.update(spec.extra_claims)
        if spec.mutate_claims:
            spec.mutate_claims(claims)
        header = {"kid": self.signing_key.kid, **spec.header}
        if spec.signer:
            token = spec.signer(claims, header)
        else:
            token = jwt.encode(claims, self.signing_key.private_key, algorithm="RS256", headers=header)
        return spec.token_transform(token) if spec.token_transform else token

    # -- HTTP ----------------------------------------------------------------------------
    def _wsgi(self, environ, start_response):
        request = Request(environ)
        if not self.available:
            return Response("platform down", status=503)(environ, start_response)
        routes = {
            "/jwks": self._jwks,
            "/auth": self._auth,
            "/token": self._token,
            "/ags/scores": self._scores,
            "/nrps/memberships": self._memberships,
        }
        handler = routes.get(request.path)
        response = handler(request) if handler else Response("not found", status=404)
        return response(environ, start_response)

    def _json(self, data: Any, status: int = 200) -> Response:
        return Response(json.dumps(data), status=status, content_type="application/json")

    def _jwks(self, request: Request) -> Response:
        self.jwks_requests += 1
        return self._json({"keys": [k.jwk for k in self.keys]})

    def _auth(self, request: Request) -> Response:
        """The OIDC authorization endpoint: validate the request, answer with a signed id_token."""
        args = request.values.to_dict()
        self.auth_requests.append(args)
        expected = {"scope": "openid", "response_type": "id_token", "response_mode": "form_post", "prompt": "none"}
        for key, value in expected.items():
            if args.get(key) != value:
                return self._json({"error": "invalid_request", "detail": f"{key} must be {value}"}, 400)
        if args.get("client_id") != self.client_id:
            return self._json({"error": "unauthorized_client"}, 400)
        if self.redirect_uris and args.get("redirect_uri") not in self.redirect_uris:
            return self._json({"error": "invalid_request", "detail": "redirect_uri not registered"}, 400)
        for key in ("state", "nonce", "login_hint", "redirect_uri"):
            if not args.get(key):
                return self._json({"error": "invalid_request", "detail": f"{key} missing"}, 400)
        spec = self.specs.get(args["login_hint"])
        if spec is None:
            return self._json({"error": "login_required"}, 400)
        target = spec.target_link_uri or args["redirect_uri"]
        token = self.id_token(spec, nonce=args["nonce"], target_link_uri=target)
        fields = {"id_token": token, "state": args["state"]}
        inputs = "".join(
            f'<input type="hidden" name="{escape(k)}" value="{escape(v)}">' for k, v in fields.items()
        )
        html = (
            f'<!doctype html><html><body><form id="lti" method="post" action="{escape(args["redirect_uri"])}">'
            f"{inputs}</form><script>document.getElementById('lti').submit()</script></body></html>"
        )
        return Response(html, content_type="text/html")

    def _token(self, request: Request) -> Response:
        """Client-credentials grant with a JWT assertion, verified against the tool's JWKS."""
        form = request.form.to_dict()
        self.token_requests.append(form)
        if form.get("grant_type") != "client_credentials":
            return self._json({"error": "unsupported_grant_type"}, 400)
        if form.get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer":
            return self._json({"error": "invalid_request"}, 400)
        assertion = form.get("client_assertion", "")
        try:
            kid = jwt.get_unverified_header(assertion)["kid"]
            jwks = requests.get(self.tool_jwks_url, timeout=5).json()
            jwk = next(k for k in jwks["keys"] if k["kid"] == kid)
            key = jwt.algorithms.RSAAlgorithm.from_jwk(jwk)
            claims = jwt.decode(assertion, key, algorithms=["RS256"], audience=self.token_url)
        except Exception as exc:  # noqa: BLE001 - any failure is an invalid client
            return self._json({"error": "invalid_client", "detail": str(exc)}, 401)
        if claims.get("iss") != self.client_id or claims.get("sub") != self.client_id:
            return self._json({"error": "invalid_client", "detail": "iss/sub must be the client_id"}, 401)
        return self._json(
            {
                "access_token": "at-" + uuid.uuid4().hex,
                "token_type": "Bearer",
                "expires_in": 3600,
                "scope": form.get("scope", ""),
            }
        )

    def _scores(self, request: Request) -> Response:
        if not request.headers.get("Authorization", "").startswith("Bearer at-"):
            return self._json({"error": "unauthorized"}, 401)
        self.scores.append(request.get_json(force=True))
        return self._json({}, 200)

    def _memberships(self, request: Request) -> Response:
        if not request.headers.get("Authorization", "").startswith("Bearer at-"):
            return self._json({"error": "unauthorized"}, 401)
        return self._json({"id": request.url, "context": {"id": "course-1"}, "members": self.members})
