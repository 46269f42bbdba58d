"""A real LTI 1.3 platform for tests: an HTTP server on 127.0.0.1 with its own keys.

It behaves the way Moodle does where it matters: its authorization endpoint validates the OIDC
request and answers with an auto-posting form carrying a signed id_token; its token endpoint
verifies the tool's client-assertion JWT against the tool's published JWKS (fetched over HTTP);
its NRPS endpoint records what it receives. Tests shape each launch (claims, header, signing key)
to forge the bad ones.

Its Assignment and Grade Services follow Moodle's gradebook services (mod/lti/service/
gradebookservices), rule for rule where a tool can tell the difference:

- launches carry the AGS endpoint claim with the granted scopes, the course's ``lineitems``
  container and, when the resource link has exactly one grade item of its own (Moodle: an
  activity placed by deep linking with a lineItem), its ``lineitem``; URLs carry ``?type_id=``;
- the container lists line items filtered by ``resource_id``, ``tag`` and ``resource_link_id``
  (paged with ``limit``/``from`` and ``Link: rel="next"``); POST creates a line item, which Moodle
  keeps as a separate *manual* gradebook column;
- ``{lineitem}/scores`` takes ``application/vnd.ims.lis.v1.score+json`` with a bearer token from
  the token endpoint carrying the score scope; it answers 400 to a malformed score or a person
  who is not a gradable learner of the course, and 409 when the score's timestamp is at or before
  the stored one for that person and line item, compared in whole seconds as Moodle's
  ``strtotime`` does (``timestamp_precision = "millisecond"`` compares exactly, like other
  platforms); a score whose gradingProgress is not FullyGraded nulls the stored grade; a
  ``scoreMaximum`` other than the item's maximum is rescaled to it;
- ``{lineitem}/results`` (result.readonly) reports the stored grade, with a timestamp only when
  there is a grade, in whole seconds.

``gradebook()`` is the view tests read: per line item, per person, the score, maximum, timestamp
and history of accepted scores.
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
from datetime import UTC, datetime
from html import escape
from typing import Any
from urllib.parse import quote, unquote, urlencode

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

AGS_CLAIM = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
AGS_SCOPE = "https://purl.imsglobal.org/spec/lti-ags/scope/"
LINEITEM_READ_SCOPE = AGS_SCOPE + "lineitem.readonly"
RESULT_READ_SCOPE = AGS_SCOPE + "result.readonly"
SCORE_SCOPE = AGS_SCOPE + "score"
LINEITEM_SCOPE = AGS_SCOPE + "lineitem"
# Moodle's "Use this service for grade sync and column management".
MOODLE_AGS_SCOPES = (LINEITEM_READ_SCOPE, RESULT_READ_SCOPE, SCORE_SCOPE, LINEITEM_SCOPE)
AGS_PATH = "/mod/lti/services.php/"
SCORE_MEDIA_TYPE = "application/vnd.ims.lis.v1.score+json"
LINEITEM_MEDIA_TYPE = "application/vnd.ims.lis.v2.lineitem+json"
LINEITEMS_MEDIA_TYPE = "application/vnd.ims.lis.v2.lineitemcontainer+json"
RESULTS_MEDIA_TYPE = "application/vnd.ims.lis.v2.resultcontainer+json"
ACTIVITY_PROGRESS = ("Initialized", "Started", "InProgress", "Submitted", "Completed")
GRADING_PROGRESS = ("FullyGraded", "Pending", "PendingManual", "Failed", "NotReady")


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
class Grade:
    """One person's grade on one line item, as the gradebook holds it."""

    score: float | None  # in the line item's scale; None unless the last score was FullyGraded
    maximum: float
    timestamp: datetime
    activity_progress: str
    grading_progress: str
    history: list[dict] = field(default_factory=list)  # every accepted score body, in order


@dataclass
class GradeItem:
    """A gradebook column: the activity's own grade item, or a manual one a tool created."""

    id: int
    course_id: str
    label: str
    score_maximum: float
    resource_id: str | None = None
    tag: str | None = None
    resource_link_id: str | None = None
    # True when created through the lineitems service: Moodle shows it as a manual column.
    manual: bool = False
    grades: dict[str, Grade] = field(default_factory=dict)


def parse_iso8601(value: Any) -> datetime | None:
    if not isinstance(value, str) or "T" not in value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


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
    # Whether the launch carries the AGS endpoint claim (when the platform offers AGS at all).
    ags: bool = True
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
        self.members: list[dict] = []
        self.available = True
        # -- Assignment and Grade Services (Moodle's gradebook services) --
        self.ags_enabled = True
        self.ags_scopes: list[str] = list(MOODLE_AGS_SCOPES)
        self.type_id = "1"
        self.timestamp_precision = "second"  # Moodle compares strtotime() values
        self.grade_items: list[GradeItem] = []
        self._last_item_id = 0  # ids are never reused, as in Moodle
        self.gradable: set[tuple[str, str]] = set()  # (course id, sub) of enrolled learners
        self.scores: list[dict] = []  # every accepted score body
        self.ags_requests: list[dict] = []  # method, path, status of every AGS request
        self.ags_faults: list[tuple[int, str]] = []  # (status, body) answered to the next AGS requests
        self.ags_delay = 0.0  # seconds every AGS request waits before it is handled
        self.tokens: dict[str, dict] = {}  # access token -> {"scopes", "expires_at"}
        self._gradebook_lock = threading.RLock()
        self._server = make_server("127.0.0.1", 0, self._wsgi, threaded=True)
        self.base_url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> TestPlatform:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()

    def refuse_connections(self) -> None:
        """Close the port: connections are refused (a VLE server that is down, not just busy)."""
        self._server.shutdown()
        self._server.server_close()

    def accept_connections(self) -> None:
        """Listen again on the same port after ``refuse_connections``."""
        port = self._server.server_port
        self._server = make_server("127.0.0.1", port, self._wsgi, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

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
        course_id = (spec.context or {}).get("id")
        if course_id and spec.sub and LEARNER in spec.roles:
            self.gradable.add((course_id, spec.sub))
        if self.ags_enabled and spec.ags and course_id:
            link_id = (
                (spec.resource_link or {}).get("id") if spec.message_type == "LtiResourceLinkRequest" else None
            )
            claims[AGS_CLAIM] = self.ags_claim(course_id, link_id)
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
            "/nrps/memberships": self._memberships,
        }
        handler = routes.get(request.path)
        if handler is None and request.path.startswith(AGS_PATH):
            handler = self._ags
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
        # Moodle grants the AGS scopes the tool type allows; other scopes pass through here.
        requested = form.get("scope", "").split()
        granted = [s for s in requested if not s.startswith(AGS_SCOPE) or s in self.ags_scopes]
        access_token = "at-" + uuid.uuid4().hex
        self.tokens[access_token] = {"scopes": set(granted), "expires_at": time.time() + 3600}
        return self._json(
            {"access_token": access_token, "token_type": "Bearer", "expires_in": 3600, "scope": " ".join(granted)}
        )

    # -- Assignment and Grade Services -----------------------------------------------------
    def revoke_tokens(self) -> None:
        """Forget every access token issued, as a platform does on restart or key change."""
        self.tokens.clear()

    def lineitems_url(self, course_id: str) -> str:
        return f"{self.base_url}{AGS_PATH}{quote(course_id, safe='')}/lineitems?type_id={self.type_id}"

    def lineitem_url(self, item: GradeItem) -> str:
        course = quote(item.course_id, safe="")
        return f"{self.base_url}{AGS_PATH}{course}/lineitems/{item.id}/lineitem?type_id={self.type_id}"

    def ags_claim(self, course_id: str, resource_link_id: str | None) -> dict:
        """Moodle's claim: scopes, the container, and the link's own item when it has exactly one."""
        claim: dict[str, Any] = {"scope": list(self.ags_scopes), "lineitems": self.lineitems_url(course_id)}
        if resource_link_id:
            with self._gradebook_lock:
                own = [
                    i
                    for i in self.grade_items
                    if i.course_id == course_id and i.resource_link_id == resource_link_id
                ]
            if len(own) == 1:
                claim["lineitem"] = self.lineitem_url(own[0])
        return claim

    def add_grade_item(
        self,
        resource_link_id: str | None,
        label: str,
        score_maximum: float,
        *,
        course_id: str = "course-1",
        resource_id: str | None = None,
        tag: str | None = None,
        manual: bool = False,
    ) -> GradeItem:
        """A grade item made on the platform's side (an activity placed with a lineItem)."""
        with self._gradebook_lock:
            self._last_item_id += 1
            item = GradeItem(
                id=self._last_item_id,
                course_id=course_id,
                label=label,
                score_maximum=float(score_maximum),
                resource_id=resource_id,
                tag=tag,
                resource_link_id=resource_link_id,
                manual=manual,
            )
            self.grade_items.append(item)
            return item

    def delete_grade_item(self, item: GradeItem) -> None:
        """A teacher deletes a column from the gradebook."""
        with self._gradebook_lock:
            self.grade_items.remove(item)

    def enrol(self, sub: str, course_id: str = "course-1") -> None:
        self.gradable.add((course_id, sub))

    def set_grade(self, item: GradeItem, sub: str, score: float | None, timestamp: datetime) -> None:
        """A grade entered in the gradebook itself (a teacher's edit), with its time."""
        with self._gradebook_lock:
            grade = item.grades.get(sub)
            progress = "FullyGraded" if score is not None else "NotReady"
            if grade is None:
                item.grades[sub] = Grade(score, item.score_maximum, timestamp, "Completed", progress)
            else:
                grade.score, grade.timestamp, grade.grading_progress = score, timestamp, progress

    def gradebook(self) -> list[dict]:
        """What a teacher sees: every column, and per person the grade, maximum, time and history."""
        with self._gradebook_lock:
            return [
                {
                    "id": self.lineitem_url(item),
                    "label": item.label,
                    "scoreMaximum": item.score_maximum,
                    "resourceId": item.resource_id,
                    "tag": item.tag,
                    "resourceLinkId": item.resource_link_id,
                    "manual": item.manual,
                    "grades": {
                        sub: {
                            "score": g.score,
                            "maximum": g.maximum,
                            "timestamp": g.timestamp,
                            "activityProgress": g.activity_progress,
                            "gradingProgress": g.grading_progress,
                            "history": [dict(h) for h in g.history],
                        }
                        for sub, g in item.grades.items()
                    },
                }
                for item in self.grade_items
            ]

    def _authorized(self, request: Request, *scopes: str) -> bool:
        """A live bearer token from the token endpoint carrying one of ``scopes``."""
        header = request.headers.get("Authorization", "")
        token = self.tokens.get(header.removeprefix("Bearer ")) if header.startswith("Bearer ") else None
        if token is None or token["expires_at"] < time.time():
            return False
        return bool(token["scopes"] & set(scopes))

    def _ags(self, request: Request) -> Response:
        if self.ags_delay:
            time.sleep(self.ags_delay)
        response = self._ags_route(request)
        self.ags_requests.append({"method": request.method, "url": request.url, "status": response.status_code})
        return response

    def _ags_route(self, request: Request) -> Response:
        if self.ags_faults:
            status, body = self.ags_faults.pop(0)
            return Response(body, status=status, content_type="text/plain")
        if not self.ags_enabled:
            return Response("Not Found: gradebook services are off", status=404)
        if request.args.get("type_id") != self.type_id:
            return Response("Bad Request: type_id", status=400)
        parts = [unquote(p) for p in request.path.removeprefix(AGS_PATH).split("/")]
        course_id = parts[0]
        if parts[1:] == ["lineitems"]:
            if request.method == "GET":
                return self._lineitems_get(request, course_id)
            if request.method == "POST":
                return self._lineitems_post(request, course_id)
            return Response("Method Not Allowed", status=405)
        if len(parts) in (4, 5) and parts[1] == "lineitems" and parts[3] == "lineitem":
            item = self._item(course_id, parts[2])
            if item is None:
                return Response(f"Not Found: Grade item {parts[2]} doesn't exist.", status=404)
            if len(parts) == 4 and request.method == "GET":
                if not self._authorized(request, LINEITEM_SCOPE, LINEITEM_READ_SCOPE):
                    return Response("Unauthorized", status=401)
                return self._json(self._item_json(item))
            if parts[4:] == ["scores"] and request.method == "POST":
                return self._score_post(request, item)
            if parts[4:] == ["results"] and request.method == "GET":
                return self._results_get(request, item)
            return Response("Method Not Allowed", status=405)
        return Response("Not Found", status=404)

    def _item(self, course_id: str, item_id: str) -> GradeItem | None:
        with self._gradebook_lock:
            return next((i for i in self.grade_items if str(i.id) == item_id and i.course_id == course_id), None)

    def _item_json(self, item: GradeItem) -> dict:
        data: dict[str, Any] = {
            "id": self.lineitem_url(item),
            "label": item.label,
            "scoreMaximum": item.score_maximum,
            "resourceId": item.resource_id or "",
            "tag": item.tag or "",
        }
        if item.resource_link_id:
            data["resourceLinkId"] = data["ltiLinkId"] = item.resource_link_id
        return data

    def _lineitems_get(self, request: Request, course_id: str) -> Response:
        if not self._authorized(request, LINEITEM_SCOPE, LINEITEM_READ_SCOPE):
            return Response("Unauthorized", status=401)
        args = request.args
        with self._gradebook_lock:
            items = [
                i
                for i in self.grade_items
                if i.course_id == course_id
                and ("resource_id" not in args or i.resource_id == args["resource_id"])
                and ("tag" not in args or i.tag == args["tag"])
                and ("resource_link_id" not in args or i.resource_link_id == args["resource_link_id"])
            ]
        headers = {}
        limit = int(args.get("limit", 0) or 0)
        if limit > 0:
            start = int(args.get("from", 0) or 0)
            page, items = items[start : start + limit], items
            if start + limit < len(items):
                query = {k: v for k, v in args.items() if k not in ("limit", "from")}
                query.update({"limit": limit, "from": start + limit})
                next_url = f"{self.base_url}{request.path}?{urlencode(query)}"
                headers["Link"] = f'<{next_url}>; rel="next"'
            items = page
        body = json.dumps([self._item_json(i) for i in items])
        return Response(body, status=200, content_type=LINEITEMS_MEDIA_TYPE, headers=headers)

    def _lineitems_post(self, request: Request, course_id: str) -> Response:
        if not self._authorized(request, LINEITEM_SCOPE):
            return Response("Unauthorized", status=401)
        if request.mimetype != LINEITEM_MEDIA_TYPE:
            return Response("Bad Request: content type", status=400)
        data = request.get_json(force=True, silent=True)
        if (
            not isinstance(data, dict)
            or not data.get("label")
            or not isinstance(data.get("scoreMaximum"), (int, float))
        ):
            return Response("Bad Request: label and scoreMaximum are required", status=400)
        item = self.add_grade_item(
            data.get("resourceLinkId") or None,
            data["label"],
            data["scoreMaximum"],
            course_id=course_id,
            resource_id=data.get("resourceId") or None,
            tag=data.get("tag") or None,
            manual=True,
        )
        return Response(json.dumps(self._item_json(item)), status=201, content_type=LINEITEM_MEDIA_TYPE)

    def _score_post(self, request: Request, item: GradeItem) -> Response:
        if not self._authorized(request, SCORE_SCOPE):
            return Response("This resource does not support POST requests.", status=401)
        if request.mimetype != SCORE_MEDIA_TYPE:
            return Response("Bad Request: content type", status=400)
        score = request.get_json(force=True, silent=True)
        timestamp = parse_iso8601(score.get("timestamp")) if isinstance(score, dict) else None
        if (
            not isinstance(score, dict)
            or timestamp is None
            or score.get("activityProgress") not in ACTIVITY_PROGRESS
            or score.get("gradingProgress") not in GRADING_PROGRESS
            or ("scoreGiven" in score and not isinstance(score["scoreGiven"], (int, float)))
            or ("scoreMaximum" in score and not isinstance(score["scoreMaximum"], (int, float)))
            or (item.course_id, score.get("userId")) not in self.gradable
        ):
            return Response(f"Incorrect score received {json.dumps(score)}", status=400)
        with self._gradebook_lock:
            grade = item.grades.get(score["userId"])
            if grade is not None:
                stored, new = grade.timestamp, timestamp
                if self.timestamp_precision == "second":
                    stored, new = int(stored.timestamp()), int(new.timestamp())
                if stored >= new:
                    return Response(
                        f"Refusing score with an earlier timestamp for item {item.id} and user {score['userId']}",
                        status=409,
                    )
            value = None
            if score.get("gradingProgress") == "FullyGraded" and "scoreGiven" in score:
                maximum = float(score.get("scoreMaximum", 1))
                value = float(score["scoreGiven"])
                if maximum and maximum != item.score_maximum:
                    value = value * item.score_maximum / maximum
            if grade is None:
                grade = item.grades[score["userId"]] = Grade(
                    value, item.score_maximum, timestamp, score["activityProgress"], score["gradingProgress"]
                )
            grade.score, grade.timestamp = value, timestamp
            grade.activity_progress, grade.grading_progress = score["activityProgress"], score["gradingProgress"]
            grade.history.append(score)
            self.scores.append(score)
        return Response("", status=200)

    def _results_get(self, request: Request, item: GradeItem) -> Response:
        if not self._authorized(request, RESULT_READ_SCOPE):
            return Response("Unauthorized", status=401)
        user = request.args.get("user_id")
        with self._gradebook_lock:
            grades = [(sub, g) for sub, g in item.grades.items() if user is None or sub == user]
            results = []
            for sub, g in grades:
                results_url = self.lineitem_url(item).replace("/lineitem?", "/lineitem/results?")
                result: dict[str, Any] = {"id": f"{results_url}&user_id={sub}", "userId": sub}
                if g.score:  # Moodle: only a non-empty final grade has a score and a time
                    result.update(
                        resultScore=g.score,
                        resultMaximum=g.maximum,
                        scoreOf=self.lineitem_url(item),
                        timestamp=datetime.fromtimestamp(int(g.timestamp.timestamp()), UTC).isoformat(),
                    )
                results.append(result)
        return Response(json.dumps(results), status=200, content_type=RESULTS_MEDIA_TYPE)

    def _memberships(self, request: Request) -> Response:
        if not request.headers.get("Authorization", "").startswith("Bearer at-"):
            return self._json({"error": "unauthorized"}, 401)
        return self._json({"id": request.url, "context": {"id": "course-1"}, "members": self.members})
