"""LTI Dynamic Registration 1.0: a VLE administrator pastes one URL and the tool registers itself.

Built on pylti1p3next's DynamicRegistration, with what it leaves out: the platform's
openid-configuration is validated (issuer prefix, required endpoints, size) instead of
asserted, every call has a timeout, and the endpoint is guarded by one-time invites (or open
mode with approval), so a stranger cannot register a platform with the tool.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import requests
from pylti1p3.dynamic_registration import DynamicRegistration
from sqlalchemy import select, update

from .db import Database
from .http import make_http_session
from .models import Deployment, Platform, RegistrationInvite, utcnow
from .platforms import PlatformInfo
from .settings import Settings

PLATFORM_CONFIGURATION = "https://purl.imsglobal.org/spec/lti-platform-configuration"
TOOL_CONFIGURATION = "https://purl.imsglobal.org/spec/lti-tool-configuration"
MAX_DOCUMENT_BYTES = 256 * 1024

SCOPES = (
    "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
    "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly",
    "https://purl.imsglobal.org/spec/lti-ags/scope/score",
    "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly",
)


class RegistrationError(Exception):
    """Registration could not complete; the message is for the VLE administrator."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


# -- invites -----------------------------------------------------------------------------------


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_invite(db: Database, *, ttl_days: int, auto_approve: bool = False, note: str = "") -> str:
    """A new one-time invite token (only its hash is stored)."""
    token = secrets.token_urlsafe(24)
    with db.transaction() as session:
        session.add(
            RegistrationInvite(
                token_hash=_hash(token),
                note=note,
                auto_approve=auto_approve,
                expires_at=utcnow() + timedelta(days=ttl_days),
            )
        )
    return token


@dataclass(frozen=True)
class Admission:
    """Whether a registration attempt may proceed, and whether it is approved at once."""

    invite_id: int | None
    auto_approve: bool


def admit(db: Database, settings: Settings, invite: str | None) -> Admission:
    """Check the invite (or open mode) before anything is fetched or stored."""
    if invite:
        with db.sessions() as session:
            row = session.scalar(select(RegistrationInvite).where(RegistrationInvite.token_hash == _hash(invite)))
            if row is None:
                raise RegistrationError(
                    "This registration link is not valid. Ask the tool's administrator for a new one.", 403
                )
            if row.used_at is not None:
                raise RegistrationError("This registration link has already been used. Ask for a new one.", 403)
            if row.expires_at <= utcnow():
                raise RegistrationError("This registration link has expired. Ask for a new one.", 403)
            return Admission(row.id, row.auto_approve or settings.registration.auto_approve)
    if settings.registration.mode == "open":
        return Admission(None, settings.registration.auto_approve)
    raise RegistrationError(
        "This tool only accepts registrations through an invitation link. Ask the tool's "
        "administrator to run `npqsl-lti platform invite` and send you the link.",
        403,
    )


# -- the registration itself -------------------------------------------------------------------


def _get_json(http: requests.Session, url: str, what: str) -> dict[str, Any]:
    try:
        response = http.get(url, headers={"Accept": "application/json"})
    except requests.RequestException as exc:
        raise RegistrationError(
            f"The tool could not fetch the platform's {what} from {url} ({exc.__class__.__name__}).", 502
        ) from None
    if response.status_code != 200:
        raise RegistrationError(f"The platform's {what} at {url} answered HTTP {response.status_code}.", 502)
    if len(response.content) > MAX_DOCUMENT_BYTES:
        raise RegistrationError(f"The platform's {what} is larger than {MAX_DOCUMENT_BYTES} bytes.", 502)
    try:
        document = response.json()
    except ValueError:
        raise RegistrationError(f"The platform's {what} at {url} is not JSON.", 502) from None
    if not isinstance(document, dict):
        raise RegistrationError(f"The platform's {what} is not a JSON object.", 502)
    return document


def validate_openid_configuration(config: dict[str, Any], config_url: str, *, allow_http: bool) -> None:
    """The checks the spec asks for, each with its own message."""
    issuer = config.get("issuer")
    if not isinstance(issuer, str) or not issuer:
        raise RegistrationError("The platform's configuration has no issuer.")
    if not config_url.startswith(issuer):
        raise RegistrationError(
            f"The platform's issuer {issuer} does not match the configuration URL {config_url}; "
            "the configuration must be served from under the issuer."
        )
    for field in ("authorization_endpoint", "token_endpoint", "jwks_uri", "registration_endpoint"):
        value = config.get(field)
        parts = urlsplit(value) if isinstance(value, str) else None
        if not parts or parts.scheme not in (("http", "https") if allow_http else ("https",)) or not parts.netloc:
            raise RegistrationError(f"The platform's configuration has no usable {field} ({value!r}).")
    if not isinstance(config.get(PLATFORM_CONFIGURATION), dict):
        raise RegistrationError("The platform's configuration is not an LTI platform configuration.")


class ToolRegistration(DynamicRegistration):
    """pylti1p3next's registration flow, filled in from the tool's settings and URLs."""

    def __init__(
        self, *, settings: Settings, urls: dict[str, str], config_url: str, registration_token: str | None
    ):
        self._settings = settings
        self._urls = urls
        self._config_url = config_url
        self._registration_token = registration_token
        self._config: dict[str, Any] | None = None
        self.client_name = settings.registration.tool_name
        self.description = settings.registration.tool_description

    def get_request_session(self) -> requests.Session:
        return make_http_session(self._settings.http_timeout)

    def get_initiate_login_uri(self) -> str:
        return self._urls["login"]

    def get_jwks_uri(self) -> str:
        return self._urls["jwks"]

    def get_redirect_uris(self) -> list[str]:
        return [self._urls["launch"]]

    def get_target_link_uri(self) -> str:
        return self._urls["launch"]

    def get_domain(self) -> str:
        return urlsplit(self._urls["launch"]).netloc

    def get_logo_uri(self) -> str:
        return self._urls["logo"]

    def get_openid_configuration_endpoint(self) -> str:
        return self._config_url

    def get_registration_token(self) -> str | None:
        return self._registration_token

    def get_claims(self) -> list[str]:
        claims = ["iss", "sub", "name", "given_name", "family_name"]
        return claims + ["email"] if self._settings.keep_emails else claims

    def get_scopes(self) -> list[str]:
        offered = (self._config or {}).get("scopes_supported")
        if isinstance(offered, list):
            return [s for s in SCOPES if s in offered]
        return list(SCOPES)

    def get_messages(self) -> list[dict[str, Any]]:
        return [
            {"type": "LtiResourceLinkRequest", "target_link_uri": self._urls["launch"]},
            {
                "type": "LtiDeepLinkingRequest",
                "target_link_uri": self._urls["launch"],
                "label": f"Add {self.client_name} activities",
            },
        ]

    def get_openid_configuration(self) -> dict[str, Any]:
        with self.get_request_session() as http:
            config = _get_json(http, self._config_url, "configuration")
        validate_openid_configuration(
            config, self._config_url, allow_http=self._settings.is_development or _is_loopback(self._config_url)
        )
        self._config = config
        return config

    def register_with_platform(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """Fetch the configuration, POST our registration; return (configuration, response)."""
        config = self.get_openid_configuration()
        body = self.lti_registration_data()
        headers = {"Accept": "application/json", "Content-Type": "application/json"}
        if self._registration_token:
            headers["Authorization"] = "Bearer " + self._registration_token
        with self.get_request_session() as http:
            try:
                response = http.post(config["registration_endpoint"], data=json.dumps(body), headers=headers)
            except requests.RequestException as exc:
                raise RegistrationError(
                    f"The platform's registration endpoint could not be reached ({exc.__class__.__name__}).", 502
                ) from None
        if response.status_code not in (200, 201):
            raise RegistrationError(
                f"The platform refused the registration (HTTP {response.status_code}): {response.text[:300]}", 502
            )
        try:
            answer = response.json()
        except ValueError:
            raise RegistrationError("The platform's registration answer is not JSON.", 502) from None
        if not isinstance(answer, dict) or not answer.get("client_id"):
            raise RegistrationError("The platform's registration answer has no client_id.", 502)
        return config, answer


def _is_loopback(url: str) -> bool:
    return (urlsplit(url).hostname or "") in ("127.0.0.1", "localhost", "::1")


def store(db: Database, config: dict[str, Any], answer: dict[str, Any], admission: Admission) -> PlatformInfo:
    """Save (or update) the platform and consume the invite, in one transaction."""
    tool_config = answer.get(TOOL_CONFIGURATION) or {}
    deployment_id = tool_config.get("deployment_id") if isinstance(tool_config, dict) else None
    platform_config = config.get(PLATFORM_CONFIGURATION) or {}
    name = platform_config.get("product_family_code") or urlsplit(config["issuer"]).netloc
    with db.transaction() as session:
        if admission.invite_id is not None:
            consumed = session.execute(
                update(RegistrationInvite)
                .where(RegistrationInvite.id == admission.invite_id, RegistrationInvite.used_at.is_(None))
                .values(used_at=utcnow())
            )
            if consumed.rowcount != 1:
                raise RegistrationError("This registration link has already been used. Ask for a new one.", 403)
        row = session.scalar(
            select(Platform).where(
                Platform.issuer == config["issuer"], Platform.client_id == str(answer["client_id"])
            )
        )
        if row is None:
            row = Platform(
                issuer=config["issuer"], client_id=str(answer["client_id"]), approved=admission.auto_approve
            )
            session.add(row)
        row.name = str(name)[:255]
        row.auth_login_url = config["authorization_endpoint"]
        row.auth_token_url = config["token_endpoint"]
        row.key_set_url = config["jwks_uri"]
        row.auth_audience = config.get("authorization_server") or None
        if deployment_id and str(deployment_id) not in row.deployment_ids:
            row.deployments.append(Deployment(deployment_id=str(deployment_id)))
        session.flush()
        if admission.invite_id is not None:
            session.execute(
                update(RegistrationInvite)
                .where(RegistrationInvite.id == admission.invite_id)
                .values(platform_id=row.id)
            )
        return PlatformInfo.from_row(row)
