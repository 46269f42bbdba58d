"""Dynamic registration (/lti/register) and the set-up page administrators read (/lti/setup)."""

from __future__ import annotations

import logging

from flask import Blueprint, render_template, request

from ..errors import new_reference
from ..registration import RegistrationError, ToolRegistration, admit, store
from .helpers import tool

log = logging.getLogger(__name__)

bp = Blueprint("registration", __name__, url_prefix="/lti")


def tool_urls() -> dict[str, str]:
    """The URLs a platform needs, as the platform must see them."""
    app_tool = tool()
    return {
        "login": app_tool.url_for_public("lti.login"),
        "launch": app_tool.url_for_public("lti.launch"),
        "jwks": app_tool.url_for_public("wellknown.jwks"),
        "register": app_tool.url_for_public("registration.register"),
        "logo": app_tool.url_for_public("static", filename="logo.svg"),
        "setup": app_tool.url_for_public("registration.setup"),
    }


@bp.get("/register")
def register():
    """Registration initiation: the platform opens this with openid_configuration (+ registration_token)."""
    app_tool = tool()
    config_url = request.args.get("openid_configuration", "")
    try:
        if not config_url.startswith(("http://", "https://")):
            raise RegistrationError(
                "This address is for LTI Dynamic Registration: paste it into the VLE's tool "
                "registration screen (Moodle: Manage tools → Tool URL) rather than opening it directly."
            )
        admission = admit(app_tool.db, app_tool.settings, request.args.get("invite"))
        flow = ToolRegistration(
            settings=app_tool.settings,
            urls=tool_urls(),
            config_url=config_url,
            registration_token=request.args.get("registration_token"),
        )
        config, answer = flow.register_with_platform()
        platform = store(app_tool.db, config, answer, admission)
    except RegistrationError as error:
        reference = new_reference()
        log.warning("registration refused ref=%s config=%s: %s", reference, config_url[:200], error)
        return render_template("registration_error.html", message=str(error), reference=reference), error.status
    log.info("registered platform id=%s issuer=%s approved=%s", platform.id, platform.issuer, platform.approved)
    return render_template("registration_done.html", platform=platform)


@bp.get("/setup")
def setup():
    """What an administrator pastes into their VLE, for manual or dynamic registration."""
    settings = tool().settings.registration
    return render_template("setup.html", urls=tool_urls(), registration=settings)
