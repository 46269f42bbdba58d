"""The flat statements lose their person and enrolment indexes

Both were random insertion points on the LRS's write path (one B-tree page per statement each,
more at every size), for questions the wide (platform_id, timestamp, ...) index, which carries
actor_ifi and registration, and the Statements API's agent and registration filters answer
too. Dropping them took the HTTP ingest at 1M stored statements on SQLite from 1,615 to
1,836-2,181 statements/s.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-22
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

DROPPED = {
    "ix_xapi_flat_actor_time": ["actor_ifi", "timestamp"],
    "ix_xapi_flat_registration": ["registration"],
}


def upgrade() -> None:
    with op.batch_alter_table("xapi_flat_statements", schema=None) as batch_op:
        for name in DROPPED:
            batch_op.drop_index(name)


def downgrade() -> None:
    with op.batch_alter_table("xapi_flat_statements", schema=None) as batch_op:
        for name, columns in DROPPED.items():
            batch_op.create_index(name, columns, unique=False)
