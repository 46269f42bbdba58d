"""Checks on an LTI 1.3 id_token, as plain functions that know nothing of Flask or the database.

They close the gaps measured in pylti1p3 2.0.0: only RS256 (never ``none`` or HMAC), ``aud`` as a
list with ``azp`` required and checked when several audiences are named, iat/exp with a leeway,
version and message type checked, the deployment checked against the registration and
``target_link_uri`` checked against the login. Each failure raises LaunchError with its own code.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.hashes import SHA256

from .errors import LaunchError

ALGORITHM = "RS256"
LTI_VERSION = "1.3.0"

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
MESSAGE_TYPE = CLAIM + "message_type"
VERSION = CLAIM + "version"
DEPLOYMENT_ID = CLAIM + "deployment_id"
TARGET_LINK_URI = CLAIM + "target_link_uri"
RESOURCE_LINK = CLAIM + "resource_link"
ROLES = CLAIM + "roles"
CONTEXT = CLAIM + "context"
CUSTOM = CLAIM + "custom"
DEEP_LINKING_SETTINGS = "https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"

RESOURCE_LINK_REQUEST = "LtiResourceLinkRequest"
DEEP_LINKING_REQUEST = "LtiDeepLinkingRequest"
SUPPORTED_MESSAGE_TYPES = (RESOURCE_LINK_REQUEST, DEEP_LINKING_REQUEST)

_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")
_PKCS1V15 = PKCS1v15()
_SHA256 = SHA256()


@dataclass(frozen=True)
class UnverifiedToken:
    """A token split and decoded, but not yet trusted."""

    raw: str
    header: dict[str, Any]
    claims: dict[str, Any]

    @property
    def kid(self) -> str:
        return self.header["kid"]


def _b64json(part: str) -> Any:
    padded = part + "=" * (-len(part) % 4)
    return json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))


def read_unverified(token: str | None, max_bytes: int) -> UnverifiedToken:
    """Split and decode a JWT, refusing the shapes and algorithms that are never acceptable."""
    if not token:
        raise LaunchError("missing_id_token")
    if len(token.encode("utf-8", "surrogatepass")) > max_bytes:
        raise LaunchError("id_token_too_large", f"{len(token)} bytes > {max_bytes}")
    parts = token.split(".")
    if len(parts) != 3:
        raise LaunchError("malformed_id_token", f"{len(parts)} parts, expected 3")
    try:
        header = _b64json(parts[0])
        claims = _b64json(parts[1])
    except (ValueError, UnicodeError, binascii.Error) as exc:
        raise LaunchError("malformed_id_token", f"not base64url JSON: {exc}") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise LaunchError("malformed_id_token", "header and payload must be JSON objects")
    alg = header.get("alg")
    if not alg or str(alg).lower() == "none":
        raise LaunchError("unsigned_token", f"alg={alg!r}")
    if alg != ALGORITHM:
        raise LaunchError("algorithm_not_allowed", f"alg={alg!r}")
    if not parts[2]:
        raise LaunchError("unsigned_token", "empty signature")
    kid = header.get("kid")
    if not kid or not isinstance(kid, str):
        raise LaunchError("missing_kid")
    return UnverifiedToken(token, header, claims)


def _number(claims: Mapping[str, Any], name: str) -> float:
    value = claims.get(name)
    if value is None:
        raise LaunchError("missing_claim", f'Token is missing the "{name}" claim')
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise LaunchError("malformed_id_token", f"{name} must be a number, got {value!r}")
    return value


def verify_signature(
    token: UnverifiedToken, public_key: RSAPublicKey, *, leeway: int, now: float | None = None
) -> dict[str, Any]:
    """Verify the RS256 signature and the exp/iat/nbf window; return the trusted claims.

    ``read_unverified`` has already split and decoded the token, so this checks the signature
    over the exact bytes received with ``cryptography`` (RSASSA-PKCS1-v1_5, SHA-256) rather than
    decoding everything a second time.
    """
    header_part, payload_part, signature_part = token.raw.split(".")
    if not all(_BASE64URL.fullmatch(part) for part in (header_part, payload_part, signature_part)):
        raise LaunchError("malformed_id_token", "a part is not base64url")
    try:
        signature = base64.urlsafe_b64decode(signature_part + "=" * (-len(signature_part) % 4))
        public_key.verify(signature, f"{header_part}.{payload_part}".encode("ascii"), _PKCS1V15, _SHA256)
    except (InvalidSignature, binascii.Error, ValueError):
        raise LaunchError("bad_signature") from None
    claims = token.claims
    exp, iat = _number(claims, "exp"), _number(claims, "iat")
    now = time.time() if now is None else now
    if exp <= now - leeway:
        raise LaunchError("token_expired", f"exp={exp}")
    if iat > now + leeway:
        raise LaunchError("token_not_yet_valid", f"iat={iat}")
    if "nbf" in claims and _number(claims, "nbf") > now + leeway:
        raise LaunchError("token_not_yet_valid", f"nbf={claims['nbf']}")
    return claims


def check_audience(claims: Mapping[str, Any], client_id: str) -> None:
    """``aud`` (string or list) must name our client; several audiences need a matching ``azp``."""
    aud = claims.get("aud")
    audiences = [aud] if isinstance(aud, str) else aud
    if not isinstance(audiences, list) or not all(isinstance(a, str) for a in audiences) or not audiences:
        raise LaunchError("wrong_audience", f"aud={aud!r}")
    if client_id not in audiences:
        raise LaunchError("wrong_audience", f"aud={aud!r}, client_id={client_id!r}")
    azp = claims.get("azp")
    if len(audiences) > 1 and azp is None:
        raise LaunchError("missing_azp", f"aud={aud!r}")
    if azp is not None and azp != client_id:
        raise LaunchError("wrong_azp", f"azp={azp!r}, client_id={client_id!r}")


def check_claims(
    claims: Mapping[str, Any],
    *,
    issuer: str,
    client_id: str,
    deployment_ids: Iterable[str],
    nonce: str,
    target_link_uri: str,
) -> None:
    """Every check on trusted claims that does not need the network or the database."""
    if claims.get("iss") != issuer:
        raise LaunchError("wrong_issuer", f"iss={claims.get('iss')!r}, expected {issuer!r}")
    check_audience(claims, client_id)
    token_nonce = claims.get("nonce")
    if not token_nonce:
        raise LaunchError("missing_nonce")
    if token_nonce != nonce:
        raise LaunchError("nonce_mismatch")
    if claims.get(VERSION) != LTI_VERSION:
        raise LaunchError("wrong_version", f"version={claims.get(VERSION)!r}")
    message_type = claims.get(MESSAGE_TYPE)
    if message_type not in SUPPORTED_MESSAGE_TYPES:
        raise LaunchError("wrong_message_type", f"message_type={message_type!r}")
    deployment_id = claims.get(DEPLOYMENT_ID)
    if not deployment_id or deployment_id not in set(deployment_ids):
        raise LaunchError("unknown_deployment", f"deployment_id={deployment_id!r}")
    if claims.get(TARGET_LINK_URI) != target_link_uri:
        raise LaunchError(
            "target_link_uri_mismatch",
            f"target_link_uri={claims.get(TARGET_LINK_URI)!r}, login asked {target_link_uri!r}",
        )
    if not claims.get("sub"):
        raise LaunchError("anonymous_launch")
