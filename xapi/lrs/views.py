"""The LRS's HTTP face: one blueprint at /xapi, with authentication, versions and CORS.

Every resource request goes the same way: unwrap the alternate syntax, check the key and its
scope, check X-Experience-API-Version, then hand an ``XapiRequest`` to the resource's handler.
"""

from __future__ import annotations

import json
import logging

from flask import Blueprint, Response, request
from sqlalchemy import select
from werkzeug.exceptions import HTTPException

from . import documents, params, statements
from .auth import Authenticator
from .documents import ACTIVITY_PROFILE, AGENT_PROFILE, STATE, DocumentStore
from .errors import LrsError, bad_request, error_response
from .models import LrsActivity
from .request import SUPPORTED_VERSION, XapiRequest, from_flask
from .store import StatementStore, format_ms, now_ms, sha256_hex

log = logging.getLogger(__name__)

BASE_PATH = "/xapi"
VERSIONS = ["1.0.0", "1.0.1", "1.0.2", "1.0.3", "2.0.0"]
MAX_BODY = 64 * 1024 * 1024
CORS_HEADERS = {
    "Access-Control-Allow-Methods": "GET, HEAD, PUT, POST, DELETE, OPTIONS",
    "Access-Control-Allow-Headers": (
        "Authorization, Content-Type, X-Experience-API-Version, If-Match, If-None-Match, Accept-Language"
    ),
    "Access-Control-Expose-Headers": (
        "ETag, Last-Modified, X-Experience-API-Version, X-Experience-API-Consistent-Through, Content-Type"
    ),
    "Access-Control-Max-Age": "86400",
}


class Lrs:
    """What the handlers share: the stores, the keys, where the LRS lives."""

    base_path = BASE_PATH

    def __init__(self, db, store: StatementStore, public_url: str):
        self.db = db
        self.store = store
        self.documents = DocumentStore(db)
        self.authenticator = Authenticator(db)
        self.public_url = public_url

    def home_page(self) -> str:
        """The homePage of the accounts that name LRS keys in statement authorities."""
        return (self.public_url or request.host_url.rstrip("/")) + BASE_PATH


def _activities(lrs: Lrs, req: XapiRequest) -> Response:
    if set(req.args) != {"activityId"}:
        raise bad_request("activityId: GET /activities takes exactly one parameter, activityId")
    activity_id = params.iri("activityId", req.args["activityId"])
    table = LrsActivity.__table__
    with lrs.db.sessions() as session:
        definition = session.scalar(select(table.c.definition).where(table.c.id_hash == sha256_hex(activity_id)))
    activity = {"objectType": "Activity", "id": activity_id}
    if definition:
        activity["definition"] = json.loads(definition)
    return Response(json.dumps(activity), status=200, mimetype="application/json")


def _agents(lrs: Lrs, req: XapiRequest) -> Response:
    if set(req.args) != {"agent"}:
        raise bad_request("agent: GET /agents takes exactly one parameter, agent")
    agent, _ifi = params.agent(req.args["agent"], req.version)
    person = {"objectType": "Person"}
    if isinstance(agent.get("name"), str):
        person["name"] = [agent["name"]]
    for key in ("mbox", "mbox_sha1sum", "openid", "account"):
        if key in agent:
            person[key] = [agent[key]]
    return Response(json.dumps(person), status=200, mimetype="application/json")


ROUTES = {
    "statements": {"GET": statements.get, "PUT": statements.put, "POST": statements.post},
    "activities/state": STATE,
    "activities/profile": ACTIVITY_PROFILE,
    "agents/profile": AGENT_PROFILE,
    "activities": {"GET": _activities},
    "agents": {"GET": _agents},
}


def make_blueprint(lrs: Lrs) -> Blueprint:
    bp = Blueprint("lrs", __name__, url_prefix=BASE_PATH)

    @bp.before_request
    def _limits():
        request.max_content_length = MAX_BODY
        if request.method == "OPTIONS":
            return Response(status=204)
        return None

    @bp.after_request
    def _headers(response: Response) -> Response:
        response.headers["Access-Control-Allow-Origin"] = request.headers.get("Origin", "*")
        response.headers["Vary"] = "Origin"
        response.headers.update(CORS_HEADERS)
        version = request.headers.get("X-Experience-API-Version", "")
        response.headers["X-Experience-API-Version"] = "1.0.3" if version.startswith("1.") else "2.0.0"
        response.headers.setdefault("X-Experience-API-Consistent-Through", format_ms(now_ms()))
        return response

    @bp.errorhandler(LrsError)
    def _refused(error: LrsError):
        response = error_response(error)
        if error.status == 401:
            response.headers["WWW-Authenticate"] = 'Basic realm="xAPI"'
        return response

    @bp.errorhandler(HTTPException)
    def _http_error(error: HTTPException):
        return error_response(LrsError(error.code or 400, error.description or error.name))

    @bp.errorhandler(Exception)
    def _failed(error: Exception):
        log.exception("LRS request failed: %s %s", request.method, request.path)
        return error_response(LrsError(500, "the LRS failed to handle this request; it is logged"))

    @bp.route("/about", methods=["GET"])
    def about():
        body = {"version": VERSIONS, "extensions": {"https://w3id.org/xapi/lrs/name": "npqsl-lti embedded LRS"}}
        return Response(json.dumps(body), status=200, mimetype="application/json")

    def dispatch(resource: str):
        req = from_flask(request)
        credential = lrs.authenticator.check(req.headers.get("Authorization"))
        if credential is None:
            raise LrsError(401, "Authorization: missing or wrong LRS credentials (HTTP Basic key and secret)")
        if not credential.allows("GET" if req.method == "HEAD" else req.method):
            raise LrsError(
                403, f"Authorization: this key's scope ({credential.scope}) does not allow {req.method}"
            )
        version = req.headers.get("X-Experience-API-Version")
        if version is None:
            raise bad_request("X-Experience-API-Version: required on every request but GET /about")
        if not SUPPORTED_VERSION.match(version.strip()):
            raise bad_request(f"X-Experience-API-Version: {version!r} is not supported (1.0.0-1.0.3, 2.0.0)")
        req.version = version.strip()
        req.credential = credential
        handlers = ROUTES[resource]
        method = "GET" if req.method == "HEAD" else req.method
        if isinstance(handlers, documents.Resource):
            if method not in ("GET", "PUT", "POST", "DELETE"):
                raise LrsError(405, f"{req.method} is not allowed on /{resource}")
            return documents.handle(lrs, handlers, req)
        handler = handlers.get(method)
        if handler is None:
            raise LrsError(405, f"{req.method} is not allowed on /{resource}")
        return handler(lrs, req)

    for resource in ROUTES:
        bp.add_url_rule(
            f"/{resource}",
            endpoint=resource.replace("/", "_"),
            view_func=lambda resource=resource: dispatch(resource),
            methods=["GET", "HEAD", "PUT", "POST", "DELETE", "OPTIONS"],
        )
    return bp


def init_app(app, tool) -> None:
    """Mount the LRS at /xapi."""
    from . import statement_store

    lrs = Lrs(tool.db, statement_store(tool), tool.settings.public_url)
    app.register_blueprint(make_blueprint(lrs))
    app.extensions["npqsl_lrs"] = lrs
