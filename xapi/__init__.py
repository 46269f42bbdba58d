"""xAPI: statements from learning events, the embedded LRS, forwarding to external LRSs.

The LTI core knows this package through two calls only: ``init_app`` (from the app factory)
and the ``lrs``/``xapi`` command groups (from the CLI).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

    from lti_tool.app import Tool


def init_app(app: Flask, tool: Tool) -> None:
    """Mount the embedded LRS and install the xAPI receivers of learning events."""
    from . import analytics_views, openapi, profile, projection, receivers

    if tool.settings.xapi.lrs_enabled:
        from .lrs import views as lrs_views

        lrs_views.init_app(app, tool)
    projection.install(tool)
    app.register_blueprint(analytics_views.bp)
    app.register_blueprint(openapi.bp)
    app.register_blueprint(profile.bp)
    receivers.install(tool)
