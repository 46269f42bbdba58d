"""The database: one SQLAlchemy engine per app, sessions scoped to a request, Alembic migrations.

SQLite runs in WAL mode with foreign keys on, so the embedded default behaves like the
PostgreSQL deployment in the ways the tool relies on (concurrent readers, cascades).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC
from pathlib import Path

from sqlalchemy import DateTime, create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from .paths import MIGRATIONS_DIR


class UTCDateTime(TypeDecorator):
    """A timezone-aware UTC datetime on every backend (SQLite hands back naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    """Declarative base for every table the tool owns."""


def make_engine(url: str) -> Engine:
    """An engine configured for the backend: WAL + foreign keys on SQLite, pre-ping everywhere."""
    if url.startswith("sqlite"):
        # LIFO: a request gets the connection used last. In WAL mode SQLite empties a connection's
        # page cache whenever another connection has written since it last read; the default FIFO
        # order hands out each pooled connection in turn, so every launch started cold.
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, pool_use_lifo=True)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # pragma: no cover - exercised on every connect
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            # A batch of statements touches ~1,500 index pages: a 32 MiB cache keeps them from
            # spilling and being read back, and checkpointing every 8,000 WAL pages (not 1,000)
            # copies each hot page to the database file once per several batches, not every one.
            # (The LRS's statement writers checkpoint sooner, outside their lock: xapi/lrs/write_lock.py;
            # this one is the backstop for every other writer.)
            cursor.execute("PRAGMA cache_size=-32768")
            cursor.execute("PRAGMA wal_autocheckpoint=8000")
            cursor.execute("PRAGMA mmap_size=268435456")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def _create_private_file(path: str) -> None:
    """Create the SQLite file readable by its owner only: it holds the tool's private keys.

    SQLite gives the -wal and -shm files the database file's permissions.
    """
    file = Path(path)
    file.parent.mkdir(parents=True, exist_ok=True)
    if not file.exists():
        os.close(os.open(file, os.O_WRONLY | os.O_CREAT, 0o600))


class Database:
    """The engine and session factory of one app."""

    def __init__(self, url: str):
        self.url = url
        if url.startswith("sqlite:///"):
            _create_private_file(url.removeprefix("sqlite:///"))
        self.engine = make_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session whose work commits together or not at all."""
        with self.sessions() as session, session.begin():
            yield session

    def alembic_config(self):
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        cfg.attributes["engine"] = self.engine
        return cfg

    def upgrade(self, revision: str = "head") -> None:
        """Apply migrations up to ``revision``."""
        from alembic import command

        command.upgrade(self.alembic_config(), revision)

    def current_revision(self) -> str | None:
        from alembic.runtime.migration import MigrationContext

        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def dispose(self) -> None:
        self.engine.dispose()
