"""The deep-linking picker and the signed response that returns to the platform."""

from __future__ import annotations

from flask import Blueprint, render_template, request

from .. import deep_linking
from ..context import LaunchContext
from ..errors import LaunchError
from ..id_token import DEEP_LINKING_REQUEST
from ..launch import load_claims
from ..platforms import get_platform
from ..roles import ADMINISTRATOR, COACH
from .activity import LAUNCH_PARAM, current_launch
from .errors import render_launch_error
from .helpers import tool

bp = Blueprint("deep_linking", __name__, url_prefix="/lti")

DESIGNER_ROLES = (COACH, ADMINISTRATOR)


def render_picker(context: LaunchContext):
    """What a course designer sees after an LtiDeepLinkingRequest."""
    if not context.has_role(*DESIGNER_ROLES):
        return render_launch_error(LaunchError("deep_linking_not_allowed", f"role={context.role}"))
    claims = load_claims(tool().db, context.launch_id)
    settings = deep_linking.settings_of(claims)
    return render_template(
        "deep_linking.html",
        choices=deep_linking.choices(tool().plugins),
        multiple=deep_linking.accepts_multiple(claims),
        heading=settings.get("title") or "Add NPQSL activities",
        launch_token=tool().launch_tokens.issue(context.launch_id),
        failures=tool().plugins.failures,
    )


@bp.post("/deep-link")
def respond():
    """Sign the designer's choice and post it back to the platform's return URL."""
    app_tool = tool()
    try:
        context = current_launch()
        if context.message_type != DEEP_LINKING_REQUEST:
            raise LaunchError("bad_selection", "launch is not a deep linking request")
        if not context.has_role(*DESIGNER_ROLES):
            raise LaunchError("deep_linking_not_allowed", f"role={context.role}")
        claims = load_claims(app_tool.db, context.launch_id)
        chosen = []
        if "cancel" not in request.form:
            try:
                chosen = deep_linking.select(
                    deep_linking.choices(app_tool.plugins),
                    request.form.getlist("item"),
                    multiple=deep_linking.accepts_multiple(claims),
                )
            except deep_linking.SelectionError as exc:
                raise LaunchError("bad_selection", str(exc)) from None
        platform = get_platform(app_tool.db, context.platform_pk)
        if platform is None:
            raise LaunchError("unknown_platform", "registration removed")
        token = deep_linking.response_jwt(
            app_tool.keyring, platform, claims, chosen, app_tool.url_for_public("lti.launch")
        )
    except LaunchError as error:
        return render_launch_error(error)
    return render_template(
        "deep_linking_return.html", action=deep_linking.return_url(claims), jwt=token, count=len(chosen)
    )


__all__ = ["bp", "render_picker", "LAUNCH_PARAM"]
