"""The LTI 1.3 endpoints: OIDC login initiation (/lti/login) and the launch (/lti/launch)."""

from __future__ import annotations

import logging
import re
from urllib.parse import urlencode, urlsplit

from flask import Blueprint, Response, make_response, redirect, render_template, request, url_for

from .. import login_states
from ..cookies import delete_cookie, is_secure_context, set_cookie
from ..errors import LaunchError
from ..launch import BrowserBindingMissing, record, state_cookie_name
from ..platforms import get_platform
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
# Fields the tool adds when it posts a launch again from its own page.
STORAGE_VALUE_FIELD = "lti_storage_value"
RESUBMIT_FIELD = "lti_resubmit"
# Only a token of JWT characters is put back into a page (the signature part is not checked
# before the browser binding is).
JWT_SHAPE = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")


@bp.after_request
def _no_store(response):
    """Login and launch pages carry one-time secrets (state, browser binding, id_token)."""
    if not any(name.lower() == "cache-control" for name, _ in response.headers):
        response.headers.add("Cache-Control", "no-store")
    return response


def launch_url() -> str:
    return tool().url_for_public("lti.launch")


def _login_params(source) -> dict[str, str]:
    return {k: source[k] for k in LOGIN_PARAMS if source.get(k)}


def _check_target(target_link_uri: str, our_launch_url: str) -> None:
    """The target must be an address of this tool, so a login cannot send anyone elsewhere."""
    ours = urlsplit(our_launch_url)
    target = urlsplit(target_link_uri)
    if (target.scheme, target.netloc) != (ours.scheme, ours.netloc):
        raise LaunchError(
            "bad_target_link_uri",
            f"{target_link_uri!r} is not on {ours.scheme}://{ours.netloc}",
        )


@bp.route("/login", methods=["GET", "POST"])
def login():
    """Third-party initiated login: issue a signed state and nonce, then send the browser to the platform."""
    try:
        return _login()
    except LaunchError as error:
        return render_launch_error(error)


def _login():
    source = request.form if request.method == "POST" else request.args
    params = _login_params(source)
    storage_target = source.get("lti_storage_target")
    missing = [k for k in ("iss", "login_hint", "target_link_uri") if not params.get(k)]
    if missing:
        raise LaunchError("bad_login_request", "missing " + ", ".join(missing))
    redirect_uri = launch_url()
    _check_target(params["target_link_uri"], redirect_uri)
    platform = tool().platforms.find(params["iss"], params.get("client_id"))
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

    states = tool().login_states
    new = states.start(
        platform_id=platform.id,
        login_params=params,
        storage_target=None if cookies_work else storage_target,
    )
    auth_params = {
        "scope": "openid",
        "response_type": "id_token",
        "response_mode": "form_post",
        "prompt": "none",
        "client_id": platform.client_id,
        "redirect_uri": redirect_uri,
        "login_hint": params["login_hint"],
        "state": new.state,
        "nonce": new.nonce,
    }
    if params.get("lti_message_hint"):
        auth_params["lti_message_hint"] = params["lti_message_hint"]
    separator = "&" if "?" in platform.auth_login_url else "?"
    auth_url = platform.auth_login_url + separator + urlencode(auth_params)
    log.debug("login started platform=%s login=%s", platform.id, new.id)

    if not cookies_work:
        # Cookies are blocked but the platform offers client-side storage (lti_storage_target).
        origin = "{0.scheme}://{0.netloc}".format(urlsplit(platform.auth_login_url))
        return render_template(
            "storage_put.html",
            target=storage_target,
            origin=origin,
            key=f"state_{new.id}",
            value=new.browser_secret,
            auth_url=auth_url,
            new_window_url=_new_window_url(params),
        )
    # A bare 302: the browser follows it at once, so the body a redirect() page carries is waste.
    response = Response(status=302, headers={"Location": auth_url})
    set_cookie(
        response,
        state_cookie_name(new.id),
        new.browser_secret,
        max_age=states.ttl_seconds,
    )
    return response


def _storage_arg(storage_target: str | None) -> dict[str, str]:
    return {"lti_storage_target": storage_target} if storage_target else {}


def _new_window_url(params: dict[str, str]) -> str:
    """The login again, to be opened as a window of its own where the tool's cookies are first-party."""
    return url_for("lti.login", **{k: v for k, v in params.items() if k in LOGIN_PARAMS}, new_window="1")


def _is_top_level() -> bool:
    """Whether the browser says this page is its own window (Fetch Metadata); unknown counts as framed."""
    return request.headers.get("Sec-Fetch-Dest") == "document"


def _cookies_blocked_page(params: dict[str, str], status: int = 200, reference: str | None = None):
    page = render_template(
        "cookies_blocked.html",
        new_window_url=_new_window_url(params),
        top_level=_is_top_level(),
        host=urlsplit(tool().url_for_public("lti.login")).netloc,
        reference=reference,
    )
    return page, status


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
    # DEBUG: the launches table records every launch, and the server's access log every request.
    log.debug(
        "launch ok platform=%s user=%s role=%s type=%s launch=%s",
        context.platform_pk,
        context.user_pk,
        context.role,
        context.message_type,
        context.launch_id,
    )
    response = make_response(app_tool.after_launch(context))
    cookie = state_cookie_name(validated.login.id)
    if cookie in request.cookies:
        # Used once; without this every launch would leave one more cookie for five minutes.
        delete_cookie(response, cookie)
    return response


def _binding_missing(missing: BrowserBindingMissing):
    """The launch came without its state cookie: post it again, use client-side storage, or ask
    for a new window."""
    login = missing.login
    if not JWT_SHAPE.fullmatch(missing.id_token):
        return render_launch_error(LaunchError("malformed_id_token", "characters outside base64url"))
    if login_states.was_used(tool().db, login.id):
        # The launch that used the login deleted its cookie: this is the same form posted again.
        return render_launch_error(LaunchError("replayed_launch", f"login {login.id} already launched"))
    platform = get_platform(tool().db, login.platform_id)
    already_retried = STORAGE_VALUE_FIELD in request.form or RESUBMIT_FIELD in request.form
    if login.storage_target and platform is not None and not already_retried:
        return _repost_page(
            missing,
            storage_target=login.storage_target,
            origin="{0.scheme}://{0.netloc}".format(urlsplit(platform.auth_login_url)),
        )
    if _lax_cookie_left_behind() and not already_retried:
        # A SameSite=Lax cookie stays behind on the platform's cross-site form post, even in a
        # window of the tool's own; the same form posted from this page is same-site and takes it.
        return _repost_page(missing)
    log.warning("launch without state cookie ref=%s login=%s", missing.reference, login.id)
    return _cookies_blocked_page(login.login_params, status=401, reference=missing.reference)


def _lax_cookie_left_behind() -> bool:
    """Plain-http cookies are SameSite=Lax: kept in a top-level window, not sent on a cross-site POST."""
    if is_secure_context() or not _is_top_level():
        return False
    return request.headers.get("Sec-Fetch-Site", "cross-site") == "cross-site"


def _repost_page(missing: BrowserBindingMissing, storage_target: str | None = None, origin: str = ""):
    login = missing.login
    return render_template(
        "storage_get.html",
        target=storage_target,
        origin=origin,
        key=f"state_{login.id}",
        state=login.state,
        id_token=missing.id_token,
        action=url_for("lti.launch"),
        new_window_url=_new_window_url(login.login_params),
    )
