"""The tool's tables. Every row that holds tenant data carries ``platform_id``.

A platform (tenant) is one registration: issuer + client_id, with its deployments. Queries for
people, courses and launches always filter by platform, so one school's VLE never sees another's.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .db import Base, UTCDateTime


def utcnow() -> datetime:
    return datetime.now(UTC)


class ToolKey(Base):
    """One of the tool's RSA signing keys; retired keys stay published for a grace period."""

    __tablename__ = "tool_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kid: Mapped[str] = mapped_column(String(64), unique=True)
    private_pem: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class Platform(Base):
    """A registered LTI platform (tenant): one issuer + client_id pair."""

    __tablename__ = "platforms"
    __table_args__ = (UniqueConstraint("issuer", "client_id", name="uq_platform_issuer_client"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    issuer: Mapped[str] = mapped_column(String(255))
    client_id: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255), default="")
    auth_login_url: Mapped[str] = mapped_column(String(1024))
    auth_token_url: Mapped[str] = mapped_column(String(1024))
    key_set_url: Mapped[str] = mapped_column(String(1024))
    # Some platforms name a different audience for the token endpoint's client assertion.
    auth_audience: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    approved: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    deployments: Mapped[list[Deployment]] = relationship(
        back_populates="platform",
        cascade="all, delete-orphan",
        order_by="Deployment.id",
    )

    @property
    def deployment_ids(self) -> list[str]:
        return [d.deployment_id for d in self.deployments]


class Deployment(Base):
    """A deployment of the tool within a platform (Moodle: the tool type id)."""

    __tablename__ = "deployments"
    __table_args__ = (UniqueConstraint("platform_id", "deployment_id", name="uq_deployment"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    platform_id: Mapped[int] = mapped_column(ForeignKey("platforms.id", ondelete="CASCADE"))
    deployment_id: Mapped[str] = mapped_column(String(255))

    platform: Mapped[Platform] = relationship(back_populates="deployments")


class LoginState(Base):
    """An OIDC login waiting for its launch: the state, its single-use nonce, what was asked."""

    __tablename__ = "login_states"

    state: Mapped[str] = mapped_column(String(64), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(64), unique=True)
    platform_id: Mapped[int] = mapped_column(ForeignKey("platforms.id", ondelete="CASCADE"), index=True)
    # sha256 of the secret in the browser's state cookie (or postMessage store).
    browser_binding: Mapped[str] = mapped_column(String(64))
    target_link_uri: Mapped[str] = mapped_column(String(2048))
    # The login request's parameters, to restart it in a new window when cookies are blocked.
    login_params: Mapped[dict] = mapped_column(JSON, default=dict)
    storage_target: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    consumed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class User(Base):
    """A person as a platform knows them: (platform, LTI sub)."""

    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("platform_id", "sub", name="uq_user_platform_sub"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    platform_id: Mapped[int] = mapped_column(ForeignKey("platforms.id", ondelete="CASCADE"))
    sub: Mapped[str] = mapped_column(String(255))
    name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    given_name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    family_name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    email: Mapped[str | None] = mapped_column(String(320), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_launch_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Course(Base):
    """An LTI context (a course in the VLE)."""

    __tablename__ = "courses"
    __table_args__ = (UniqueConstraint("platform_id", "context_id", name="uq_course_platform_context"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    platform_id: Mapped[int] = mapped_column(ForeignKey("platforms.id", ondelete="CASCADE"))
    deployment_id: Mapped[str] = mapped_column(String(255))
    context_id: Mapped[str] = mapped_column(String(255))
    title: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    label: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ResourceLink(Base):
    """A placement of the tool in a course (one activity)."""

    __tablename__ = "resource_links"
    __table_args__ = (UniqueConstraint("platform_id", "resource_link_id", name="uq_resource_link_platform_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    platform_id: Mapped[int] = mapped_column(ForeignKey("platforms.id", ondelete="CASCADE"))
    course_id: Mapped[int | None] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"), nullable=True)
    resource_link_id: Mapped[str] = mapped_column(String(255))
    title: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    custom: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Launch(Base):
    """A validated launch: what later requests in the same activity session refer to."""

    __tablename__ = "launches"
    __table_args__ = (Index("ix_launch_platform_user", "platform_id", "user_id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    platform_id: Mapped[int] = mapped_column(ForeignKey("platforms.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    course_id: Mapped[int | None] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"), nullable=True)
    resource_link_id: Mapped[int | None] = mapped_column(
        ForeignKey("resource_links.id", ondelete="CASCADE"), nullable=True
    )
    deployment_id: Mapped[str] = mapped_column(String(255))
    message_type: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(32))
    roles: Mapped[list] = mapped_column(JSON, default=list)
    # The id_token's claims, kept for the services the launch grants (AGS, NRPS, deep linking).
    claims: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class RegistrationInvite(Base):
    """A one-time dynamic registration URL an administrator hands to a VLE administrator."""

    __tablename__ = "registration_invites"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    note: Mapped[str] = mapped_column(String(255), default="")
    auto_approve: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    platform_id: Mapped[int | None] = mapped_column(ForeignKey("platforms.id", ondelete="SET NULL"), nullable=True)
