"""The demo platform's gradebook: line items and each learner's latest score

The development-mode demo platform serves Assignment and Grade Services from these tables, so
every process of the tool sees the same gradebook. Both belong to the demo platform's
registration and go with it.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "demo_line_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform_id", sa.Integer(), nullable=False),
        sa.Column("context_id", sa.String(length=255), nullable=False),
        sa.Column("label", sa.String(length=255), nullable=False),
        sa.Column("score_maximum", sa.Float(), nullable=False),
        sa.Column("resource_id", sa.String(length=255), nullable=True),
        sa.Column("tag", sa.String(length=255), nullable=True),
        sa.Column("resource_link_id", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["platform_id"], ["platforms.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("demo_line_items", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_demo_line_items_platform_id"), ["platform_id"], unique=False)

    op.create_table(
        "demo_scores",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform_id", sa.Integer(), nullable=False),
        sa.Column("line_item_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("score_given", sa.Float(), nullable=True),
        sa.Column("score_maximum", sa.Float(), nullable=True),
        sa.Column("activity_progress", sa.String(length=32), nullable=False),
        sa.Column("grading_progress", sa.String(length=32), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["line_item_id"], ["demo_line_items.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["platform_id"], ["platforms.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("line_item_id", "user_id", name="uq_demo_score"),
    )
    with op.batch_alter_table("demo_scores", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_demo_scores_platform_id"), ["platform_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("demo_scores", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_demo_scores_platform_id"))
    op.drop_table("demo_scores")
    with op.batch_alter_table("demo_line_items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_demo_line_items_platform_id"))
    op.drop_table("demo_line_items")
