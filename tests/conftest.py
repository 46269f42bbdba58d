"""Fixtures that start real parts: the tool over HTTP, a test platform over HTTP, a database."""

from __future__ import annotations

import os
import secrets

import pytest
from sqlalchemy import create_engine, make_url, text

from lti_tool.db import Database

from .browser import Browser
from .platform_emulator import TestPlatform
from .tool_server import ToolServer

POSTGRES_URL_ENV = "NPQSL_TEST_POSTGRES_URL"


@pytest.fixture(scope="session")
def platform():
    server = TestPlatform().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def tool(tmp_path_factory, platform):
    """The tool on SQLite with the test platform registered; shared by the launch tests."""
    server = ToolServer(tmp_path_factory.mktemp("tool")).start()
    server.register(platform)
    yield server
    server.stop()


@pytest.fixture
def browser():
    return Browser()


@pytest.fixture
def make_tool(tmp_path_factory):
    """Build a separate tool (own database, own settings) for tests that change settings."""
    started: list[ToolServer] = []

    def factory(database_url: str | None = None, **overrides) -> ToolServer:
        server = ToolServer(tmp_path_factory.mktemp("tool"), database_url, **overrides).start()
        started.append(server)
        return server

    yield factory
    for server in started:
        server.stop()


def postgres_url() -> str | None:
    return os.environ.get(POSTGRES_URL_ENV)


# -- PostgreSQL ---------------------------------------------------------------------------------
# `make test` deselects tests marked `postgres` (setup.cfg addopts); `make test-postgres` sets
# NPQSL_TEST_POSTGRES_URL and selects only them. Each PostgreSQL test works in a schema of its own,
# created empty and dropped afterwards, so concurrent runs against one database never collide and
# the migrations really run on PostgreSQL.


def _require_postgres_url() -> str:
    url = postgres_url()
    if not url:
        pytest.fail(
            f"this test runs on PostgreSQL but {POSTGRES_URL_ENV} is not set; use `make test-postgres` "
            f"or set {POSTGRES_URL_ENV}=postgresql+psycopg2://user@host:5432/db",
            pytrace=False,
        )
    return url


@pytest.fixture(scope="session")
def postgres_admin():
    """An AUTOCOMMIT engine on NPQSL_TEST_POSTGRES_URL, for creating and dropping test schemas."""
    engine = create_engine(_require_postgres_url(), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any failure means the run cannot go on
        pytest.fail(f"{POSTGRES_URL_ENV}: cannot connect to PostgreSQL ({exc.__class__.__name__}: {exc})")
    yield engine
    engine.dispose()


@pytest.fixture
def postgres_schema_url(postgres_admin):
    """The URL of a freshly created, empty schema (search_path set on every connection)."""
    schema = "npqsl_test_" + secrets.token_hex(6)
    with postgres_admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(postgres_url()).update_query_dict(
        {"options": f"-csearch_path={schema}", "application_name": schema}
    )
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with postgres_admin.connect() as conn:
            # Connections a test left open (servers, subprocesses) would block the DROP.
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = :name AND pid <> pg_backend_pid()"
                ),
                {"name": schema},
            )
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request, tmp_path):
    """An empty database: a SQLite file, or (marked `postgres`) a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'npqsl-lti.sqlite3'}"
    return request.getfixturevalue("postgres_schema_url")


@pytest.fixture
def database(database_url):
    """A migrated Database on database_url, disposed afterwards."""
    db = Database(database_url)
    db.upgrade()
    yield db
    db.dispose()
