"""The flat projection of xAPI statements, for SQL and BI tools

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from lti_tool.db import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

INDEXES = {
    "ix_xapi_flat_object_time": ["object_id", "timestamp"],
    "ix_xapi_flat_actor_time": ["actor_ifi", "timestamp"],
    "ix_xapi_flat_registration": ["registration"],
    # Covers the analytics page's aggregates (xapi.projection.ANALYTICS_COLUMNS).
    "ix_xapi_flat_platform_time": [
        "platform_id",
        "timestamp",
        "voided",
        "verb_id",
        "object_type",
        "object_id",
        "actor_ifi",
        "registration",
        "score_scaled",
        "completion",
        "success",
    ],
}


def upgrade() -> None:
    op.create_table(
        "xapi_flat_statements",
        sa.Column("statement_id", sa.String(length=36), nullable=False),
        sa.Column("platform_id", sa.Integer(), nullable=True),
        sa.Column("stored", UTCDateTime(), nullable=False),
        sa.Column("timestamp", UTCDateTime(), nullable=False),
        sa.Column("verb_id", sa.Text(), nullable=False),
        sa.Column("verb_display", sa.Text(), nullable=True),
        sa.Column("actor_ifi", sa.Text(), nullable=False),
        sa.Column("actor_object_type", sa.String(length=16), nullable=False),
        sa.Column("actor_account_homepage", sa.Text(), nullable=True),
        sa.Column("actor_account_name", sa.Text(), nullable=True),
        sa.Column("actor_mbox", sa.Text(), nullable=True),
        sa.Column("actor_mbox_sha1sum", sa.String(length=40), nullable=True),
        sa.Column("actor_openid", sa.Text(), nullable=True),
        sa.Column("actor_name", sa.Text(), nullable=True),
        sa.Column("object_id", sa.Text(), nullable=False),
        sa.Column("object_type", sa.String(length=16), nullable=False),
        sa.Column("object_definition_type", sa.Text(), nullable=True),
        sa.Column("object_name", sa.Text(), nullable=True),
        sa.Column("parent_activity_id", sa.Text(), nullable=True),
        sa.Column("course_activity_id", sa.Text(), nullable=True),
        sa.Column("registration", sa.String(length=36), nullable=True),
        sa.Column("lti_context_id", sa.Text(), nullable=True),
        sa.Column("lti_deployment_id", sa.Text(), nullable=True),
        sa.Column("lti_resource_link_id", sa.Text(), nullable=True),
        sa.Column("plugin", sa.Text(), nullable=True),
        sa.Column(
            "event_data",
            sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql"),
            nullable=True,
        ),
        sa.Column("score_raw", sa.Float(), nullable=True),
        sa.Column("score_scaled", sa.Float(), nullable=True),
        sa.Column("score_min", sa.Float(), nullable=True),
        sa.Column("score_max", sa.Float(), nullable=True),
        sa.Column("success", sa.Boolean(), nullable=True),
        sa.Column("completion", sa.Boolean(), nullable=True),
        sa.Column("duration", sa.Text(), nullable=True),
        sa.Column("duration_seconds", sa.Float(), nullable=True),
        sa.Column("voided", sa.Boolean(), nullable=False),
        sa.Column("voided_by", sa.String(length=36), nullable=True),
        sa.ForeignKeyConstraint(["platform_id"], ["platforms.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("statement_id"),
    )
    with op.batch_alter_table("xapi_flat_statements", schema=None) as batch_op:
        for name, columns in INDEXES.items():
            batch_op.create_index(name, columns, unique=False)


def downgrade() -> None:
    with op.batch_alter_table("xapi_flat_statements", schema=None) as batch_op:
        for name in INDEXES:
            batch_op.drop_index(name)
    op.drop_table("xapi_flat_statements")
