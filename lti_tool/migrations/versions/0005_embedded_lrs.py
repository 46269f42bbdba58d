"""The embedded LRS: statements with their filter terms, documents, activities, attachments, keys

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "lrs_activities",
        sa.Column("id_hash", sa.String(length=64), nullable=False),
        sa.Column("activity_id", sa.Text(), nullable=False),
        sa.Column("definition", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id_hash"),
    )
    op.create_table(
        "lrs_attachments",
        sa.Column("sha2", sa.String(length=128), nullable=False),
        sa.Column("content_type", sa.String(length=255), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("sha2"),
    )
    op.create_table(
        "lrs_clock",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("last_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.bulk_insert(sa.table("lrs_clock", sa.column("id"), sa.column("last_ms")), [{"id": 1, "last_ms": 0}])
    op.create_table(
        "lrs_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("scope", sa.String(length=8), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
    )
    op.create_table(
        "lrs_documents",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("platform_id", sa.Integer(), nullable=True),
        sa.Column("scope", sa.String(length=64), nullable=False),
        sa.Column("doc_id", sa.Text(), nullable=False),
        sa.Column("content_type", sa.String(length=255), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("etag", sa.String(length=64), nullable=False),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["platform_id"], ["platforms.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("scope", "doc_id", name="uq_lrs_document"),
    )
    with op.batch_alter_table("lrs_documents", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_lrs_documents_platform_id"), ["platform_id"], unique=False)

    op.create_table(
        "lrs_statements",
        sa.Column(
            "seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=False, nullable=False
        ),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("platform_id", sa.Integer(), nullable=True),
        sa.Column("stored_ms", sa.BigInteger(), nullable=False),
        sa.Column("voided", sa.Boolean(), nullable=False),
        sa.Column("voids", sa.String(length=36), nullable=True),
        sa.Column("has_attachments", sa.Boolean(), nullable=False),
        sa.Column("statement", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["platform_id"], ["platforms.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("id"),
    )
    with op.batch_alter_table("lrs_statements", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_lrs_statements_platform_id"), ["platform_id"], unique=False)
        batch_op.create_index("ix_lrs_statements_stored", ["stored_ms", "seq"], unique=False)

    op.create_table(
        "lrs_statement_terms",
        sa.Column("term", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column(
            "seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=False, nullable=False
        ),
        sa.ForeignKeyConstraint(["seq"], ["lrs_statements.seq"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("term", "seq"),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table("lrs_statement_terms")
    with op.batch_alter_table("lrs_statements", schema=None) as batch_op:
        batch_op.drop_index("ix_lrs_statements_stored")
        batch_op.drop_index(batch_op.f("ix_lrs_statements_platform_id"))

    op.drop_table("lrs_statements")
    with op.batch_alter_table("lrs_documents", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lrs_documents_platform_id"))

    op.drop_table("lrs_documents")
    op.drop_table("lrs_keys")
    op.drop_table("lrs_clock")
    op.drop_table("lrs_attachments")
    op.drop_table("lrs_activities")
