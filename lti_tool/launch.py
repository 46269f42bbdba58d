"""Launch validation and recording, free of Flask: form fields and cookies in, LaunchContext out.

The order is chosen so nothing is written until everything has passed: read the token, check
the signed login state it answers, check the browser binding, fetch the platform's key, verify
the signature and every claim, and only then, in one transaction, record the person, course,
resource link and launch. The launch's id is its login's id, so recording it uses the login up
(single-use state and nonce). A refused launch changes no stored data.
"""

from __future__ import annotations

import base64
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pylti1p3.exception import LtiException
from pylti1p3.message_validators import get_validators
from sqlalchemy import JSON
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeEngine

from . import id_token
from .context import LaunchContext
from .db import Database, UTCDateTime
from .errors import LaunchError
from .login_states import LoginStates, PendingLogin, state_id
from .models import Course, Launch, ResourceLink, User, utcnow
from .platform_keys import PlatformKeys
from .platforms import PlatformDirectory, PlatformInfo, get_platform
from .roles import map_roles
from .settings import Settings

log = logging.getLogger(__name__)

STATE_COOKIE_PREFIX = "lti_state_"


@dataclass(frozen=True)
class ValidatedLaunch:
    """A launch whose every check passed, not yet recorded."""

    platform: PlatformInfo
    login: PendingLogin
    claims: dict[str, Any]
    # The claims as the JSON text the platform signed, stored with the launch as they came.
    claims_json: str


def state_cookie_name(state: str) -> str:
    """The cookie holding the browser secret of the login a state (or its id) stands for."""
    return STATE_COOKIE_PREFIX + state_id(state)


class BrowserBindingMissing(LaunchError):
    """The state cookie did not come back: the browser blocks cookies in this frame."""

    def __init__(self, login: PendingLogin, id_token_raw: str):
        super().__init__("state_cookie_missing")
        self.login = login
        self.id_token = id_token_raw


def _signed_payload(raw: str) -> str:
    """The token's payload as the JSON text the platform signed (a JWT's JSON is UTF-8)."""
    part = raw.split(".")[1]
    try:
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)).decode("utf-8")
    except UnicodeDecodeError:
        raise LaunchError("malformed_id_token", "payload is not UTF-8") from None


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

    def __init__(
        self,
        platforms: PlatformDirectory,
        keys: PlatformKeys,
        login_states: LoginStates,
        settings: Settings,
    ):
        self._platforms = platforms
        self._keys = keys
        self._login_states = login_states
        self._settings = settings

    def validate(self, form: Mapping[str, str], cookies: Mapping[str, str]) -> ValidatedLaunch:
        raw = form.get("id_token")
        token = id_token.read_unverified(raw, self._settings.launch.max_id_token_bytes)
        state = form.get("state")
        if not state:
            raise LaunchError("missing_state")
        login = self._login_states.read(state)

        browser_secret = cookies.get(state_cookie_name(login.id)) or form.get("lti_storage_value")
        if not browser_secret:
            raise BrowserBindingMissing(login, token.raw)
        if not login.bound_to(browser_secret):
            raise LaunchError("state_mismatch")

        platform = self._platforms.get(login.platform_id)
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
        return ValidatedLaunch(platform, login, claims, _signed_payload(token.raw))


class _DriverStatement:
    """A statement of the launch path, run on the database driver's own cursor.

    SQLAlchemy spends about 30 µs on each ``execute`` before the database sees the statement,
    more than SQLite takes to run it, and a launch runs four. The text is put into the driver's
    parameter style once per dialect, and typed values go through SQLAlchemy's own bind
    processors, so rows are stored exactly as the ORM stores them.
    """

    def __init__(self, sql: str, **types: TypeEngine):
        self._sql = sql
        self._types = types
        self._prepared: dict[tuple[str, str], tuple[str, list]] = {}

    def _for(self, dialect: Dialect) -> tuple[str, list]:
        key = (dialect.name, dialect.driver)
        prepared = self._prepared.get(key)
        if prepared is None:
            if dialect.name == "sqlite":  # sqlite3 takes :name whatever its declared paramstyle
                sql = self._sql
            elif dialect.paramstyle == "pyformat":
                sql = _NAMED_PARAMETER.sub(r"%(\1)s", self._sql)
            else:
                raise NotImplementedError(f"launch recording on {dialect.name}+{dialect.driver}")
            processors = []
            for name, type_ in self._types.items():
                process = type_.dialect_impl(dialect).bind_processor(dialect)
                if process is not None:
                    processors.append((name, process))
            prepared = self._prepared[key] = (sql, processors)
        return prepared

    def run(self, cursor: Any, dialect: Dialect, params: dict[str, Any]) -> Any:
        sql, processors = self._for(dialect)
        for name, process in processors:
            params[name] = process(params[name])
        cursor.execute(sql, params)
        return cursor


_NAMED_PARAMETER = re.compile(r"(?<![:\w]):(\w+)")
_UTC = UTCDateTime()

# ON CONFLICT ... DO UPDATE ... RETURNING reads the same on SQLite (3.35+) and PostgreSQL.
_UPSERT_USER = _DriverStatement(
    """
    INSERT INTO users (platform_id, sub, name, given_name, family_name, email, created_at, last_launch_at)
    VALUES (:platform_id, :sub, :name, :given_name, :family_name, :email, :now, :now)
    ON CONFLICT (platform_id, sub) DO UPDATE SET
        name = COALESCE(excluded.name, users.name),
        given_name = COALESCE(excluded.given_name, users.given_name),
        family_name = COALESCE(excluded.family_name, users.family_name),
        email = COALESCE(excluded.email, users.email),
        last_launch_at = excluded.last_launch_at
    RETURNING id, name
    """,
    now=_UTC,
)

_UPSERT_COURSE = _DriverStatement(
    """
    INSERT INTO courses (platform_id, deployment_id, context_id, title, label, created_at)
    VALUES (:platform_id, :deployment_id, :context_id, :title, :label, :now)
    ON CONFLICT (platform_id, context_id) DO UPDATE SET
        title = COALESCE(excluded.title, courses.title),
        label = COALESCE(excluded.label, courses.label)
    RETURNING id, title
    """,
    now=_UTC,
)

_UPSERT_LINK = _DriverStatement(
    """
    INSERT INTO resource_links (platform_id, course_id, resource_link_id, title, custom, created_at)
    VALUES (:platform_id, :course_id, :resource_link_id, :title, :custom, :now)
    ON CONFLICT (platform_id, resource_link_id) DO UPDATE SET
        course_id = COALESCE(excluded.course_id, resource_links.course_id),
        title = COALESCE(excluded.title, resource_links.title),
        custom = excluded.custom
    RETURNING id, title
    """,
    now=_UTC,
    custom=JSON(),
)

# The launch's id is its login's: a second launch from the same login inserts nothing. The
# claims go in as the JSON text the platform signed.
_INSERT_LAUNCH = _DriverStatement(
    """
    INSERT INTO launches (id, platform_id, user_id, course_id, resource_link_id, deployment_id,
                          message_type, role, roles, claims, created_at, expires_at)
    VALUES (:id, :platform_id, :user_id, :course_id, :resource_link_id, :deployment_id,
            :message_type, :role, :roles, :claims, :now, :expires_at)
    ON CONFLICT (id) DO NOTHING
    """,
    now=_UTC,
    expires_at=_UTC,
    roles=JSON(),
)


def _text_claim(claims: Mapping[str, Any], name: str) -> str | None:
    value = claims.get(name)
    return value if isinstance(value, str) and value else None


def record(db: Database, launch: ValidatedLaunch, settings: Settings) -> LaunchContext:
    """Record the person, course, resource link and launch in one transaction (four statements).

    The launch row takes the login's id, so a login already used (a replay, or the losing copy
    of two racing launches) inserts no row and the whole transaction is rolled back.
    """
    claims = launch.claims
    platform = launch.platform
    deployment_id = claims[id_token.DEPLOYMENT_ID]
    lti_roles = [r for r in claims.get(id_token.ROLES) or [] if isinstance(r, str)]
    role = map_roles(lti_roles)
    now = utcnow()
    launch_id = launch.login.id
    keep_names, keep_emails = settings.keep_names, settings.keep_emails
    context_claim = claims.get(id_token.CONTEXT)
    context_claim = context_claim if isinstance(context_claim, Mapping) and context_claim.get("id") else None
    link_claim = claims.get(id_token.RESOURCE_LINK)
    link_claim = link_claim if isinstance(link_claim, Mapping) and link_claim.get("id") else None
    custom = claims.get(id_token.CUSTOM)
    custom = {str(k): v for k, v in custom.items()} if isinstance(custom, Mapping) else {}
    dialect = db.engine.dialect
    connection = db.engine.raw_connection()
    try:
        cursor = connection.cursor()
        user = _UPSERT_USER.run(
            cursor,
            dialect,
            {
                "platform_id": platform.id,
                "sub": claims["sub"],
                "name": _text_claim(claims, "name") if keep_names else None,
                "given_name": _text_claim(claims, "given_name") if keep_names else None,
                "family_name": _text_claim(claims, "family_name") if keep_names else None,
                "email": _text_claim(claims, "email") if keep_emails else None,
                "now": now,
            },
        ).fetchone()
        course = None
        if context_claim:
            course = _UPSERT_COURSE.run(
                cursor,
                dialect,
                {
                    "platform_id": platform.id,
                    "deployment_id": deployment_id,
                    "context_id": str(context_claim["id"]),
                    "title": _text_claim(context_claim, "title"),
                    "label": _text_claim(context_claim, "label"),
                    "now": now,
                },
            ).fetchone()
        link = None
        if link_claim:
            link = _UPSERT_LINK.run(
                cursor,
                dialect,
                {
                    "platform_id": platform.id,
                    "course_id": course[0] if course else None,
                    "resource_link_id": str(link_claim["id"]),
                    "title": _text_claim(link_claim, "title"),
                    "custom": custom,
                    "now": now,
                },
            ).fetchone()
        inserted = _INSERT_LAUNCH.run(
            cursor,
            dialect,
            {
                "id": launch_id,
                "platform_id": platform.id,
                "user_id": user[0],
                "course_id": course[0] if course else None,
                "resource_link_id": link[0] if link else None,
                "deployment_id": deployment_id,
                "message_type": claims[id_token.MESSAGE_TYPE],
                "role": role,
                "roles": lti_roles,
                "claims": launch.claims_json,
                "now": now,
                "expires_at": now + timedelta(seconds=settings.launch.session_ttl_seconds),
            },
        ).rowcount
        if inserted != 1:
            raise LaunchError("replayed_launch", f"login {launch_id} already launched")
        connection.commit()
    except BaseException:
        connection.rollback()
        raise
    finally:
        connection.close()
    return LaunchContext(
        launch_id=launch_id,
        platform_pk=platform.id,
        issuer=platform.issuer,
        client_id=platform.client_id,
        deployment_id=deployment_id,
        user_pk=user[0],
        sub=claims["sub"],
        role=role,
        lti_roles=tuple(lti_roles),
        message_type=claims[id_token.MESSAGE_TYPE],
        name=user[1],
        course_pk=course[0] if course else None,
        context_id=str(context_claim["id"]) if course else None,
        course_title=course[1] if course else None,
        resource_link_pk=link[0] if link else None,
        resource_link_id=str(link_claim["id"]) if link else None,
        resource_title=link[1] if link else None,
        custom=custom if link else {},
    )


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
