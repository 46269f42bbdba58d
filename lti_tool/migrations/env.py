"""Alembic environment: runs against the engine the tool hands over (see Database.upgrade)."""

from alembic import context

from lti_tool import models  # noqa: F401  (registers the tables on Base.metadata)
from lti_tool.db import Base

config = context.config
engine = config.attributes["engine"]

with engine.begin() as connection:
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
