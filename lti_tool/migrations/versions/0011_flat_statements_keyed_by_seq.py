"""The flat statements are keyed by the LRS's sequence number instead of the statement id

Statement ids are random UUIDs, so the primary key put every new flat row at a random place in
its index (one more random page per statement on the LRS's write path, more at every size).
The LRS stores statements in sequence order, so keyed by ``seq`` the rows append at the end of
the table (on SQLite the table is the key: an INTEGER PRIMARY KEY is the rowid). The statement
id stays a column; one statement is found by id through ``lrs_statements.id`` (the README,
"Analytics").

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-22
"""

import warnings
from contextlib import contextmanager

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

TABLE = "xapi_flat_statements"
SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.add_column(TABLE, sa.Column("seq", SEQ, autoincrement=False, nullable=True))
    postgresql = op.get_bind().dialect.name == "postgresql"
    # Each row's statement, through the LRS's unique index of statement ids.
    if postgresql:
        op.execute(f"UPDATE {TABLE} f SET seq = s.seq FROM lrs_statements s WHERE s.id = f.statement_id")
    else:
        op.execute(
            f"UPDATE {TABLE} SET seq = (SELECT s.seq FROM lrs_statements s WHERE s.id = {TABLE}.statement_id)"
        )
    # The projection writes a row in the transaction that stores its statement, so every row has
    # one; a row without could only be left from a statement deleted by hand.
    op.execute(f"DELETE FROM {TABLE} WHERE seq IS NULL")
    if postgresql:
        op.drop_constraint(f"{TABLE}_pkey", TABLE, type_="primary")
        op.alter_column(TABLE, "seq", existing_type=SEQ, nullable=False)
        op.create_primary_key(f"{TABLE}_pkey", TABLE, ["seq"])
    else:
        with _primary_key_moves(), op.batch_alter_table(TABLE, recreate="always") as batch_op:
            batch_op.alter_column("seq", existing_type=SEQ, nullable=False)
            batch_op.create_primary_key(f"{TABLE}_pkey", ["seq"])


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint(f"{TABLE}_pkey", TABLE, type_="primary")
        op.create_primary_key(f"{TABLE}_pkey", TABLE, ["statement_id"])
        op.drop_column(TABLE, "seq")
    else:
        with _primary_key_moves(), op.batch_alter_table(TABLE, recreate="always") as batch_op:
            batch_op.create_primary_key(f"{TABLE}_pkey", ["statement_id"])
            batch_op.drop_column("seq")


@contextmanager
def _primary_key_moves():
    """SQLite rebuilds the table, and SQLAlchemy warns that its primary key is not the reflected
    one; that is the point of the rebuild, so the warning is silenced here and nowhere else."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", r".*not matching locally specified columns", sa.exc.SAWarning)
        yield
