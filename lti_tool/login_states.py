"""OIDC login records: state, single-use nonce, the browser binding and the target asked for.

A login is written when the platform initiates it and consumed, exactly once, by the launch
that completes it. Consumption is one conditional UPDATE, so two copies of the same launch
racing each other (or a replay) cannot both succeed, on SQLite or PostgreSQL.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.orm import Session

from .db import Database
from .errors import LaunchError
from .models import LoginState, utcnow

# Built once: the login and launch run these on every launch (see lti_tool/launch.py).
_TABLE = LoginState.__table__
_INSERT = insert(_TABLE)
_FIND = select(_TABLE).where(_TABLE.c.state == bindparam("state"))
_CONSUME = (
    update(_TABLE)
    .where(
        _TABLE.c.state == bindparam("match_state"),
        _TABLE.c.consumed_at.is_(None),
        _TABLE.c.expires_at > bindparam("now"),
    )
    .values(consumed_at=bindparam("now"))
)


def binding_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class NewLogin:
    state: str
    nonce: str
    browser_secret: str


@dataclass(frozen=True)
class PendingLogin:
    state: str
    nonce: str
    platform_id: int
    browser_binding: str
    target_link_uri: str
    login_params: dict
    storage_target: str | None

    def bound_to(self, secret: str | None) -> bool:
        return bool(secret) and secrets.compare_digest(binding_hash(secret), self.browser_binding)


def start(
    db: Database,
    *,
    platform_id: int,
    target_link_uri: str,
    login_params: dict,
    storage_target: str | None,
    ttl_seconds: int,
) -> NewLogin:
    """Record a new login and return the values to hand to the browser and the platform."""
    login = NewLogin(secrets.token_urlsafe(24), secrets.token_urlsafe(24), secrets.token_urlsafe(32))
    now = utcnow()
    with db.engine.begin() as conn:
        conn.execute(
            _INSERT,
            {
                "state": login.state,
                "nonce": login.nonce,
                "platform_id": platform_id,
                "browser_binding": binding_hash(login.browser_secret),
                "target_link_uri": target_link_uri,
                "login_params": login_params,
                "storage_target": storage_target,
                "created_at": now,
                "expires_at": now + timedelta(seconds=ttl_seconds),
            },
        )
    return login


def find(db: Database, state: str) -> PendingLogin:
    """The pending login for a state, or the reason it cannot be used."""
    with db.engine.connect() as conn:
        row = conn.execute(_FIND, {"state": state}).one_or_none()
        if row is None:
            raise LaunchError("unknown_state", f"state={state[:12]}…")
        if row.consumed_at is not None:
            raise LaunchError("replayed_launch", f"state consumed at {row.consumed_at.isoformat()}")
        if row.expires_at <= utcnow():
            raise LaunchError("login_expired", f"expired at {row.expires_at.isoformat()}")
        return PendingLogin(
            row.state,
            row.nonce,
            row.platform_id,
            row.browser_binding,
            row.target_link_uri,
            dict(row.login_params or {}),
            row.storage_target,
        )


def consume(session: Session, state: str) -> None:
    """Mark the login used inside the caller's transaction; a second use raises replayed_launch."""
    now = utcnow()
    result = session.execute(_CONSUME, {"match_state": state, "now": now})
    if result.rowcount != 1:
        raise LaunchError("replayed_launch", "login state already consumed")


def purge(db: Database, older_than: timedelta = timedelta(days=1)) -> int:
    """Delete logins that expired long enough ago that no launch can refer to them."""
    with db.transaction() as session:
        result = session.execute(delete(LoginState).where(LoginState.expires_at < utcnow() - older_than))
        return result.rowcount or 0
