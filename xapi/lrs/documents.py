"""The document resources: State, Activity Profile and Agent Profile.

Each is a key-value store of documents under a scope (an activity and agent, plus an optional
registration, for State; an activity; an agent), with ETag concurrency: If-Match and
If-None-Match on writes, and (xAPI 2.0 for all three, 1.0.3 for profiles) a PUT over an existing
document without either header is refused with 409; 1.0.3 refuses a profile PUT without either
header even for a new document (400).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from flask import Response
from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from lti_tool.db import Database

from . import params
from .errors import LrsError, bad_request
from .models import LrsDocument
from .request import XapiRequest
from .store import format_ms, now_ms


@dataclass(frozen=True)
class Resource:
    kind: str  # "state", "activity_profile", "agent_profile"
    id_param: str  # stateId / profileId
    needs_activity: bool
    needs_agent: bool
    has_registration: bool
    # Whether a PUT over an existing document needs If-Match/If-None-Match in xAPI 1.0.x.
    v1_concurrency: bool


STATE = Resource("state", "stateId", True, True, True, False)
ACTIVITY_PROFILE = Resource("activity_profile", "profileId", True, False, False, True)
AGENT_PROFILE = Resource("agent_profile", "profileId", False, True, False, True)


@dataclass(frozen=True)
class Document:
    content: bytes
    content_type: str
    etag: str
    updated_ms: int


class DocumentStore:
    """Documents by scope and id."""

    def __init__(self, db: Database):
        self.db = db
        self.table = LrsDocument.__table__

    def get(self, scope: str, doc_id: str, session=None) -> Document | None:
        if session is None:
            with self.db.sessions() as own:
                return self.get(scope, doc_id, own)
        t = self.table
        row = session.execute(
            select(t.c.content, t.c.content_type, t.c.etag, t.c.updated_ms).where(
                t.c.scope == scope, t.c.doc_id == doc_id
            )
        ).first()
        return Document(*row) if row else None

    def ids(self, scope: str, since_ms: int | None) -> list[str]:
        t = self.table
        stmt = select(t.c.doc_id).where(t.c.scope == scope)
        if since_ms is not None:
            stmt = stmt.where(t.c.updated_ms > since_ms)
        with self.db.sessions() as session:
            return list(session.scalars(stmt.order_by(t.c.id)))

    def write(self, session, scope: str, doc_id: str, content: bytes, content_type: str, exists: bool) -> None:
        values = {
            "content": content,
            "content_type": content_type,
            "etag": hashlib.sha1(content).hexdigest(),
            "updated_ms": now_ms(),
        }
        t = self.table
        if exists:
            session.execute(update(t).where(t.c.scope == scope, t.c.doc_id == doc_id).values(**values))
        else:
            session.execute(insert(t).values(scope=scope, doc_id=doc_id, **values))

    def delete(self, session, scope: str, doc_id: str | None) -> None:
        t = self.table
        stmt = delete(t).where(t.c.scope == scope)
        if doc_id is not None:
            stmt = stmt.where(t.c.doc_id == doc_id)
        session.execute(stmt)


def _scope(resource: Resource, req: XapiRequest) -> str:
    args = req.args
    parts = [resource.kind]
    if resource.needs_activity:
        if "activityId" not in args:
            raise bad_request("activityId: required")
        parts.append(params.iri("activityId", args["activityId"]))
    if resource.needs_agent:
        if "agent" not in args:
            raise bad_request("agent: required")
        parts.append(params.agent(args["agent"], req.version)[1])
    if resource.has_registration and "registration" in args:
        parts.append(params.uuid("registration", args["registration"]))
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def _allowed(resource: Resource, req: XapiRequest, extra: set[str]) -> None:
    allowed = {resource.id_param} | extra
    if resource.needs_activity:
        allowed.add("activityId")
    if resource.needs_agent:
        allowed.add("agent")
    if resource.has_registration:
        allowed.add("registration")
    unknown = set(req.args) - allowed
    if unknown:
        raise bad_request(f"{sorted(unknown)[0]}: not a parameter of this resource")


def _etag_matches(header: str, etag: str) -> bool:
    tags = [t.strip() for t in header.split(",")]
    return any(t == "*" or t.strip('"').removeprefix("W/").strip('"') == etag for t in tags)


def _preconditions(req: XapiRequest, existing: Document | None) -> None:
    if_match = req.headers.get("If-Match")
    if_none_match = req.headers.get("If-None-Match")
    if if_match is not None and (existing is None or not _etag_matches(if_match, existing.etag)):
        raise LrsError(412, "If-Match: the document has changed (or does not exist)")
    if if_none_match is not None and existing is not None and _etag_matches(if_none_match, existing.etag):
        raise LrsError(412, "If-None-Match: the document already exists")


def _json_object(content: bytes, field: str) -> dict:
    try:
        data = json.loads(content.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        data = None
    if not isinstance(data, dict):
        raise bad_request(f"{field}: a POST merges JSON objects; this document is not one")
    return data


def handle(lrs, resource: Resource, req: XapiRequest) -> Response:
    """One request to a document resource."""
    if req.method in ("GET", "HEAD"):
        return _get(lrs, resource, req)
    if req.method == "DELETE":
        return _delete(lrs, resource, req)
    _allowed(resource, req, set())
    if resource.id_param not in req.args:
        raise bad_request(f"{resource.id_param}: required")
    scope, doc_id = _scope(resource, req), req.args[resource.id_param]
    try:
        with lrs.db.transaction() as session:
            _write(lrs, resource, req, session, scope, doc_id)
    except IntegrityError:
        raise LrsError(
            409, f"{resource.id_param}: the document was created by another request meanwhile"
        ) from None
    return Response(status=204)


def _write(lrs, resource: Resource, req: XapiRequest, session, scope: str, doc_id: str) -> None:
    """PUT (replace) or POST (merge JSON) one document, inside the caller's transaction."""
    content_type = req.content_type or "application/octet-stream"
    content = req.body
    existing = lrs.documents.get(scope, doc_id, session)
    _preconditions(req, existing)
    if req.method == "PUT":
        has_precondition = "If-Match" in req.headers or "If-None-Match" in req.headers
        if not has_precondition and (req.is_v2 or resource.v1_concurrency):
            if existing is not None:
                raise LrsError(409, "If-Match: the document exists; send If-Match with its ETag")
            if not req.is_v2:
                raise bad_request("If-None-Match: xAPI 1.0 needs If-Match or If-None-Match: * on a profile PUT")
    else:
        if req.mimetype == "application/json" or (
            existing and existing.content_type.startswith("application/json")
        ):
            incoming = _json_object(content, "body")
            if existing is not None:
                merged = {**_json_object(existing.content, "stored document"), **incoming}
                content = json.dumps(merged).encode()
            else:
                content = json.dumps(incoming).encode()
            content_type = "application/json"
        elif existing is not None:
            raise bad_request("Content-Type: a POST merges JSON objects; send application/json")
    lrs.documents.write(session, scope, doc_id, content, content_type, existing is not None)


def _get(lrs, resource: Resource, req: XapiRequest) -> Response:
    _allowed(resource, req, {"since"})
    scope = _scope(resource, req)
    if resource.id_param in req.args:
        if "since" in req.args:
            raise bad_request("since: only for listing documents, not with " + resource.id_param)
        document = lrs.documents.get(scope, req.args[resource.id_param])
        if document is None:
            raise LrsError(404, f"{resource.id_param}: no such document")
        response = Response(document.content, status=200, content_type=document.content_type)
        response.headers["ETag"] = f'"{document.etag}"'
        response.last_modified = document.updated_ms / 1000
        return response
    since = params.timestamp_ms("since", req.args["since"]) if "since" in req.args else None
    ids = lrs.documents.ids(scope, since)
    response = Response(json.dumps(ids), status=200, mimetype="application/json")
    response.headers["X-Experience-API-Consistent-Through"] = format_ms(now_ms())
    return response


def _delete(lrs, resource: Resource, req: XapiRequest) -> Response:
    _allowed(resource, req, set())
    if resource.id_param not in req.args and resource is not STATE:
        raise bad_request(f"{resource.id_param}: required")
    scope = _scope(resource, req)
    doc_id = req.args.get(resource.id_param)
    with lrs.db.transaction() as session:
        if doc_id is not None:
            _preconditions(req, lrs.documents.get(scope, doc_id, session))
        lrs.documents.delete(session, scope, doc_id)
    return Response(status=204)
