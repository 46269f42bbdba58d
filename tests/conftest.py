"""Fixtures that start real parts: the tool over HTTP, a test platform over HTTP, a database."""

from __future__ import annotations

import os

import pytest

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
