"""The tool under test, served over real HTTP on 127.0.0.1 with its own database."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from werkzeug.serving import make_server

from lti_tool.app import create_app
from lti_tool.db import Database
from lti_tool.platforms import add_platform
from lti_tool.settings import load_settings

from .platform_emulator import TestPlatform


def tool_settings(instance: Path, database_url: str | None = None, **overrides: Any):
    base = {"env": "development", "instance_path": str(instance), "database_url": database_url or ""}
    # The in-process outbox worker would deliver rows tests inspect; tests that want it say so.
    base["outbox"] = {"inline_worker": False}
    return load_settings(environ={}, overrides=_deep(base, overrides))


def _deep(base: dict, extra: dict) -> dict:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict):
            merged[key] = {**merged.get(key, {}), **value}
        else:
            merged[key] = value
    return merged


class ToolServer:
    """create_app() behind a threaded Werkzeug server, migrated and ready."""

    __test__ = False

    def __init__(self, instance: Path, database_url: str | None = None, **overrides: Any):
        self.settings = tool_settings(instance, database_url, **overrides)
        Database(self.settings.database_url).upgrade()
        self.app = create_app(self.settings)
        self.tool = self.app.extensions["npqsl_lti"]
        self.db = self.tool.db
        self._server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.base_url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def launch_url(self) -> str:
        return self.base_url + "/lti/launch"

    @property
    def login_url(self) -> str:
        return self.base_url + "/lti/login"

    @property
    def jwks_url(self) -> str:
        return self.base_url + "/.well-known/jwks.json"

    def start(self) -> ToolServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self.tool.stop_worker()
        self.db.dispose()

    def register(self, platform: TestPlatform, **kwargs: Any):
        """Register the test platform with this tool, and this tool with the platform."""
        platform.tool_jwks_url = self.jwks_url
        platform.redirect_uris.append(self.launch_url)
        return add_platform(
            self.db,
            issuer=platform.issuer,
            client_id=platform.client_id,
            deployment_ids=[platform.deployment_id],
            auth_login_url=platform.auth_url,
            auth_token_url=platform.token_url,
            key_set_url=platform.jwks_url,
            **kwargs,
        )
