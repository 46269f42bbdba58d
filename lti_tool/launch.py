"""Launch validation and recording, free of Flask: form fields and cookies in, LaunchContext out.

The order is chosen so nothing is written until everything has passed: read the token, find the
login it answers, check the browser binding, fetch the platform's key, verify the signature and
every claim, and only then, in one transaction, consume the login (single-use nonce) and record
the person, course, resource link and launch. A refused launch changes no stored data.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pylti1p3.exception import LtiException
from pylti1p3.message_validators import get_validators
from sqlalchemy import select
from sqlalchemy.orm import Session

from . import id_token, login_states
from .context import LaunchContext
from .db import Database
from .errors import LaunchError
from .models import Course, Launch, ResourceLink, User, utcnow
from .platform_keys import PlatformKeys
from .platforms import PlatformInfo, get_platform
from .roles import map_roles
from .settings import Settings

log = logging.getLogger(__name__)

STATE_COOKIE_PREFIX = "lti_state_"


@dataclass(frozen=True)
class ValidatedLaunch:
    """A launch whose every check passed, not yet recorded."""

    platform: PlatformInfo
    login: login_states.PendingLogin
    claims: dict[str, Any]


def state_cookie_name(state: str) -> str:
    return STATE_COOKIE_PREFIX + state


class BrowserBindingMissing(LaunchError):
    """The state cookie did not come back: the browser blocks cookies in this frame."""

    def __init__(self, login: login_states.PendingLogin, id_token_raw: str):
        super().__init__("state_cookie_missing")
        self.login = login
        self.id_token = id_token_raw


def run_message_validators(claims: Mapping[str, Any]) -> None:
    """pylti1p3's per-message-type claim checks (resource link id, deep linking settings, ...)."""
    for validator in get_validators():
        if validator.can_validate(claims):
            try:
                validator.validate(claims)
            except LtiException as exc:
                raise LaunchError("invalid_message", str(exc)) from None
            return
    raise LaunchError("wrong_message_type", f"message_type={claims.get(id_token.MESSAGE_TYPE)!r}")


class LaunchValidator:
    """Validates a launch POST against the login it answers."""

    def __init__(self, db: Database, keys: PlatformKeys, settings: Settings):
        self._db = db
        self._keys = keys
        self._settings = settings

    def validate(self, form: Mapping[str, str], cookies: Mapping[str, str]) -> ValidatedLaunch:
        raw = form.get("id_token")
        token = id_token.read_unverified(raw, self._settings.launch.max_id_token_bytes)
        state = form.get("state")
        if not state:
            raise LaunchError("missing_state")
        if len(state) > 128:
            raise LaunchError("unknown_state", "state longer than any the tool issues")
        login = login_states.find(self._db, state)

        browser_secret = cookies.get(state_cookie_name(state)) or form.get("lti_storage_value")
        if not browser_secret:
            raise BrowserBindingMissing(login, token.raw)
        if not login.bound_to(browser_secret):
            raise LaunchError("state_mismatch")

        platform = get_platform(self._db, login.platform_id)
        if platform is None:
            raise LaunchError("unknown_platform", "registration removed after login")
        if not platform.approved:
            raise LaunchError("platform_not_approved", f"platform id {platform.id}")
        # Cheap claim checks first, so a token for another issuer never costs a JWKS fetch.
        if token.claims.get("iss") != platform.issuer:
            raise LaunchError(
                "wrong_issuer",
                f"iss={token.claims.get('iss')!r}, expected {platform.issuer!r}",
            )

        public_key = self._keys.key_for(platform.key_set_url, token.kid)
        claims = id_token.verify_signature(token, public_key, leeway=self._settings.launch.leeway_seconds)
        id_token.check_claims(
            claims,
            issuer=platform.issuer,
            client_id=platform.client_id,
            deployment_ids=platform.deployment_ids,
            nonce=login.nonce,
            target_link_uri=login.target_link_uri,
        )
        run_message_validators(claims)
        return ValidatedLaunch(platform, login, claims)


def _upsert_user(session: Session, platform_id: int, claims: Mapping[str, Any], settings: Settings) -> User:
    user = session.scalar(select(User).where(User.platform_id == platform_id, User.sub == claims["sub"]))
    if user is None:
        user = User(platform_id=platform_id, sub=claims["sub"])
        session.add(user)
    if settings.keep_names:
        user.name = claims.get("name") or user.name
        user.given_name = claims.get("given_name") or user.given_name
        user.family_name = claims.get("family_name") or user.family_name
    if settings.keep_emails:
        user.email = claims.get("email") or user.email
    user.last_launch_at = utcnow()
    return user


def _upsert_course(
    session: Session, platform_id: int, deployment_id: str, claim: Mapping[str, Any]
) -> Course | None:
    context_id = claim.get("id") if isinstance(claim, Mapping) else None
    if not context_id:
        return None
    course = session.scalar(
        select(Course).where(Course.platform_id == platform_id, Course.context_id == context_id)
    )
    if course is None:
        course = Course(platform_id=platform_id, context_id=context_id, deployment_id=deployment_id)
        session.add(course)
    course.title = claim.get("title") or course.title
    course.label = claim.get("label") or course.label
    return course


def _upsert_resource_link(
    session: Session, platform_id: int, course: Course | None, claims: Mapping[str, Any]
) -> ResourceLink | None:
    claim = claims.get(id_token.RESOURCE_LINK) or {}
    link_id = claim.get("id") if isinstance(claim, Mapping) else None
    if not link_id:
        return None
    link = session.scalar(
        select(ResourceLink).where(
            ResourceLink.platform_id == platform_id,
            ResourceLink.resource_link_id == link_id,
        )
    )
    if link is None:
        link = ResourceLink(platform_id=platform_id, resource_link_id=link_id)
        session.add(link)
    link.course_id = course.id if course else link.course_id
    link.title = claim.get("title") or link.title
    custom = claims.get(id_token.CUSTOM)
    link.custom = dict(custom) if isinstance(custom, Mapping) else {}
    return link


def record(db: Database, launch: ValidatedLaunch, settings: Settings) -> LaunchContext:
    """Consume the login and record the launch, all in one transaction."""
    claims = launch.claims
    platform = launch.platform
    deployment_id = claims[id_token.DEPLOYMENT_ID]
    lti_roles = [r for r in claims.get(id_token.ROLES) or [] if isinstance(r, str)]
    role = map_roles(lti_roles)
    with db.transaction() as session:
        login_states.consume(session, launch.login.state)
        user = _upsert_user(session, platform.id, claims, settings)
        course = _upsert_course(session, platform.id, deployment_id, claims.get(id_token.CONTEXT) or {})
        session.flush()
        link = _upsert_resource_link(session, platform.id, course, claims)
        session.flush()
        now = utcnow()
        row = Launch(
            id=str(uuid.uuid4()),
            platform_id=platform.id,
            user_id=user.id,
            course_id=course.id if course else None,
            resource_link_id=link.id if link else None,
            deployment_id=deployment_id,
            message_type=claims[id_token.MESSAGE_TYPE],
            role=role,
            roles=lti_roles,
            claims=dict(claims),
            created_at=now,
            expires_at=now + timedelta(seconds=settings.launch.session_ttl_seconds),
        )
        session.add(row)
        session.flush()
        return _context(row, platform, user, course, link)


def _context(
    row: Launch,
    platform: PlatformInfo,
    user: User,
    course: Course | None,
    link: ResourceLink | None,
) -> LaunchContext:
    return LaunchContext(
        launch_id=row.id,
        platform_pk=platform.id,
        issuer=platform.issuer,
        client_id=platform.client_id,
        deployment_id=row.deployment_id,
        user_pk=user.id,
        sub=user.sub,
        role=row.role,
        lti_roles=tuple(row.roles or ()),
        message_type=row.message_type,
        name=user.name,
        course_pk=course.id if course else None,
        context_id=course.context_id if course else None,
        course_title=course.title if course else None,
        resource_link_pk=link.id if link else None,
        resource_link_id=link.resource_link_id if link else None,
        resource_title=link.title if link else None,
        custom=dict(link.custom or {}) if link else {},
    )


def load(db: Database, launch_id: str) -> LaunchContext:
    """The context of an earlier launch, for follow-up requests in the same activity."""
    with db.sessions() as session:
        row = session.get(Launch, launch_id)
        if row is None or row.expires_at <= utcnow():
            raise LaunchError("launch_expired", f"launch {launch_id}")
        platform = get_platform(db, row.platform_id)
        user = session.get(User, row.user_id)
        course = session.get(Course, row.course_id) if row.course_id else None
        link = session.get(ResourceLink, row.resource_link_id) if row.resource_link_id else None
        if platform is None or user is None or user.platform_id != row.platform_id:
            raise LaunchError("launch_expired", f"launch {launch_id} lost its platform or user")
        return _context(row, platform, user, course, link)


def load_claims(db: Database, launch_id: str) -> dict[str, Any]:
    """The id_token claims of an earlier launch (deep linking settings, service endpoints)."""
    with db.sessions() as session:
        row = session.get(Launch, launch_id)
        if row is None or row.expires_at <= utcnow():
            raise LaunchError("launch_expired", f"launch {launch_id}")
        return dict(row.claims or {})
