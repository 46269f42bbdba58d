"""The LTI 1.3 endpoints: OIDC login initiation (/lti/login) and the launch (/lti/launch)."""

from __future__ import annotations

import logging
from urllib.parse import urlencode, urlsplit

from flask import Blueprint, redirect, render_template, request, url_for

from .. import login_states
from ..cookies import set_cookie
from ..errors import LaunchError
from ..launch import BrowserBindingMissing, record, state_cookie_name
from ..platforms import find_platform, get_platform
from .errors import render_launch_error
from .helpers import tool

log = logging.getLogger(__name__)

bp = Blueprint("lti", __name__, url_prefix="/lti")

# The probe cookie tells, without JavaScript, whether this browser keeps the tool's cookies here.
PROBE_COOKIE = "lti_cookie_probe"
LOGIN_PARAMS = (
    "iss",
    "login_hint",
    "target_link_uri",
    "lti_message_hint",
    "client_id",
    "lti_deployment_id",
)


def launch_url() -> str:
    return tool().url_for_public("lti.launch")


def _login_params() -> dict[str, str]:
    source = request.form if request.method == "POST" else request.args
    return {k: source[k] for k in LOGIN_PARAMS if source.get(k)}


def _check_target(target_link_uri: str) -> None:
    """The target must be an address of this tool, so a login cannot send anyone elsewhere."""
    ours = urlsplit(tool().url_for_public("lti.launch"))
    target = urlsplit(target_link_uri)
    if (target.scheme, target.netloc) != (ours.scheme, ours.netloc):
        raise LaunchError(
            "bad_target_link_uri",
            f"{target_link_uri!r} is not on {ours.scheme}://{ours.netloc}",
        )


@bp.route("/login", methods=["GET", "POST"])
def login():
    """Third-party initiated login: record state + nonce, then send the browser to the platform."""
    try:
        return _login()
    except LaunchError as error:
        return render_launch_error(error)


def _login():
    params = _login_params()
    source = request.form if request.method == "POST" else request.args
    storage_target = source.get("lti_storage_target")
    missing = [k for k in ("iss", "login_hint", "target_link_uri") if not params.get(k)]
    if missing:
        raise LaunchError("bad_login_request", "missing " + ", ".join(missing))
    _check_target(params["target_link_uri"])
    platform = find_platform(tool().db, params["iss"], params.get("client_id"))
    if platform is None:
        raise LaunchError(
            "unknown_platform",
            f"iss={params['iss']!r} client_id={params.get('client_id')!r}",
        )
    if not platform.approved:
        raise LaunchError("platform_not_approved", f"platform id {platform.id}")
    deployment_hint = params.get("lti_deployment_id")
    if deployment_hint and deployment_hint not in platform.deployment_ids:
        raise LaunchError("unknown_deployment", f"lti_deployment_id={deployment_hint!r}")

    cookies_work = PROBE_COOKIE in request.cookies
    if not cookies_work and not source.get("probe"):
        # First visit: set the probe and come straight back; one extra hop, once per browser.
        response = redirect(
            url_for("lti.login", **params, probe="1", **_storage_arg(storage_target)),
            303,
        )
        set_cookie(response, PROBE_COOKIE, "1", max_age=365 * 86400)
        return response
    if not cookies_work and not storage_target:
        return _cookies_blocked_page(params)

    settings = tool().settings
    new = login_states.start(
        tool().db,
        platform_id=platform.id,
        target_link_uri=params["target_link_uri"],
        login_params=params,
        storage_target=None if cookies_work else storage_target,
        ttl_seconds=settings.launch.login_ttl_seconds,
    )
    auth_params = {
        "scope": "openid",
        "response_type": "id_token",
        "response_mode": "form_post",
        "prompt": "none",
        "client_id": platform.client_id,
        "redirect_uri": launch_url(),
        "login_hint": params["login_hint"],
        "state": new.state,
        "nonce": new.nonce,
    }
    if params.get("lti_message_hint"):
        auth_params["lti_message_hint"] = params["lti_message_hint"]
    separator = "&" if "?" in platform.auth_login_url else "?"
    auth_url = platform.auth_login_url + separator + urlencode(auth_params)
    log.info("login started platform=%s state=%s…", platform.id, new.state[:8])

    if not cookies_work:
        # Cookies are blocked but the platform offers client-side storage (lti_storage_target).
        origin = "{0.scheme}://{0.netloc}".format(urlsplit(platform.auth_login_url))
        return render_template(
            "storage_put.html",
            target=storage_target,
            origin=origin,
            key=f"state_{new.state}",
            value=new.browser_secret,
            auth_url=auth_url,
        )
    response = redirect(auth_url, 302)
    set_cookie(
        response,
        state_cookie_name(new.state),
        new.browser_secret,
        max_age=settings.launch.login_ttl_seconds,
    )
    return response


def _storage_arg(storage_target: str | None) -> dict[str, str]:
    return {"lti_storage_target": storage_target} if storage_target else {}


def _cookies_blocked_page(params: dict[str, str]):
    new_window_url = url_for("lti.login", **params, new_window="1")
    return render_template("cookies_blocked.html", new_window_url=new_window_url), 200


@bp.route("/launch", methods=["POST"])
def launch():
    """The platform's form post of the id_token: validate everything, then record and show."""
    app_tool = tool()
    try:
        validated = app_tool.validator.validate(request.form, request.cookies)
        context = record(app_tool.db, validated, app_tool.settings)
    except BrowserBindingMissing as missing:
        return _binding_missing(missing)
    except LaunchError as error:
        return render_launch_error(error)
    log.info(
        "launch ok platform=%s user=%s role=%s type=%s launch=%s",
        context.platform_pk,
        context.user_pk,
        context.role,
        context.message_type,
        context.launch_id,
    )
    return app_tool.after_launch(context)


def _binding_missing(missing: BrowserBindingMissing):
    login = missing.login
    platform = get_platform(tool().db, login.platform_id)
    if login.storage_target and platform is not None:
        return render_template(
            "storage_get.html",
            target=login.storage_target,
            origin="{0.scheme}://{0.netloc}".format(urlsplit(platform.auth_login_url)),
            key=f"state_{login.state}",
            state=login.state,
            id_token=missing.id_token,
            action=url_for("lti.launch"),
        )
    log.warning(
        "launch without state cookie ref=%s state=%s…",
        missing.reference,
        login.state[:8],
    )
    new_window_url = url_for("lti.login", **login.login_params, new_window="1")
    return render_template(
        "cookies_blocked.html",
        new_window_url=new_window_url,
        reference=missing.reference,
    ), 401
