"""LRS credentials: HTTP Basic key/secret pairs with a scope (read, write or all).

Only a SHA-256 of each secret is kept: secrets are 256 random bits, so a fast hash is as strong
as a slow one here, and checking a request costs microseconds.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select, update

from lti_tool.db import Database
from lti_tool.models import utcnow

from .models import LrsKey

SCOPES = ("read", "write", "all")
CACHE_SECONDS = 5.0


class UnknownKey(LookupError):
    """An unknown or already revoked key."""


@dataclass(frozen=True)
class LrsCredential:
    key: str
    scope: str
    name: str
    created_at: datetime
    revoked_at: datetime | None = None

    def allows(self, method: str) -> bool:
        """read keys may only read; write keys may only write; all keys may do both."""
        reading = method in ("GET", "HEAD")
        return self.scope == "all" or (self.scope == "read") == reading

    def authority(self, home_page: str) -> dict:
        """The agent statements sent with this key are stored under."""
        agent = {"objectType": "Agent", "account": {"homePage": home_page, "name": self.key}}
        if self.name:
            agent["name"] = self.name
        return agent


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_key(db: Database, scope: str, name: str = "") -> tuple[str, str]:
    """A new key and its secret (shown once: only the secret's hash is stored)."""
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {', '.join(SCOPES)}, not {scope!r}")
    key, secret = secrets.token_hex(10), secrets.token_urlsafe(32)
    with db.transaction() as session:
        session.execute(
            insert(LrsKey.__table__).values(
                key=key, secret_hash=_hash(secret), scope=scope, name=name, created_at=utcnow()
            )
        )
    return key, secret


def list_keys(db: Database) -> list[LrsCredential]:
    table = LrsKey.__table__
    with db.sessions() as session:
        rows = session.execute(select(table).order_by(table.c.id)).all()
    return [LrsCredential(r.key, r.scope, r.name, r.created_at, r.revoked_at) for r in rows]


def revoke_key(db: Database, key: str) -> None:
    table = LrsKey.__table__
    with db.transaction() as session:
        done = session.execute(
            update(table).where(table.c.key == key, table.c.revoked_at.is_(None)).values(revoked_at=utcnow())
        )
        if done.rowcount != 1:
            raise UnknownKey(f"no active LRS key {key!r}")


class Authenticator:
    """Checks Authorization headers against the keys, remembering answers for a few seconds."""

    def __init__(self, db: Database):
        self.db = db
        self._cache: dict[str, tuple[float, LrsCredential | None]] = {}

    def check(self, authorization: str | None) -> LrsCredential | None:
        """The credential a Basic Authorization header proves, or None."""
        if not authorization or not authorization[:6].lower() == "basic ":
            return None
        now = time.monotonic()
        cached = self._cache.get(authorization)
        if cached is not None and now - cached[0] < CACHE_SECONDS:
            return cached[1]
        credential = self._lookup(authorization[6:].strip())
        if len(self._cache) > 1000:
            self._cache.clear()
        self._cache[authorization] = (now, credential)
        return credential

    def _lookup(self, encoded: str) -> LrsCredential | None:
        try:
            key, _, secret = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        table = LrsKey.__table__
        with self.db.sessions() as session:
            row = session.execute(select(table).where(table.c.key == key, table.c.revoked_at.is_(None))).first()
        if row is None or not hmac.compare_digest(row.secret_hash, _hash(secret)):
            return None
        return LrsCredential(row.key, row.scope, row.name, row.created_at)
