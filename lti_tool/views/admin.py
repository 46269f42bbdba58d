"""Operating the tool from inside the VLE: the outbox page for the platform's administrators.

Reached like a plugin's views, with the launch reference (``launch``) of an administrator's
launch; everything shown and re-driven is the launching platform's own. The launch reference is
also what makes the Retry forms safe from cross-site forgery: another site cannot know it.
"""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, url_for

from .. import outbox
from ..context import LaunchContext
from ..errors import LaunchError
from ..roles import ADMINISTRATOR
from .activity import current_launch
from .errors import render_launch_error
from .helpers import tool

bp = Blueprint("admin", __name__, url_prefix="/admin")

ADMIN_ROLES = (ADMINISTRATOR,)


def admin_launch() -> LaunchContext:
    """The launch of the request, if its person is an administrator (LaunchError otherwise)."""
    context = current_launch()
    if not context.has_role(*ADMIN_ROLES):
        raise LaunchError("role_not_admitted", f"admin page, role={context.role}")
    return context


@bp.get("/outbox")
def outbox_page():
    """Counts per receiver and status, the oldest pending delivery, dead rows with their answer."""
    try:
        context = admin_launch()
    except LaunchError as error:
        return render_launch_error(error)
    state = outbox.status(tool().db, platform_id=context.platform_pk)
    return render_template(
        "admin_outbox.html",
        state=state,
        statuses=outbox.STATUSES,
        oldest_age=outbox.format_age(state.oldest_pending_age),
        launch_token=tool().launch_tokens.issue(context.launch_id),
        retried=request.args.getlist("retried", type=int),
        not_dead=request.args.getlist("not_dead", type=int),
        failures=tool().plugins.failures,
    )


@bp.post("/outbox/retry")
def retry():
    """Put one dead row (``id``), or every dead row (``all``), of this platform back to pending."""
    try:
        context = admin_launch()
    except LaunchError as error:
        return render_launch_error(error)
    ids = request.form.getlist("id", type=int)
    if not ids and not request.form.get("all"):
        return render_launch_error(LaunchError("bad_selection", "outbox retry without id or all"))
    retried = outbox.retry_dead(tool().db, ids=ids, platform_id=context.platform_pk)
    not_dead = sorted(set(ids) - set(retried))
    target = url_for(
        "admin.outbox_page",
        launch=tool().launch_tokens.issue(context.launch_id),
        retried=retried or None,
        not_dead=not_dead or None,
    )
    return redirect(target, code=303)
