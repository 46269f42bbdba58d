"""/demo: a page that plays the VLE, launching the tool in an iframe through the real OIDC flow.

Registered only in development. The demo platform registers itself with the tool on first use,
under the address the page was reached on. It also serves what a VLE course serves the tool: a
token endpoint, Assignment and Grade Services over its gradebook (shown at /demo/gradebook) and
the course's class list over Names and Role Provisioning.
"""

from __future__ import annotations

import secrets
import time
from urllib.parse import urlencode

import jwt
from flask import Blueprint, Response, abort, jsonify, redirect, render_template, request, session, url_for

from ..demo import (
    CLIENT_ID,
    COURSE,
    DEMO_PEOPLE,
    DEPLOYMENT_ID,
    DemoError,
    DemoLaunch,
    DemoPlatform,
    ServiceRefusal,
    ServiceUrls,
    class_list,
    learners,
)
from ..demo_gradebook import CourseGradebook, GradebookError, LineItem, Result, parse_line_item, parse_score
from ..grades import (
    LINEITEM_MEDIA_TYPE,
    LINEITEM_READ_SCOPE,
    LINEITEM_SCOPE,
    LINEITEMS_MEDIA_TYPE,
    RESULT_READ_SCOPE,
    RESULTS_MEDIA_TYPE,
    SCORE_MEDIA_TYPE,
    SCORE_SCOPE,
)
from ..id_token import DEEP_LINKING_REQUEST, RESOURCE_LINK_REQUEST
from ..platforms import add_platform, find_platform
from ..roles import ROLES
from ..roster import MEMBERSHIP_MEDIA_TYPE, NRPS_SCOPE
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


def course_gradebook() -> CourseGradebook:
    """The demo course's gradebook, under the demo platform registered at this address."""
    return CourseGradebook(tool().db, ensure_registered().id, COURSE["id"])


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


def service_urls(resource_link_id: str) -> ServiceUrls:
    """The services a launch of the link offers; the link's own line item when it has exactly one."""
    own = course_gradebook().line_items(resource_link_id=resource_link_id)
    return ServiceUrls(
        lineitems=tool().url_for_public("demo.lineitems", context_id=COURSE["id"]),
        memberships=tool().url_for_public("demo.memberships", context_id=COURSE["id"]),
        lineitem=lineitem_url(own[0]) if len(own) == 1 else None,
    )


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
    services = None
    if launch.message_type == RESOURCE_LINK_REQUEST:
        services = service_urls(launch.resource_link_id or "demo-welcome")
    id_token = demo_platform().id_token(
        issuer=demo_issuer(),
        launch=launch,
        nonce=args["nonce"],
        target_link_uri=args["redirect_uri"],
        deep_link_return_url=tool().url_for_public("demo.deep_link_return"),
        services=services,
    )
    return render_template(
        "auto_post.html", action=args["redirect_uri"], fields={"id_token": id_token, "state": args["state"]}
    )


@bp.get("/jwks")
def jwks():
    return jsonify(demo_platform().jwks())


def refusal(status: int, error: str, description: str) -> Response:
    response = jsonify(error=error, error_description=description)
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = f'Bearer error="{error}"'
    return response


@bp.post("/token")
def token():
    """Client-credentials grant: the tool's assertion is checked against its own published keys."""
    tool_keys = {k.kid: k.private_key.public_key() for k in tool().keyring.published()}
    try:
        answer = demo_platform().grant_access_token(
            request.form, tool_keys, token_url=tool().url_for_public("demo.token"), issuer=demo_issuer()
        )
    except ServiceRefusal as refused:
        return refusal(refused.status, refused.error, refused.description)
    response = jsonify(answer)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/deep-link-return")
def deep_link_return():
    """Receive the tool's deep-linking response, verify it, and put the items on the demo page.

    An item with a lineItem gets its gradebook column here, tied to its new resource link, as
    Moodle makes an activity's grade item when it is placed.
    """
    token = request.form.get("JWT", "")
    published = {k.kid: k for k in tool().keyring.published()}
    try:
        key = published[jwt.get_unverified_header(token).get("kid")]
        claims = jwt.decode(token, key.private_key.public_key(), algorithms=["RS256"], audience=demo_issuer())
    except (KeyError, jwt.InvalidTokenError) as exc:
        return render_template("demo_placed.html", error=str(exc), items=[]), 400
    placed = session.get(PLACED_KEY, [])
    items = claims.get(CONTENT_ITEMS, [])
    new_links, columns = [], []
    for item in items:
        link = {
            "title": item.get("title", "Activity"),
            "custom": item.get("custom", {}),
            "resource_link_id": f"demo-link-{int(time.time() * 1000)}-{len(placed) + len(new_links)}",
            "score_maximum": None,
        }
        if item.get("lineItem") is not None:
            try:
                spec = parse_line_item({**item["lineItem"], "resourceLinkId": link["resource_link_id"]})
            except GradebookError as error:
                message = f"the lineItem of {link['title']!r} is not valid: {error.message}"
                return render_template("demo_placed.html", error=message, items=[]), 400
            columns.append(spec)
            link["score_maximum"] = spec.score_maximum
        new_links.append(link)
    course_gradebook().add_line_items(columns)
    session[PLACED_KEY] = placed + new_links
    return render_template("demo_placed.html", error=None, items=items)


# -- the gradebook a person sees ------------------------------------------------------------------
@bp.get("/gradebook")
def gradebook():
    """The demo course's grader report: its learners down, its line items across."""
    book = course_gradebook()
    items = book.line_items()
    results = book.all_results()
    people = dict(learners())
    for _item_id, sub in results:
        people.setdefault(sub, sub)  # a score for someone no longer in the class list still shows
    return render_template(
        "demo_gradebook.html", course_title=COURSE["title"], items=items, people=people, results=results
    )


# -- Assignment and Grade Services ------------------------------------------------------------------
def lineitem_url(item: LineItem) -> str:
    return tool().url_for_public("demo.lineitem", context_id=COURSE["id"], item_id=item.id)


def lineitem_json(item: LineItem) -> dict:
    data = {"id": lineitem_url(item), "label": item.label, "scoreMaximum": item.score_maximum}
    for name, value in (
        ("resourceId", item.resource_id),
        ("tag", item.tag),
        ("resourceLinkId", item.resource_link_id),
    ):
        if value is not None:
            data[name] = value
    return data


def result_json(item: LineItem, result: Result) -> dict:
    url = tool().url_for_public("demo.results", context_id=COURSE["id"], item_id=item.id, user_id=result.user_id)
    data = {
        "id": url,
        "scoreOf": lineitem_url(item),
        "userId": result.user_id,
        "timestamp": result.timestamp.isoformat(),
    }
    if result.grade is not None:
        data.update(resultScore=result.grade, resultMaximum=result.maximum)
    if result.comment:
        data["comment"] = result.comment
    return data


def service_json(data, media_type: str, status: int = 200) -> Response:
    response = jsonify(data)
    response.status_code = status
    response.content_type = media_type
    return response


def serve(context_id: str, scopes: tuple[str, ...], answer, media_type: str | None = None):
    """Run ``answer()`` for a request to the demo course's services that carries the right token."""
    if context_id != COURSE["id"]:
        return refusal(404, "not_found", f"there is no course {context_id!r} on the demo platform")
    try:
        demo_platform().check_access_token(request.headers.get("Authorization"), scopes, issuer=demo_issuer())
        if media_type is not None and request.mimetype != media_type:
            raise GradebookError(415, f"send the body as {media_type}, not {request.mimetype or 'nothing'}")
        return answer()
    except ServiceRefusal as refused:
        return refusal(refused.status, refused.error, refused.description)
    except GradebookError as error:
        code = {404: "not_found", 409: "conflict", 415: "unsupported_media_type"}.get(
            error.status, "invalid_request"
        )
        return refusal(error.status, code, error.message)


def json_body():
    data = request.get_json(force=True, silent=True)
    if data is None:
        raise GradebookError(400, "the body is not JSON")
    return data


@bp.get("/ags/<context_id>/lineitems")
def lineitems(context_id: str):
    def answer():
        args = request.args
        found = course_gradebook().line_items(
            resource_id=args.get("resource_id"), tag=args.get("tag"), resource_link_id=args.get("resource_link_id")
        )
        return service_json([lineitem_json(i) for i in found], LINEITEMS_MEDIA_TYPE)

    return serve(context_id, (LINEITEM_SCOPE, LINEITEM_READ_SCOPE), answer)


@bp.post("/ags/<context_id>/lineitems")
def add_lineitem(context_id: str):
    def answer():
        [item] = course_gradebook().add_line_items([parse_line_item(json_body())])
        response = service_json(lineitem_json(item), LINEITEM_MEDIA_TYPE, 201)
        response.headers["Location"] = lineitem_url(item)
        return response

    return serve(context_id, (LINEITEM_SCOPE,), answer, LINEITEM_MEDIA_TYPE)


@bp.get("/ags/<context_id>/lineitems/<int:item_id>")
def lineitem(context_id: str, item_id: int):
    def answer():
        return service_json(lineitem_json(course_gradebook().line_item(item_id)), LINEITEM_MEDIA_TYPE)

    return serve(context_id, (LINEITEM_SCOPE, LINEITEM_READ_SCOPE), answer)


@bp.post("/ags/<context_id>/lineitems/<int:item_id>/scores")
def scores(context_id: str, item_id: int):
    def answer():
        score = parse_score(json_body())
        if score.user_id not in learners():
            raise GradebookError(400, f"userId {score.user_id!r} is not a learner in the demo course")
        course_gradebook().record_score(item_id, score)
        return Response(status=204)

    return serve(context_id, (SCORE_SCOPE,), answer, SCORE_MEDIA_TYPE)


@bp.get("/ags/<context_id>/lineitems/<int:item_id>/results")
def results(context_id: str, item_id: int):
    def answer():
        book = course_gradebook()
        item = book.line_item(item_id)
        found = book.results(item_id, request.args.get("user_id"))
        return service_json([result_json(item, r) for r in found], RESULTS_MEDIA_TYPE)

    return serve(context_id, (RESULT_READ_SCOPE,), answer)


# -- Names and Role Provisioning --------------------------------------------------------------------
@bp.get("/nrps/<context_id>/memberships")
def memberships(context_id: str):
    def answer():
        members = class_list()
        role = request.args.get("role")
        if role:
            members = [m for m in members if role in m["roles"] or any(r.endswith("#" + role) for r in m["roles"])]
        body = {"id": request.url, "context": dict(COURSE), "members": members}
        return service_json(body, MEMBERSHIP_MEDIA_TYPE)

    return serve(context_id, (NRPS_SCOPE,), answer)
