"""Login states are signed tokens now: drop the table that held them

A login writes nothing; its launch row (whose id is the login's) makes it single-use.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("login_states", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_login_states_platform_id"))
        batch_op.drop_index(batch_op.f("ix_login_states_expires_at"))
    op.drop_table("login_states")


def downgrade() -> None:
    op.create_table(
        "login_states",
        sa.Column("state", sa.String(length=64), nullable=False),
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("platform_id", sa.Integer(), nullable=False),
        sa.Column("browser_binding", sa.String(length=64), nullable=False),
        sa.Column("target_link_uri", sa.String(length=2048), nullable=False),
        sa.Column("login_params", sa.JSON(), nullable=False),
        sa.Column("storage_target", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("consumed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["platform_id"], ["platforms.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("state"),
        sa.UniqueConstraint("nonce"),
    )
    with op.batch_alter_table("login_states", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_login_states_expires_at"), ["expires_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_login_states_platform_id"), ["platform_id"], unique=False)
