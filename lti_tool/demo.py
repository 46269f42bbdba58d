"""The demo platform: a small LTI 1.3 platform built into the tool, for trying it without a VLE.

On in development only. It has its own RSA key (kept in the instance folder, mode 0600), its
own JWKS, and an authorization endpoint that signs id_tokens, so a demo launch goes through
exactly the same OIDC login and launch checks as a launch from Moodle.

Its launches offer the two services a VLE course offers, so the tool's grade sync and coach
roster work from the demo as they do from Moodle: Assignment and Grade Services (a gradebook,
``lti_tool.demo_gradebook``) and Names and Role Provisioning (the demo course's class list). The
tool reaches them the way it reaches any platform's: with an access token from the demo token
endpoint, which checks the tool's client assertion (RS256, signed by one of the tool's published
keys, addressed to the token endpoint, not expired). Access tokens are signed, not stored, so
every process of the tool accepts the tokens any of them issued.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from itsdangerous import BadSignature, URLSafeTimedSerializer

from .grades import AGS_CLAIM, LINEITEM_SCOPE, RESULT_READ_SCOPE, SCORE_SCOPE
from .id_token import CLAIM, DEEP_LINKING_SETTINGS
from .keys import public_jwk, thumbprint_kid
from .roles import ADMINISTRATOR, ASSESSOR, CANDIDATE, COACH
from .roster import NRPS_CLAIM, NRPS_SCOPE

CLIENT_ID = "npqsl-demo-client"
DEPLOYMENT_ID = "npqsl-demo-deployment"
COURSE = {"id": "demo-course", "label": "NPQSL-DEMO", "title": "NPQSL demo cohort"}

_MEMBERSHIP = "http://purl.imsglobal.org/vocab/lis/v2/membership#"
DEMO_PEOPLE: dict[str, dict[str, Any]] = {
    CANDIDATE: {"sub": "demo-candidate", "name": "Casey Candidate", "roles": [_MEMBERSHIP + "Learner"]},
    COACH: {"sub": "demo-coach", "name": "Chris Coach", "roles": [_MEMBERSHIP + "Instructor"]},
    ASSESSOR: {
        "sub": "demo-assessor",
        "name": "Alex Assessor",
        "roles": [_MEMBERSHIP + "Instructor", "urn:npqsl-lti:role:Assessor"],
    },
    ADMINISTRATOR: {
        "sub": "demo-admin",
        "name": "Ash Administrator",
        "roles": [
            "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Administrator",
            _MEMBERSHIP + "Instructor",
        ],
    },
}


# Learners in the demo course's class list who never launch: the coach's roster has a class.
CLASSMATES: tuple[dict[str, Any], ...] = (
    {"sub": "demo-classmate-1", "name": "Robin Reed", "roles": [_MEMBERSHIP + "Learner"]},
    {"sub": "demo-classmate-2", "name": "Sam Shah", "roles": [_MEMBERSHIP + "Learner"]},
)

AGS_SCOPES = (LINEITEM_SCOPE, RESULT_READ_SCOPE, SCORE_SCOPE)
OFFERED_SCOPES = (*AGS_SCOPES, NRPS_SCOPE)
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ACCESS_TOKEN_SECONDS = 3600


def class_list() -> list[dict[str, Any]]:
    """The demo course's members as NRPS 2.0 lists them: everyone the demo page launches, and classmates."""
    members = []
    for person in (*DEMO_PEOPLE.values(), *CLASSMATES):
        given, _, family = person["name"].partition(" ")
        members.append(
            {
                "user_id": person["sub"],
                "roles": list(person["roles"]),
                "status": "Active",
                "name": person["name"],
                "given_name": given,
                "family_name": family,
            }
        )
    return members


def learners() -> dict[str, str]:
    """The learners of the demo course, sub to name: the people its gradebook holds grades for."""
    return {m["user_id"]: m["name"] for m in class_list() if _MEMBERSHIP + "Learner" in m["roles"]}


@dataclass(frozen=True)
class ServiceUrls:
    """Where a launch's services are: the course's line items, the link's own one, the class list."""

    lineitems: str
    memberships: str
    lineitem: str | None = None


def service_claims(urls: ServiceUrls) -> dict[str, Any]:
    """The AGS endpoint and NRPS claims of a resource-link launch."""
    ags: dict[str, Any] = {"scope": list(AGS_SCOPES), "lineitems": urls.lineitems}
    if urls.lineitem:
        ags["lineitem"] = urls.lineitem
    return {
        AGS_CLAIM: ags,
        NRPS_CLAIM: {"context_memberships_url": urls.memberships, "service_versions": ["2.0"]},
    }


class ServiceRefusal(Exception):
    """A token or service request refused: the HTTP status, an OAuth-style code, a sentence why."""

    def __init__(self, status: int, error: str, description: str):
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description


class DemoError(Exception):
    """The demo platform refuses an authorization request; the message says why."""


@dataclass(frozen=True)
class DemoLaunch:
    """What the person chose on the demo page, carried in the login_hint."""

    role: str
    message_type: str
    resource_link_id: str | None = None
    title: str | None = None
    custom: dict[str, str] | None = None


def load_or_create_key(instance_path: Path) -> rsa.RSAPrivateKey:
    """The demo platform's private key, generated once into the instance folder (0600)."""
    path = instance_path / "demo_platform_key.pem"
    if not path.exists():
        instance_path.mkdir(parents=True, exist_ok=True)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process won the race; read its key below
        else:
            with os.fdopen(fd, "wb") as fh:
                fh.write(pem)
    return serialization.load_pem_private_key(path.read_bytes(), password=None)


class DemoPlatform:
    """Signs demo id_tokens and describes itself to the tool's registry."""

    def __init__(self, instance_path: Path, secret_key: str):
        self._key = load_or_create_key(instance_path)
        self.kid = thumbprint_kid(self._key.public_key())
        self._hints = URLSafeTimedSerializer(secret_key, salt="npqsl-lti.demo-hint")
        self._access_tokens = URLSafeTimedSerializer(secret_key, salt="npqsl-lti.demo-access-token")
        # Client assertions already exchanged for a token: jti -> its exp (RFC 7523 section 3,
        # replay). Kept in this process until they expire; the demo runs as one process.
        self._spent: dict[str, float] = {}
        self._spent_lock = threading.Lock()

    def jwks(self) -> dict[str, Any]:
        return {"keys": [public_jwk(self._key.public_key(), self.kid)]}

    def login_hint(self, launch: DemoLaunch) -> str:
        return self._hints.dumps(launch.__dict__)

    def read_hint(self, hint: str) -> DemoLaunch:
        try:
            return DemoLaunch(**self._hints.loads(hint, max_age=600))
        except (BadSignature, TypeError) as exc:
            raise DemoError("The demo login hint is not valid; start again from the demo page.") from exc

    def id_token(
        self,
        *,
        issuer: str,
        launch: DemoLaunch,
        nonce: str,
        target_link_uri: str,
        deep_link_return_url: str,
        services: ServiceUrls | None = None,
    ) -> str:
        person = DEMO_PEOPLE[launch.role]
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": issuer,
            "aud": CLIENT_ID,
            "sub": person["sub"],
            "name": person["name"],
            "iat": now,
            "exp": now + 60,
            "nonce": nonce,
            CLAIM + "message_type": launch.message_type,
            CLAIM + "version": "1.3.0",
            CLAIM + "deployment_id": DEPLOYMENT_ID,
            CLAIM + "target_link_uri": target_link_uri,
            CLAIM + "roles": person["roles"],
            CLAIM + "context": {
                **COURSE,
                "type": ["http://purl.imsglobal.org/vocab/lis/v2/course#CourseOffering"],
            },
            CLAIM + "tool_platform": {
                "guid": "npqsl-demo",
                "name": "NPQSL demo platform",
                "product_family_code": "npqsl-demo",
            },
        }
        if launch.message_type == "LtiDeepLinkingRequest":
            claims[DEEP_LINKING_SETTINGS] = {
                "deep_link_return_url": deep_link_return_url,
                "accept_types": ["ltiResourceLink"],
                "accept_presentation_document_targets": ["iframe", "window"],
                "accept_multiple": True,
                "data": "demo-" + uuid.uuid4().hex[:8],
            }
        else:
            claims[CLAIM + "resource_link"] = {
                "id": launch.resource_link_id or "demo-welcome",
                "title": launch.title or "Welcome to the NPQSL demo",
            }
            if launch.custom:
                claims[CLAIM + "custom"] = launch.custom
            if services is not None:
                claims.update(service_claims(services))
        return jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": self.kid})

    # -- the token endpoint and the services' bearer tokens ----------------------------------
    def grant_access_token(
        self, form: Mapping[str, str], tool_keys: Mapping[str, Any], *, token_url: str, issuer: str
    ) -> dict[str, Any]:
        """The client-credentials grant: check the tool's assertion, answer with a bearer token.

        ``tool_keys`` maps the kids the tool publishes to their public keys. Raises
        ServiceRefusal (400 for a malformed request, 401 for an assertion that does not hold).
        """
        if form.get("grant_type") != "client_credentials":
            raise ServiceRefusal(400, "unsupported_grant_type", "grant_type must be client_credentials")
        if form.get("client_assertion_type") != CLIENT_ASSERTION_TYPE:
            raise ServiceRefusal(400, "invalid_request", f"client_assertion_type must be {CLIENT_ASSERTION_TYPE}")
        assertion = form.get("client_assertion", "")
        try:
            kid = jwt.get_unverified_header(assertion).get("kid")
            if kid not in tool_keys:
                raise ServiceRefusal(
                    401, "invalid_client", f"the assertion's kid {kid!r} is not one of the tool's keys"
                )
            claims = jwt.decode(
                assertion,
                tool_keys[kid],
                algorithms=["RS256"],
                audience=token_url,
                issuer=CLIENT_ID,
                options={"require": ["exp", "iat", "iss", "sub", "aud", "jti"]},
            )
        except jwt.InvalidTokenError as exc:
            raise ServiceRefusal(401, "invalid_client", f"the client assertion is not valid: {exc}") from None
        if claims.get("sub") != CLIENT_ID:
            raise ServiceRefusal(401, "invalid_client", "the assertion's sub must be the client_id")
        requested = form.get("scope", "").split()
        granted = [s for s in dict.fromkeys(requested) if s in OFFERED_SCOPES]
        if not granted:
            raise ServiceRefusal(400, "invalid_scope", f"ask for one or more of: {' '.join(OFFERED_SCOPES)}")
        self._spend(str(claims["jti"]), float(claims["exp"]))
        token = self._access_tokens.dumps({"iss": issuer, "scopes": granted})
        return {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": ACCESS_TOKEN_SECONDS,
            "scope": " ".join(granted),
        }

    def _spend(self, jti: str, expires_at: float) -> None:
        """Accept an assertion's jti once; ServiceRefusal if it was exchanged before."""
        now = time.time()
        with self._spent_lock:
            for old in [j for j, exp in self._spent.items() if exp < now]:
                del self._spent[old]
            if jti in self._spent:
                raise ServiceRefusal(
                    401,
                    "invalid_client",
                    f"the client assertion (jti {jti!r}) was used before: make a new one for each token request",
                )
            self._spent[jti] = expires_at

    def check_access_token(self, authorization: str | None, scopes: tuple[str, ...], *, issuer: str) -> None:
        """Let a service request through if its bearer token is live and carries one of ``scopes``."""
        kind, _, token = (authorization or "").partition(" ")
        if kind.lower() != "bearer" or not token.strip():
            raise ServiceRefusal(
                401, "invalid_token", "send an access token from the token endpoint: Authorization: Bearer ..."
            )
        try:
            data = self._access_tokens.loads(token.strip(), max_age=ACCESS_TOKEN_SECONDS)
        except BadSignature:
            raise ServiceRefusal(
                401, "invalid_token", "the access token is not one this platform issued, or it has expired"
            ) from None
        if not isinstance(data, dict) or data.get("iss") != issuer:
            raise ServiceRefusal(401, "invalid_token", "the access token was issued for another platform address")
        if not set(data.get("scopes") or ()) & set(scopes):
            raise ServiceRefusal(
                403, "insufficient_scope", f"this needs an access token with the scope {' or '.join(scopes)}"
            )
