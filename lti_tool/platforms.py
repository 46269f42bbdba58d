"""The platform registry: which VLEs may launch the tool, with which client ids and deployments."""

from __future__ import annotations

import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from .db import Database
from .models import Deployment, Platform


class RegistryError(Exception):
    """A registry change that cannot be made; the message says why."""


@dataclass(frozen=True)
class PlatformInfo:
    """A registration as the rest of the tool sees it (detached from any session)."""

    id: int
    issuer: str
    client_id: str
    name: str
    auth_login_url: str
    auth_token_url: str
    key_set_url: str
    auth_audience: str | None
    approved: bool
    deployment_ids: tuple[str, ...]

    @classmethod
    def from_row(cls, row: Platform) -> PlatformInfo:
        return cls(
            id=row.id,
            issuer=row.issuer,
            client_id=row.client_id,
            name=row.name,
            auth_login_url=row.auth_login_url,
            auth_token_url=row.auth_token_url,
            key_set_url=row.key_set_url,
            auth_audience=row.auth_audience,
            approved=row.approved,
            deployment_ids=tuple(row.deployment_ids),
        )


def _check_url(name: str, value: str) -> None:
    parts = urlsplit(value or "")
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise RegistryError(f"{name} must be an http(s) URL, got {value!r}")


def add_platform(
    db: Database,
    *,
    issuer: str,
    client_id: str,
    deployment_ids: list[str],
    auth_login_url: str,
    auth_token_url: str,
    key_set_url: str,
    name: str = "",
    auth_audience: str | None = None,
    approved: bool = True,
) -> PlatformInfo:
    """Register a platform, or add deployments to an existing issuer + client_id."""
    if not issuer:
        raise RegistryError("issuer is required")
    if not client_id:
        raise RegistryError("client_id is required")
    if not deployment_ids or not all(deployment_ids):
        raise RegistryError("at least one non-empty deployment id is required")
    for label, url in (
        ("auth login URL", auth_login_url),
        ("token URL", auth_token_url),
        ("key set URL", key_set_url),
    ):
        _check_url(label, url)
    with db.transaction() as session:
        row = _find(session, issuer, client_id)
        if row is None:
            row = Platform(
                issuer=issuer,
                client_id=client_id,
                name=name or urlsplit(issuer).netloc or issuer,
                auth_login_url=auth_login_url,
                auth_token_url=auth_token_url,
                key_set_url=key_set_url,
                auth_audience=auth_audience,
                approved=approved,
            )
            session.add(row)
        else:
            row.auth_login_url, row.auth_token_url, row.key_set_url = (
                auth_login_url,
                auth_token_url,
                key_set_url,
            )
            if name:
                row.name = name
        known = set(row.deployment_ids)
        for deployment_id in deployment_ids:
            if deployment_id not in known:
                row.deployments.append(Deployment(deployment_id=deployment_id))
                known.add(deployment_id)
        session.flush()
        return PlatformInfo.from_row(row)


def _find(session: Session, issuer: str, client_id: str) -> Platform | None:
    return session.scalar(
        select(Platform)
        .options(selectinload(Platform.deployments))
        .where(Platform.issuer == issuer, Platform.client_id == client_id)
    )


def list_platforms(db: Database) -> list[PlatformInfo]:
    with db.sessions() as session:
        rows = session.scalars(select(Platform).options(selectinload(Platform.deployments)).order_by(Platform.id))
        return [PlatformInfo.from_row(r) for r in rows]


def get_platform(db: Database, platform_id: int) -> PlatformInfo | None:
    with db.sessions() as session:
        row = session.get(Platform, platform_id, options=[selectinload(Platform.deployments)])
        return PlatformInfo.from_row(row) if row else None


def find_platform(db: Database, issuer: str, client_id: str | None = None) -> PlatformInfo | None:
    """The registration for an issuer (and client_id when the issuer has several)."""
    with db.sessions() as session:
        query = select(Platform).options(selectinload(Platform.deployments)).where(Platform.issuer == issuer)
        if client_id:
            query = query.where(Platform.client_id == client_id)
        rows = list(session.scalars(query.order_by(Platform.id).limit(2)))
        if len(rows) != 1:
            return None
        return PlatformInfo.from_row(rows[0])


def resolve(db: Database, ref: str) -> PlatformInfo:
    """A platform by numeric id or by issuer (unique issuer only), for the CLI."""
    found = get_platform(db, int(ref)) if ref.isdigit() else find_platform(db, ref)
    if found is None:
        raise RegistryError(f"no platform {ref!r} (use `npqsl-lti platform list`)")
    return found


def remove_platform(db: Database, platform_id: int) -> None:
    """Remove a registration and, with it, every row of that tenant."""
    with db.transaction() as session:
        row = session.get(Platform, platform_id)
        if row is None:
            raise RegistryError(f"no platform with id {platform_id}")
        session.delete(row)


def approve_platform(db: Database, platform_id: int) -> None:
    with db.transaction() as session:
        row = session.get(Platform, platform_id)
        if row is None:
            raise RegistryError(f"no platform with id {platform_id}")
        row.approved = True


class PlatformDirectory:
    """Approved registrations, cached in this process for a few seconds.

    Every login and launch looks its platform up; the registry changes rarely. Only approved
    platforms are cached, and a miss always reads the database, so a new registration or an
    approval takes effect at once; a removal takes effect within ``ttl`` seconds.
    """

    def __init__(self, db: Database, ttl: float = 5.0):
        self.db = db
        self._ttl = ttl
        self._by_id: dict[int, tuple[float, PlatformInfo]] = {}
        self._by_key: dict[tuple[str, str | None], tuple[float, PlatformInfo]] = {}

    def _fresh(self, entry: tuple[float, PlatformInfo] | None) -> PlatformInfo | None:
        if entry is not None and time.monotonic() - entry[0] < self._ttl:
            return entry[1]
        return None

    def _remember(
        self, info: PlatformInfo | None, key: tuple[str, str | None] | None = None
    ) -> PlatformInfo | None:
        if info is not None and info.approved:
            stamp = time.monotonic()
            self._by_id[info.id] = (stamp, info)
            if key is not None:
                self._by_key[key] = (stamp, info)
        return info

    def get(self, platform_id: int) -> PlatformInfo | None:
        return self._fresh(self._by_id.get(platform_id)) or self._remember(get_platform(self.db, platform_id))

    def find(self, issuer: str, client_id: str | None = None) -> PlatformInfo | None:
        key = (issuer, client_id or None)
        return self._fresh(self._by_key.get(key)) or self._remember(find_platform(self.db, issuer, client_id), key)
