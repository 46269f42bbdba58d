"""The app factory and the services one running tool holds (database, keys, validator, ...)."""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from urllib.parse import urlsplit

from flask import Flask, url_for
from sqlalchemy import inspect

from . import keys
from .cache import cache, cache_config
from .context import LaunchContext
from .db import Database
from .events import EventRecorder
from .grades import AgsReceiver
from .http import make_http_session
from .id_token import DEEP_LINKING_REQUEST
from .launch import LaunchValidator
from .launch_tokens import LaunchTokens
from .login_states import LoginStates
from .outbox import installed_receivers
from .platform_keys import PlatformKeys
from .platforms import PlatformDirectory, PlatformInfo, list_platforms
from .plugin_registry import load_plugins
from .roster import RosterService
from .services import ToolServiceConnector
from .sessions import LazyCookieSessionInterface
from .settings import Settings, SettingsError, load_settings

FRAME_ANCESTORS_TTL = 60.0


class Tool:
    """Everything a request needs beyond Flask itself, built once per app."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.db = Database(settings.database_url)
        self.http = make_http_session(settings.http_timeout)
        self.keyring = keys.KeyRing(self.db, timedelta(days=settings.key_grace_days))
        self.platform_keys = PlatformKeys(
            cache,
            self.http,
            ttl=settings.jwks.cache_ttl_seconds,
            refetch_interval=settings.jwks.refetch_min_interval_seconds,
        )
        self.platforms = PlatformDirectory(self.db)
        self.login_states = LoginStates(settings.secret_key, settings.launch.login_ttl_seconds)
        self.validator = LaunchValidator(self.platforms, self.platform_keys, self.login_states, settings)
        self.launch_tokens = LaunchTokens(settings.secret_key, settings.launch.session_ttl_seconds)
        self.plugins = load_plugins()
        self.events = EventRecorder(self.db)
        self.events.add_receiver(AgsReceiver(self.db))
        self.events.receivers.extend(installed_receivers(self))
        self.rosters = RosterService(self.db, settings, cache, self.http, self.service_connector)
        self.demo = None  # the demo platform, made on first use in development
        self.background_worker = None  # the in-process outbox worker (outbox.inline_worker)
        self._frame_ancestors: tuple[float, str] = (0.0, "")

    def url_for_public(self, endpoint: str, **values) -> str:
        """An absolute URL as platforms must see it (NPQSL_PUBLIC_URL when set)."""
        if self.settings.public_url:
            return self.settings.public_url + url_for(endpoint, **values)
        return url_for(endpoint, _external=True, **values)

    def service_connector(self, platform: PlatformInfo) -> ToolServiceConnector:
        """A connector for the platform's AGS/NRPS services, signing with the key ring."""
        return ToolServiceConnector(platform, self.keyring, cache, self.http)

    def after_launch(self, context: LaunchContext):
        """What a successful launch shows: the deep-linking picker, a plugin, or the landing page."""
        from .views.activity import render_activity
        from .views.deep_linking import render_picker

        if context.message_type == DEEP_LINKING_REQUEST:
            return render_picker(context)
        return render_activity(context)

    def frame_ancestors(self) -> str:
        """'self' plus the origins of registered platforms, refreshed every minute."""
        loaded_at, value = self._frame_ancestors
        if time.monotonic() - loaded_at < FRAME_ANCESTORS_TTL and value:
            return value
        origins = {"'self'"}
        for platform in list_platforms(self.db):
            for url in (platform.issuer, platform.auth_login_url):
                parts = urlsplit(url)
                if parts.scheme in ("http", "https") and parts.netloc:
                    origins.add(f"{parts.scheme}://{parts.netloc}")
        value = " ".join(sorted(origins))
        self._frame_ancestors = (time.monotonic(), value)
        return value

    def start_worker(self, app: Flask) -> None:
        """Deliver the outbox from a thread of this process (development; tests that ask for it)."""
        from .worker import WorkerThreads

        if self.background_worker is None:
            self.background_worker = WorkerThreads(app, prefix="inline").start()

    def stop_worker(self) -> None:
        """Stop the in-process outbox worker after its current delivery, if it runs."""
        if self.background_worker is not None:
            self.background_worker.stop()
            self.background_worker = None

    def check_schema(self) -> None:
        """Refuse to serve from a database that has not been migrated."""
        if not inspect(self.db.engine).has_table("tool_keys"):
            raise SettingsError(
                f"NPQSL_DATABASE_URL: database {self.db.engine.url.render_as_string(hide_password=True)} "
                "has no tables yet; run `npqsl-lti db upgrade` first"
            )


def _configure_logging(level: str) -> None:
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("lti_tool").setLevel(level)


def create_app(settings: Settings | None = None, *, start_worker: bool | None = None) -> Flask:
    """Build the tool: settings from config/default.toml and NPQSL_* unless given.

    ``start_worker`` overrides ``outbox.inline_worker`` (``npqsl-lti worker`` builds the app
    without its thread, and runs its own workers).
    """
    settings = settings or load_settings()
    _configure_logging(settings.log_level)
    app = Flask(__name__, instance_path=str(settings.instance_path))
    app.config.update(
        SECRET_KEY=settings.secret_key,
        NPQSL=settings,
        MAX_CONTENT_LENGTH=settings.launch.max_id_token_bytes * 2 + 64 * 1024,
        SESSION_COOKIE_SAMESITE="None" if settings.public_url.startswith("https://") else "Lax",
        SESSION_COOKIE_SECURE=settings.public_url.startswith("https://"),
    )
    app.session_interface = LazyCookieSessionInterface()
    cache.init_app(app, config=cache_config(settings.cache_url))

    tool = Tool(settings)
    tool.check_schema()
    keys.ensure_signing_key(tool.db)
    app.extensions["npqsl_lti"] = tool

    from .views import activity, admin, deep_linking, lti, registration, wellknown
    from .views.helpers import header_links

    app.jinja_env.globals["header_links"] = header_links

    app.register_blueprint(lti.bp)
    app.register_blueprint(wellknown.bp)
    app.register_blueprint(activity.bp)
    app.register_blueprint(registration.bp)
    app.register_blueprint(deep_linking.bp)
    app.register_blueprint(admin.bp)
    if settings.is_development:
        from .views import demo

        app.register_blueprint(demo.bp)
    for plugin in tool.plugins:
        blueprint = plugin.blueprint()
        if blueprint is not None:
            app.register_blueprint(blueprint, url_prefix=f"/p/{plugin.key}")

    import xapi

    xapi.init_app(app, tool)

    if settings.outbox.inline_worker if start_worker is None else start_worker:
        tool.start_worker(app)

    @app.errorhandler(413)
    def _too_large(_error):
        from .errors import LaunchError
        from .views.errors import render_launch_error

        return render_launch_error(LaunchError("id_token_too_large", "request body over MAX_CONTENT_LENGTH"))

    @app.after_request
    def _security_headers(response):
        # A view may set its own. Werkzeug's setdefault, get and "in" each raise and catch a
        # KeyError for a header that is not there, so the names present are read once instead.
        headers = response.headers
        present = {name.lower() for name, _ in headers}
        if "content-security-policy" not in present:
            headers.add("Content-Security-Policy", f"frame-ancestors {tool.frame_ancestors()}")
        if "x-content-type-options" not in present:
            headers.add("X-Content-Type-Options", "nosniff")
        if "referrer-policy" not in present:
            headers.add("Referrer-Policy", "strict-origin-when-cross-origin")
        return response

    return app
