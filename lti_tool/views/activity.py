"""The activity shell: what a person sees after a launch, and how follow-up requests find it."""

from __future__ import annotations

from flask import Blueprint, render_template, request

from .. import launch as launches
from ..context import LaunchContext
from ..errors import LaunchError
from .errors import render_launch_error
from .helpers import tool

bp = Blueprint("activity", __name__)

LAUNCH_PARAM = "launch"


def current_launch() -> LaunchContext:
    """The launch a follow-up request belongs to, from its signed reference."""
    token = request.values.get(LAUNCH_PARAM) or request.headers.get("X-Launch")
    return launches.load(tool().db, tool().launch_tokens.read(token))


def render_landing(context: LaunchContext):
    return render_template(
        "landing.html",
        launch=context,
        launch_token=tool().launch_tokens.issue(context.launch_id),
    )


@bp.get("/lti/activity")
def activity():
    """Re-open the landing page of an earlier launch (links inside the iframe come here)."""
    try:
        context = current_launch()
    except LaunchError as error:
        return render_launch_error(error)
    return render_landing(context)
