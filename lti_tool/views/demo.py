"""/demo: a page that plays the VLE, launching the tool in an iframe through the real OIDC flow.

Registered only in development. The demo platform registers itself with the tool on first use,
under the address the page was reached on.
"""

from __future__ import annotations

import secrets
import time
from urllib.parse import urlencode

import jwt
from flask import Blueprint, abort, jsonify, redirect, render_template, request, session, url_for

from ..demo import CLIENT_ID, DEMO_PEOPLE, DEPLOYMENT_ID, DemoError, DemoLaunch, DemoPlatform
from ..id_token import DEEP_LINKING_REQUEST, RESOURCE_LINK_REQUEST
from ..platforms import add_platform, find_platform
from ..roles import ROLES
from .helpers import tool

bp = Blueprint("demo", __name__, url_prefix="/demo")

CONTENT_ITEMS = "https://purl.imsglobal.org/spec/lti-dl/claim/content_items"
PLACED_KEY = "demo_placed_items"


def demo_platform() -> DemoPlatform:
    app_tool = tool()
    if getattr(app_tool, "demo", None) is None:
        app_tool.demo = DemoPlatform(app_tool.settings.instance_path, app_tool.settings.secret_key)
    return app_tool.demo


def demo_issuer() -> str:
    return tool().url_for_public("demo.index").rstrip("/")


def ensure_registered():
    """Register the demo platform under the address in use (idempotent)."""
    issuer = demo_issuer()
    platform = find_platform(tool().db, issuer, CLIENT_ID)
    if platform is None:
        platform = add_platform(
            tool().db,
            issuer=issuer,
            client_id=CLIENT_ID,
            deployment_ids=[DEPLOYMENT_ID],
            auth_login_url=tool().url_for_public("demo.authorize"),
            auth_token_url=tool().url_for_public("demo.token"),
            key_set_url=tool().url_for_public("demo.jwks"),
            name="NPQSL demo platform",
        )
    return platform


@bp.get("/")
def index():
    ensure_registered()
    return render_template("demo.html", roles=ROLES, people=DEMO_PEOPLE, placed=session.get(PLACED_KEY, []))


@bp.get("/start")
def start():
    """Begin a launch as the platform would: a third-party initiated login to the tool."""
    role = request.args.get("role", "")
    if role not in DEMO_PEOPLE:
        abort(400, "Choose one of the four roles.")
    action = request.args.get("action", "launch")
    launch = DemoLaunch(
        role=role, message_type=DEEP_LINKING_REQUEST if action == "deeplink" else RESOURCE_LINK_REQUEST
    )
    item_index = request.args.get("item", type=int)
    if action == "launch" and item_index is not None:
        placed = session.get(PLACED_KEY, [])
        if not 0 <= item_index < len(placed):
            abort(400, "That activity is no longer on the demo page.")
        item = placed[item_index]
        launch = DemoLaunch(
            role=role,
            message_type=RESOURCE_LINK_REQUEST,
            resource_link_id=item["resource_link_id"],
            title=item["title"],
            custom=item.get("custom") or {},
        )
    params = {
        "iss": demo_issuer(),
        "login_hint": demo_platform().login_hint(launch),
        "target_link_uri": tool().url_for_public("lti.launch"),
        "lti_message_hint": secrets.token_hex(8),
        "client_id": CLIENT_ID,
        "lti_deployment_id": DEPLOYMENT_ID,
    }
    return redirect(url_for("lti.login") + "?" + urlencode(params))


@bp.get("/auth")
def authorize():
    """The OIDC authorization endpoint: check the tool's request, answer with a signed id_token."""
    args = request.args
    expected = {"scope": "openid", "response_type": "id_token", "response_mode": "form_post", "prompt": "none"}
    problems = [f"{k} must be {v}" for k, v in expected.items() if args.get(k) != v]
    if args.get("client_id") != CLIENT_ID:
        problems.append("unknown client_id")
    if args.get("redirect_uri") != tool().url_for_public("lti.launch"):
        problems.append("redirect_uri is not the tool's launch URL")
    problems += [f"{k} missing" for k in ("state", "nonce", "login_hint") if not args.get(k)]
    try:
        launch = demo_platform().read_hint(args.get("login_hint", ""))
    except DemoError as exc:
        problems.append(str(exc))
    if problems:
        return jsonify(error="invalid_request", problems=problems), 400
    id_token = demo_platform().id_token(
        issuer=demo_issuer(),
        launch=launch,
        nonce=args["nonce"],
        target_link_uri=args["redirect_uri"],
        deep_link_return_url=tool().url_for_public("demo.deep_link_return"),
    )
    return render_template(
        "auto_post.html", action=args["redirect_uri"], fields={"id_token": id_token, "state": args["state"]}
    )


@bp.get("/jwks")
def jwks():
    return jsonify(demo_platform().jwks())


@bp.post("/token")
def token():
    """Client-credentials grant: the tool's assertion is checked against its own published keys."""
    assertion = request.form.get("client_assertion", "")
    published = {k.kid: k for k in tool().keyring.published()}
    try:
        key = published[jwt.get_unverified_header(assertion).get("kid")]
        jwt.decode(
            assertion,
            key.private_key.public_key(),
            algorithms=["RS256"],
            audience=tool().url_for_public("demo.token"),
            issuer=CLIENT_ID,
        )
    except (KeyError, jwt.InvalidTokenError) as exc:
        return jsonify(error="invalid_client", error_description=str(exc)), 401
    return jsonify(
        access_token="demo-" + secrets.token_hex(16),
        token_type="Bearer",
        expires_in=3600,
        scope=request.form.get("scope", ""),
    )


@bp.post("/deep-link-return")
def deep_link_return():
    """Receive the tool's deep-linking response, verify it, and put the items on the demo page."""
    token = request.form.get("JWT", "")
    published = {k.kid: k for k in tool().keyring.published()}
    try:
        key = published[jwt.get_unverified_header(token).get("kid")]
        claims = jwt.decode(token, key.private_key.public_key(), algorithms=["RS256"], audience=demo_issuer())
    except (KeyError, jwt.InvalidTokenError) as exc:
        return render_template("demo_placed.html", error=str(exc), items=[]), 400
    placed = session.get(PLACED_KEY, [])
    items = claims.get(CONTENT_ITEMS, [])
    for item in items:
        placed.append(
            {
                "title": item.get("title", "Activity"),
                "custom": item.get("custom", {}),
                "resource_link_id": f"demo-link-{int(time.time() * 1000)}-{len(placed)}",
                "score_maximum": (item.get("lineItem") or {}).get("scoreMaximum"),
            }
        )
    session[PLACED_KEY] = placed
    return render_template("demo_placed.html", error=None, items=items)
