"""The tool's tables. Every row that holds tenant data carries ``platform_id``.

A platform (tenant) is one registration: issuer + client_id, with its deployments. Queries for
people, courses and launches always filter by platform, so one school's VLE never sees another's.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
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


class PluginRecord(Base):
    """A plugin's own state for one person (or one course) and activity, as JSON.

    Plugins keep what they need here (progress, answers, drafts) without migrations of their
    own; ``version`` increases with every write so concurrent saves can be detected.
    """

    __tablename__ = "plugin_records"
    __table_args__ = (
        UniqueConstraint(
            "platform_id", "course_id", "user_id", "plugin_key", "activity", "name", name="uq_plugin_record"
        ),
        Index("ix_plugin_record_lookup", "platform_id", "plugin_key", "activity"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    platform_id: Mapped[int] = mapped_column(ForeignKey("platforms.id", ondelete="CASCADE"))
    course_id: Mapped[int | None] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"), nullable=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=True)
    plugin_key: Mapped[str] = mapped_column(String(64))
    activity: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255))
    data: Mapped[dict] = mapped_column(JSON, default=dict)
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class LearningEventRow(Base):
    """Something that happened in a plugin activity, as the plugin reported it."""

    __tablename__ = "learning_events"
    __table_args__ = (Index("ix_event_person_activity", "platform_id", "user_id", "plugin_key", "activity"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    platform_id: Mapped[int] = mapped_column(ForeignKey("platforms.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    course_id: Mapped[int | None] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"), nullable=True)
    resource_link_id: Mapped[int | None] = mapped_column(
        ForeignKey("resource_links.id", ondelete="CASCADE"), nullable=True
    )
    launch_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    deployment_id: Mapped[str] = mapped_column(String(255))
    plugin_key: Mapped[str] = mapped_column(String(64))
    activity: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(32))
    result: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    extensions: Mapped[dict] = mapped_column(JSON, default=dict)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class OutboxMessage(Base):
    """One delivery owed to one receiver (xAPI, AGS) for one learning event.

    Written in the same transaction as the event; a worker delivers it, retrying until the
    receiver accepts, or parks it as dead with the receiver's answer kept.
    """

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_due", "status", "next_attempt_at"),
        # Pending rows only: a claim asks "is an earlier row of this key still pending?" for every
        # candidate row, and must not wade through the delivered history to answer it. Partial,
        # so the plan does not depend on the planner's statistics keeping up with the churn.
        Index(
            "ix_outbox_pending_ordering",
            "ordering_key",
            "id",
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
        Index(
            "ix_outbox_pending_due",
            "next_attempt_at",
            "id",
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    platform_id: Mapped[int] = mapped_column(ForeignKey("platforms.id", ondelete="CASCADE"))
    event_id: Mapped[str] = mapped_column(ForeignKey("learning_events.id", ondelete="CASCADE"), index=True)
    receiver: Mapped[str] = mapped_column(String(16))
    # Deliveries sharing a key (same receiver, person and activity) go out in id order.
    ordering_key: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    lease_owner: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


# -- AGS grade sync (lti_tool.grades) ----------------------------------------------------------


class AgsEndpoint(Base):
    """The AGS endpoint the launch behind a scored event granted, kept with the event.

    Written in the event's own transaction: launches are purged a day after they expire, and a
    score held back by a long VLE outage must still know where to go.
    """

    __tablename__ = "ags_endpoints"

    event_id: Mapped[str] = mapped_column(ForeignKey("learning_events.id", ondelete="CASCADE"), primary_key=True)
    platform_id: Mapped[int] = mapped_column(ForeignKey("platforms.id", ondelete="CASCADE"), index=True)
    lineitems_url: Mapped[str | None] = mapped_column(String(2048), nullable=True)
    lineitem_url: Mapped[str | None] = mapped_column(String(2048), nullable=True)
    scopes: Mapped[list] = mapped_column(JSON, default=list)


class AgsLineItem(Base):
    """A line item found or created for one resource link and activity (its AGS resourceId).

    ``url`` is empty while a worker holds ``lock_until`` to find or create it, so two workers
    never create two gradebook columns for the same activity.
    """

    __tablename__ = "ags_line_items"
    __table_args__ = (UniqueConstraint("platform_id", "resource_link_id", "resource_id", name="uq_ags_line_item"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    platform_id: Mapped[int] = mapped_column(ForeignKey("platforms.id", ondelete="CASCADE"))
    resource_link_id: Mapped[int] = mapped_column(ForeignKey("resource_links.id", ondelete="CASCADE"), index=True)
    resource_id: Mapped[str] = mapped_column(String(255))
    tag: Mapped[str | None] = mapped_column(String(64), nullable=True)
    url: Mapped[str | None] = mapped_column(String(2048), nullable=True)
    # "found" on the platform, or "created" by the tool (a separate manual column in Moodle).
    source: Mapped[str | None] = mapped_column(String(16), nullable=True)
    lock_owner: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lock_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class AgsScoreState(Base):
    """The last score the platform accepted for one person and line item.

    Timestamps sent for the pair only ever increase past ``last_timestamp_ms``; ``final`` says the
    gradebook holds a FullyGraded score, which a non-final score must not null by accident.
    """

    __tablename__ = "ags_score_states"
    __table_args__ = (UniqueConstraint("platform_id", "user_id", "line_item_key", name="uq_ags_score_state"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    platform_id: Mapped[int] = mapped_column(ForeignKey("platforms.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # sha256 of line_item_url: URLs are too long for a portable unique index.
    line_item_key: Mapped[str] = mapped_column(String(64))
    line_item_url: Mapped[str] = mapped_column(String(2048))
    last_timestamp_ms: Mapped[int] = mapped_column(BigInteger)
    # The delivery (outbox row) and event time behind the last accepted score, if any yet.
    last_outbox_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    last_event_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    final: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


# -- the embedded LRS (xapi.lrs) and its flat projection (xapi.projection) -----------------------
# Their tables live with their code; importing them here puts them on Base.metadata for migrations.
from xapi import projection as _projection  # noqa: E402, F401
from xapi.lrs import models as _lrs_models  # noqa: E402, F401

# The development-mode demo platform's gradebook (lti_tool.demo_gradebook), likewise.
from . import demo_gradebook as _demo_gradebook  # noqa: E402, F401
