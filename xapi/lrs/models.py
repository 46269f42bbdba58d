"""The embedded LRS's tables.

Statements are kept as the exact JSON text the LRS returns (``format=exact`` hands it back
unchanged). Queries never parse that text: every filterable property is written once, at store
time, as a row of ``lrs_statement_terms`` (a 64-bit hash of "kind + value" and the statement's
sequence number), so each filter is one primary-key range scan in sequence order.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from lti_tool.db import Base, UTCDateTime

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit sequence.
Seq = BigInteger().with_variant(Integer, "sqlite")


class LrsStatement(Base):
    """One accepted statement, as stored (with the id, stored, authority and version the LRS adds).

    ``seq`` orders statements: the LRS assigns ``stored`` under a lock, never decreasing with
    ``seq``, so "order by stored" is "order by seq" and a ``more`` cursor is just a sequence number.
    """

    __tablename__ = "lrs_statements"
    __table_args__ = (Index("ix_lrs_statements_stored", "stored_ms", "seq"),)

    # Assigned by the store under the clock lock, never by the database.
    seq: Mapped[int] = mapped_column(Seq, primary_key=True, autoincrement=False)
    id: Mapped[str] = mapped_column(String(36), unique=True)
    # The tenant whose learning event the statement records; NULL for statements sent by a key.
    platform_id: Mapped[int | None] = mapped_column(
        ForeignKey("platforms.id", ondelete="CASCADE"), nullable=True, index=True
    )
    stored_ms: Mapped[int] = mapped_column(BigInteger)
    voided: Mapped[bool] = mapped_column(Boolean, default=False)
    # For a voiding statement: the id of the statement it voids.
    voids: Mapped[str | None] = mapped_column(String(36), nullable=True)
    has_attachments: Mapped[bool] = mapped_column(Boolean, default=False)
    statement: Mapped[str] = mapped_column(Text)


class LrsStatementTerm(Base):
    """One filterable property of a statement: (hash of kind + value, statement seq).

    The hash is the first 8 bytes of BLAKE2b: 2^-64 per pair of distinct terms, small enough
    that a false match needs billions of distinct agents, verbs and activities.
    """

    __tablename__ = "lrs_statement_terms"
    # On SQLite the primary key is the table itself (no rowid copy of every row).
    __table_args__ = {"sqlite_with_rowid": False}

    term: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(
        ForeignKey("lrs_statements.seq", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )


class LrsAttachment(Base):
    """An attachment's content, addressed by its SHA-2 hash (shared by every statement naming it)."""

    __tablename__ = "lrs_attachments"

    sha2: Mapped[str] = mapped_column(String(128), primary_key=True)
    content_type: Mapped[str] = mapped_column(String(255))
    content: Mapped[bytes] = mapped_column(LargeBinary)


class LrsActivity(Base):
    """The LRS's canonical definition of an activity: the definitions statements gave, merged."""

    __tablename__ = "lrs_activities"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    activity_id: Mapped[str] = mapped_column(Text)
    definition: Mapped[str] = mapped_column(Text)


class LrsDocument(Base):
    """A State, Activity Profile or Agent Profile document.

    ``scope`` is the SHA-256 of (kind, activityId, agent IFI, registration): the set of documents
    one GET lists.
    """

    __tablename__ = "lrs_documents"
    __table_args__ = (UniqueConstraint("scope", "doc_id", name="uq_lrs_document"),)

    id: Mapped[int] = mapped_column(Seq, primary_key=True, autoincrement=True)
    platform_id: Mapped[int | None] = mapped_column(
        ForeignKey("platforms.id", ondelete="CASCADE"), nullable=True, index=True
    )
    scope: Mapped[str] = mapped_column(String(64))
    doc_id: Mapped[str] = mapped_column(Text)
    content_type: Mapped[str] = mapped_column(String(255))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    etag: Mapped[str] = mapped_column(String(64))
    updated_ms: Mapped[int] = mapped_column(BigInteger)


class LrsKey(Base):
    """HTTP Basic credentials for the LRS: the key in clear, a SHA-256 of the secret."""

    __tablename__ = "lrs_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    scope: Mapped[str] = mapped_column(String(8))
    name: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class LrsClock(Base):
    """One row: the latest ``stored`` time given, updated first by every write (its lock)."""

    __tablename__ = "lrs_clock"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_ms: Mapped[int] = mapped_column(BigInteger)
