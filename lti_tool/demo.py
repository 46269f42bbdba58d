"""The demo platform: a small LTI 1.3 platform built into the tool, for trying it without a VLE.

On in development only. It has its own RSA key (kept in the instance folder, mode 0600), its
own JWKS, and an authorization endpoint that signs id_tokens, so a demo launch goes through
exactly the same OIDC login and launch checks as a launch from Moodle.
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from itsdangerous import BadSignature, URLSafeTimedSerializer

from .id_token import CLAIM, DEEP_LINKING_SETTINGS
from .keys import public_jwk, thumbprint_kid
from .roles import ADMINISTRATOR, ASSESSOR, CANDIDATE, COACH

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
        return jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": self.kid})
