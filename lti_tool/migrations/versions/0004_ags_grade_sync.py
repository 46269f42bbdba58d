"""AGS grade sync: endpoints kept with scored events, line items found or created, score state

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ags_endpoints",
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("platform_id", sa.Integer(), nullable=False),
        sa.Column("lineitems_url", sa.String(length=2048), nullable=True),
        sa.Column("lineitem_url", sa.String(length=2048), nullable=True),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["event_id"], ["learning_events.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["platform_id"], ["platforms.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("event_id"),
    )
    with op.batch_alter_table("ags_endpoints", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ags_endpoints_platform_id"), ["platform_id"], unique=False)

    op.create_table(
        "ags_line_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform_id", sa.Integer(), nullable=False),
        sa.Column("resource_link_id", sa.Integer(), nullable=False),
        sa.Column("resource_id", sa.String(length=255), nullable=False),
        sa.Column("tag", sa.String(length=64), nullable=True),
        sa.Column("url", sa.String(length=2048), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=True),
        sa.Column("lock_owner", sa.String(length=64), nullable=True),
        sa.Column("lock_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["platform_id"], ["platforms.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["resource_link_id"], ["resource_links.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("platform_id", "resource_link_id", "resource_id", name="uq_ags_line_item"),
    )
    with op.batch_alter_table("ags_line_items", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ags_line_items_resource_link_id"), ["resource_link_id"], unique=False)

    op.create_table(
        "ags_score_states",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("line_item_key", sa.String(length=64), nullable=False),
        sa.Column("line_item_url", sa.String(length=2048), nullable=False),
        sa.Column("last_timestamp_ms", sa.BigInteger(), nullable=False),
        sa.Column("last_outbox_id", sa.BigInteger(), nullable=True),
        sa.Column("last_event_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("final", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["platform_id"], ["platforms.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("platform_id", "user_id", "line_item_key", name="uq_ags_score_state"),
    )
    with op.batch_alter_table("ags_score_states", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ags_score_states_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("ags_score_states", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ags_score_states_user_id"))
    op.drop_table("ags_score_states")
    with op.batch_alter_table("ags_line_items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ags_line_items_resource_link_id"))
    op.drop_table("ags_line_items")
    with op.batch_alter_table("ags_endpoints", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ags_endpoints_platform_id"))
    op.drop_table("ags_endpoints")
