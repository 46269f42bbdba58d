"""The activity shell: routing a launch to its plugin, and how follow-up requests find the launch."""

from __future__ import annotations

from flask import Blueprint, g, render_template, request

from plugins.contract import ACTIVITY_PARAM, PLUGIN_PARAM

from .. import launch as launches
from ..context import LaunchContext
from ..errors import LaunchError
from .errors import render_launch_error
from .helpers import tool

bp = Blueprint("activity", __name__)

LAUNCH_PARAM = "launch"


def current_launch() -> LaunchContext:
    """The launch a follow-up request belongs to, from its signed reference.

    It is also kept as ``g.launch_context`` for the rest of the request, as ``render_activity``
    keeps a fresh launch's: templates (the shell's links) read it from there.
    """
    token = request.values.get(LAUNCH_PARAM) or request.headers.get("X-Launch")
    g.launch_context = launches.load(tool().db, tool().launch_tokens.read(token))
    return g.launch_context


def render_landing(context: LaunchContext):
    return render_template(
        "landing.html", launch=context, launch_token=tool().launch_tokens.issue(context.launch_id)
    )


def render_activity(context: LaunchContext):
    """The plugin named by the resource link's custom parameters, or the landing page."""
    g.launch_context = context
    plugin_key = context.custom.get(PLUGIN_PARAM)
    if not plugin_key:
        return render_landing(context)
    plugin = tool().plugins.get(plugin_key)
    if plugin is None:
        return render_launch_error(LaunchError("plugin_not_installed", f"plugin={plugin_key!r}"))
    if context.role not in plugin.launch_roles:
        return render_launch_error(LaunchError("role_not_admitted", f"plugin={plugin_key} role={context.role}"))
    return plugin.launch(context, context.custom.get(ACTIVITY_PARAM, ""))


@bp.get("/lti/activity")
def activity():
    """Re-open an earlier launch (links inside the iframe come here)."""
    try:
        context = current_launch()
    except LaunchError as error:
        return render_launch_error(error)
    return render_activity(context)
