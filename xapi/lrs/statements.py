"""The Statements resource: PUT, POST and GET /xapi/statements."""

from __future__ import annotations

import json
from urllib.parse import urlencode

from flask import Response, request

from xapi import schemas

from . import formats, multipart, params
from .errors import LrsError, bad_request
from .request import XapiRequest
from .signatures import check_signed
from .store import StatementConflict, StatementError, StatementQuery, now_ms
from .terms import ACTIVITY, AGENT, REGISTRATION, RELATED_ACTIVITY, RELATED_AGENT, VERB, term_hash

MAX_LIMIT = 500
QUERY_PARAMS = {
    "agent",
    "verb",
    "activity",
    "registration",
    "related_activities",
    "related_agents",
    "since",
    "until",
    "limit",
    "format",
    "attachments",
    "ascending",
    "cursor",
}
SINGLE_PARAMS = {"statementId", "voidedStatementId", "format", "attachments"}
FORMATS = ("exact", "ids", "canonical")


def _loads(text: str, field: str):
    def refuse_constant(name):
        raise ValueError(name)

    try:
        return json.loads(text, parse_constant=refuse_constant)
    except ValueError:
        raise bad_request(f"{field}: not valid JSON") from None
    except RecursionError:
        raise bad_request(f"{field}: JSON nested too deeply") from None


def _body(req: XapiRequest) -> tuple[object, dict[str, tuple[str, bytes]], bool]:
    """The statements JSON, the attachment parts by hash, and whether it came as multipart."""
    if req.mimetype == "multipart/mixed":
        parts = multipart.parse(req.body, req.content_type)
        if parts[0].content_type.split(";")[0].strip().lower() != "application/json":
            raise bad_request("Content-Type: the first part of a multipart/mixed body must be application/json")
        try:
            text = parts[0].content.decode("utf-8")
        except UnicodeDecodeError:
            raise bad_request("body: statements must be UTF-8 encoded") from None
        return _loads(text, "body"), multipart.attachment_parts(parts[1:]), True
    if req.mimetype != "application/json" and not req.alternate:
        raise bad_request("Content-Type: statements are sent as application/json or multipart/mixed")
    return _loads(req.text(), "body"), {}, False


def _check_attachments(statements: list[dict], parts: dict, is_multipart: bool) -> None:
    referenced = set()
    for index, statement in enumerate(statements):
        for position, attachment in enumerate(statement.get("attachments") or []):
            sha2 = attachment.get("sha2")
            referenced.add(sha2)
            if "fileUrl" not in attachment and sha2 not in parts:
                field = f"statements[{index}].attachments[{position}]"
                if not is_multipart:
                    raise bad_request(
                        f"{field}: an attachment without fileUrl must be sent in a multipart/mixed body"
                    )
                raise bad_request(f"{field}.sha2: no attachment part has the hash {sha2}")
        check_signed(statement, index, parts)
    unknown = set(parts) - referenced
    if unknown:
        raise bad_request(f"X-Experience-API-Hash: no statement names the attachment {sorted(unknown)[0]}")


def _validated(data: object, version: str) -> list[dict]:
    try:
        if isinstance(data, list):
            return schemas.validate_statements(data, version)
        return [schemas.validate_statement(data, version)]
    except schemas.XapiValidationError as exc:
        raise bad_request(str(exc)) from None


def _store(lrs, req: XapiRequest, statements: list[dict], parts: dict) -> list[str]:
    try:
        return lrs.store.store(
            statements,
            authority=req.credential.authority(lrs.home_page()),
            version="2.0.0" if req.is_v2 else "1.0.0",
            attachments=parts,
        )
    except StatementConflict as exc:
        raise LrsError(409, str(exc)) from None
    except StatementError as exc:
        raise bad_request(str(exc)) from None


def put(lrs, req: XapiRequest) -> Response:
    unknown = set(req.args) - {"statementId"}
    if unknown:
        raise bad_request(f"{sorted(unknown)[0]}: PUT /statements takes only statementId")
    if "statementId" not in req.args:
        raise bad_request("statementId: PUT /statements needs the statement's id as statementId")
    statement_id = params.uuid("statementId", req.args["statementId"])
    data, parts, is_multipart = _body(req)
    if not isinstance(data, dict):
        raise bad_request("body: PUT /statements takes one statement (a JSON object)")
    if "id" in data and str(data["id"]).lower() != statement_id:
        raise bad_request("id: the statement's id differs from the statementId parameter")
    data = {**data, "id": data.get("id", statement_id)}
    statements = _validated(data, req.version)
    _check_attachments(statements, parts, is_multipart)
    _store(lrs, req, statements, parts)
    return Response(status=204)


def post(lrs, req: XapiRequest) -> Response:
    if req.args:
        raise bad_request(f"{sorted(req.args)[0]}: POST /statements takes no query parameters")
    data, parts, is_multipart = _body(req)
    statements = _validated(data, req.version)
    _check_attachments(statements, parts, is_multipart)
    ids = _store(lrs, req, statements, parts)
    return Response(json.dumps(ids), status=200, mimetype="application/json")


def get(lrs, req: XapiRequest) -> Response:
    args = req.args
    for name in args:
        if len(args.getlist(name)) > 1:
            raise bad_request(f"{name}: given more than once")
    fmt = args.get("format", "exact")
    if fmt not in FORMATS:
        raise bad_request("format: must be exact, ids or canonical")
    with_attachments = params.boolean("attachments", args.get("attachments", "false"))
    languages = params.accept_languages(req.headers.get("Accept-Language"))
    if "statementId" in args or "voidedStatementId" in args:
        return _get_one(lrs, req, fmt, with_attachments, languages)
    unknown = set(args) - QUERY_PARAMS
    if unknown:
        raise bad_request(f"{sorted(unknown)[0]}: not a parameter of GET /statements")
    query = _query(args, req.version)
    page = lrs.store.query(query)
    texts = page.statements
    if fmt != "exact":
        texts = [json.dumps(_formatted(json.loads(t), fmt, languages)) for t in texts]
    more = ""
    if page.next_seq is not None:
        kept = [(k, v) for k, v in args.items(multi=True) if k != "cursor"]
        more = (
            f"{request.script_root}{lrs.base_path}/statements?{urlencode([*kept, ('cursor', str(page.next_seq))])}"
        )
    body = ('{"statements":[' + ",".join(texts) + '],"more":' + json.dumps(more) + "}").encode()
    return _respond(lrs, body, texts if with_attachments else [], last_modified=None)


def _formatted(statement: dict, fmt: str, languages: list[str]) -> dict:
    if fmt == "ids":
        return formats.ids(statement)
    if fmt == "canonical":
        return formats.canonical(statement, languages)
    return statement


def _get_one(lrs, req: XapiRequest, fmt: str, with_attachments: bool, languages: list[str]) -> Response:
    args = req.args
    if "statementId" in args and "voidedStatementId" in args:
        raise bad_request("statementId: give either statementId or voidedStatementId, not both")
    unknown = set(args) - SINGLE_PARAMS
    if unknown:
        raise bad_request(f"{sorted(unknown)[0]}: not allowed with statementId or voidedStatementId")
    voided = "voidedStatementId" in args
    name = "voidedStatementId" if voided else "statementId"
    statement_id = params.uuid(name, args[name])
    found = lrs.store.get(statement_id)
    if found is None or found.voided != voided:
        raise LrsError(404, f"{name}: no {'voided ' if voided else ''}statement {statement_id}")
    text = found.json if fmt == "exact" else json.dumps(_formatted(found.statement, fmt, languages))
    return _respond(lrs, text.encode(), [found.json] if with_attachments else [], last_modified=found.stored_ms)


def _respond(lrs, body: bytes, with_attachments_of: list[str], *, last_modified: int | None) -> Response:
    if with_attachments_of:
        wanted = {
            a.get("sha2")
            for text in with_attachments_of
            for a in json.loads(text).get("attachments") or []
            if isinstance(a, dict)
        }
        body, content_type = multipart.build(body, lrs.store.attachments(wanted))
        response = Response(body, status=200, content_type=content_type)
    else:
        response = Response(body, status=200, mimetype="application/json")
    response.last_modified = (last_modified or now_ms()) / 1000
    return response


def _either(kind: str, related: str | None, value: str) -> tuple[int, ...]:
    """The term hashes a filter on ``value`` matches: its own kind's, and the related kind's."""
    return (term_hash(kind, value),) if related is None else (term_hash(kind, value), term_hash(related, value))


def _query(args, version: str) -> StatementQuery:
    related_agents = params.boolean("related_agents", args.get("related_agents", "false"))
    related_activities = params.boolean("related_activities", args.get("related_activities", "false"))
    # The first term drives the scan, so the usually most selective come first: a registration or
    # a person, then an activity (some are in every statement), then a verb.
    # A related_agents/related_activities filter matches either of two terms: the actor or
    # object's own, or the related one (which a statement does not repeat for its actor or object).
    terms: list[tuple[int, ...]] = []
    if "registration" in args:
        terms.append((term_hash(REGISTRATION, params.uuid("registration", args["registration"])),))
    if "agent" in args:
        _agent, ifi = params.agent(args["agent"], version)
        terms.append(_either(AGENT, RELATED_AGENT if related_agents else None, ifi))
    if "activity" in args:
        activity = params.iri("activity", args["activity"])
        terms.append(_either(ACTIVITY, RELATED_ACTIVITY if related_activities else None, activity))
    if "verb" in args:
        terms.append((term_hash(VERB, params.iri("verb", args["verb"])),))
    limit = params.non_negative_int("limit", args.get("limit", "0"))
    query = StatementQuery(
        terms=terms,
        since_ms=params.timestamp_ms("since", args["since"]) if "since" in args else None,
        until_ms=params.timestamp_ms("until", args["until"]) if "until" in args else None,
        limit=MAX_LIMIT if limit == 0 else min(limit, MAX_LIMIT),
        ascending=params.boolean("ascending", args.get("ascending", "false")),
    )
    if "cursor" in args:
        query.after_seq = params.non_negative_int("cursor", args["cursor"])
    return query
