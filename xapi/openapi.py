"""The OpenAPI 3.1 description of the embedded LRS's query side, served at /xapi/openapi.json.

It covers what an analytics client reads: GET (and HEAD) /statements with every xAPI query
parameter, the answers and their headers, the errors, and the HTTP Basic credentials made with
``npqsl-lti lrs key create``. Writing statements, documents and profiles follows the xAPI
specification itself and is not repeated here.
"""

from __future__ import annotations

from importlib import metadata
from typing import Any

from flask import Blueprint, jsonify

from .lrs.statements import MAX_LIMIT

XAPI_SPEC = "https://opensource.ieee.org/xapi/xapi-base-standard-documentation"


def _query(name: str, description: str, schema: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema, **extra}


_UUID = {"type": "string", "format": "uuid"}
_IRI = {"type": "string", "format": "iri"}
_TIMESTAMP = {"type": "string", "format": "date-time"}
_BOOLEAN_TEXT = {"type": "string", "enum": ["true", "false"], "default": "false"}

PARAMETERS: list[dict[str, Any]] = [
    _query(
        "statementId",
        "One statement by id. Combined with no other parameter except `format` and `attachments`; a "
        "voided statement is not returned this way (ask with `voidedStatementId`).",
        _UUID,
    ),
    _query(
        "voidedStatementId",
        "One voided statement by id. Combined with no other parameter except `format` and `attachments`.",
        _UUID,
    ),
    _query(
        "agent",
        "Statements whose actor (or, for a Group, a member) is this Agent or Identified Group, as JSON with "
        'one inverse functional identifier, e.g. `{"account": {"homePage": "https://moodle.example", '
        '"name": "42"}}`. With `related_agents=true` the agent may also appear as the object, authority, '
        "instructor, team, or inside a SubStatement.",
        {"type": "string", "contentMediaType": "application/json"},
    ),
    _query("verb", "Statements whose verb has this IRI.", _IRI),
    _query(
        "activity",
        "Statements whose object is this Activity. With `related_activities=true`, also those naming it in "
        "their context activities or inside a SubStatement.",
        _IRI,
    ),
    _query("registration", "Statements with this `context.registration` (the candidate's enrolment).", _UUID),
    _query("related_activities", "Widen `activity` to context activities and SubStatements.", _BOOLEAN_TEXT),
    _query("related_agents", "Widen `agent` to every agent position in the statement.", _BOOLEAN_TEXT),
    _query("since", "Only statements stored strictly after this instant (ISO 8601 with an offset).", _TIMESTAMP),
    _query("until", "Only statements stored at or before this instant (ISO 8601 with an offset).", _TIMESTAMP),
    _query(
        "limit",
        f"At most this many statements per page; 0 (or more than {MAX_LIMIT}) gives {MAX_LIMIT}. The rest "
        "comes through the `more` URL of the answer.",
        {"type": "integer", "minimum": 0, "default": 0},
    ),
    _query(
        "cursor",
        "Where the previous page stopped. Not to be written by hand: follow the `more` URL, which "
        "repeats the query's other parameters with it.",
        {"type": "integer", "minimum": 0},
    ),
    _query(
        "format",
        "`exact`: statements as stored; `ids`: agents, activities and verbs reduced to their identifiers; "
        "`canonical`: language maps reduced to the language the `Accept-Language` header prefers.",
        {"type": "string", "enum": ["exact", "ids", "canonical"], "default": "exact"},
    ),
    _query(
        "attachments",
        "`true`: the answer is `multipart/mixed` with the attachments' raw data after the statements.",
        _BOOLEAN_TEXT,
    ),
    _query("ascending", "`true`: oldest stored first (the default is newest first).", _BOOLEAN_TEXT),
]

_VERSION_HEADER = {
    "name": "X-Experience-API-Version",
    "in": "header",
    "required": True,
    "description": "The xAPI version the client speaks: `1.0.x` (1.0.0 to 1.0.3) or `2.0.0`.",
    "schema": {"type": "string", "pattern": r"^(1\.0(\.[0-3])?|2\.0\.0)$"},
    "example": "2.0.0",
}

_ACCEPT_LANGUAGE = {
    "name": "Accept-Language",
    "in": "header",
    "required": False,
    "description": "The languages to keep when `format=canonical`.",
    "schema": {"type": "string"},
}

_RESPONSE_HEADERS = {
    "X-Experience-API-Version": {
        "description": "The xAPI version of the answer.",
        "schema": {"type": "string"},
    },
    "X-Experience-API-Consistent-Through": {
        "description": "Every statement stored up to this instant is visible to queries.",
        "schema": _TIMESTAMP,
    },
    "Last-Modified": {
        "description": "When the newest statement of the answer was stored (HTTP date).",
        "schema": {"type": "string"},
    },
}


def _error(status: int, description: str, example: str) -> dict[str, Any]:
    return {
        "description": description,
        "headers": {"X-Experience-API-Version": _RESPONSE_HEADERS["X-Experience-API-Version"]},
        "content": {
            "application/json": {
                "schema": {"$ref": "#/components/schemas/Error"},
                "example": {"error": {"code": status, "message": example}},
            }
        },
    }


ERRORS = {
    "400": _error(
        400,
        "The request is malformed; the message starts with the parameter or header at fault.",
        "since: '2026-13-01' is not an ISO 8601 timestamp",
    ),
    "401": _error(
        401,
        "No credentials, or credentials the LRS does not know (or that were revoked). The answer carries "
        '`WWW-Authenticate: Basic realm="xAPI"`.',
        "Authorization: missing or wrong LRS credentials (HTTP Basic key and secret)",
    ),
    "403": _error(
        403,
        "The credentials are valid but their scope does not allow reading.",
        "Authorization: this key's scope (write) does not allow GET",
    ),
}

STATEMENT_SCHEMA = {
    "type": "object",
    "description": f"An xAPI Statement as stored (with `stored` and `authority`); see {XAPI_SPEC}.",
    "required": ["id", "actor", "verb", "object", "stored", "timestamp"],
    "properties": {
        "id": _UUID,
        "actor": {"$ref": "#/components/schemas/Actor"},
        "verb": {
            "type": "object",
            "required": ["id"],
            "properties": {"id": _IRI, "display": {"$ref": "#/components/schemas/LanguageMap"}},
        },
        "object": {"type": "object", "description": "An Activity, Agent, Group, StatementRef or SubStatement."},
        "result": {
            "type": "object",
            "properties": {
                "score": {
                    "type": "object",
                    "properties": {
                        "scaled": {"type": "number", "minimum": -1, "maximum": 1},
                        "raw": {"type": "number"},
                        "min": {"type": "number"},
                        "max": {"type": "number"},
                    },
                },
                "success": {"type": "boolean"},
                "completion": {"type": "boolean"},
                "response": {"type": "string"},
                "duration": {"type": "string", "description": "ISO 8601 duration, e.g. PT12M30S."},
                "extensions": {"type": "object"},
            },
        },
        "context": {
            "type": "object",
            "properties": {
                "registration": _UUID,
                "contextActivities": {"type": "object"},
                "platform": {"type": "string"},
                "language": {"type": "string"},
                "extensions": {"type": "object"},
            },
        },
        "timestamp": _TIMESTAMP,
        "stored": _TIMESTAMP,
        "authority": {"$ref": "#/components/schemas/Actor"},
        "version": {"type": "string"},
        "attachments": {"type": "array", "items": {"type": "object"}},
    },
}


def document(version: str = "") -> dict[str, Any]:
    """The OpenAPI 3.1 document; ``version`` is the tool's own version, shown in ``info``."""
    ok_content = {
        "application/json": {
            "schema": {
                "oneOf": [
                    {"$ref": "#/components/schemas/StatementResult"},
                    {"$ref": "#/components/schemas/Statement"},
                ]
            }
        },
        "multipart/mixed": {
            "schema": {
                "type": "string",
                "description": "With `attachments=true`: the JSON answer first, then one part per attachment.",
            }
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "npqsl-lti learning record store: statement queries",
            "version": version or "1",
            "summary": "Read the xAPI statements the NPQSL tool stores.",
            "description": (
                "The query side of the xAPI Statements resource of the embedded learning record store "
                "(xAPI 2.0.0 and 1.0.3). Credentials are HTTP Basic keys made with "
                "`npqsl-lti lrs key create --scope read` (or `all`). Analysts who prefer SQL can use the "
                "`xapi_flat_statements` table (see the README, section Analytics), or "
                "`npqsl-lti xapi export`."
            ),
        },
        "servers": [{"url": "/xapi", "description": "This tool's embedded LRS"}],
        "security": [{"lrsKey": []}],
        "paths": {
            "/statements": {
                "parameters": [_VERSION_HEADER],
                "get": {
                    "operationId": "getStatements",
                    "summary": "One statement by id, or a page of statements matching filters",
                    "description": (
                        "With `statementId` or `voidedStatementId`: that one Statement. Otherwise a "
                        "StatementResult, newest stored first, with a `more` URL while statements remain. "
                        "Voided statements are left out of filtered queries; the voiding statements are "
                        "returned as any other."
                    ),
                    "parameters": [*PARAMETERS, _ACCEPT_LANGUAGE],
                    "responses": {
                        "200": {
                            "description": "The statement, or a page of statements.",
                            "headers": _RESPONSE_HEADERS,
                            "content": ok_content,
                        },
                        **ERRORS,
                        "404": _error(
                            404,
                            "No statement with that `statementId` / `voidedStatementId` (or it is voided / "
                            "not voided, respectively).",
                            "statementId: no statement 8f4c0d38-6f1e-4f6a-9d57-1f3f4e8f2c3a",
                        ),
                    },
                },
                "head": {
                    "operationId": "headStatements",
                    "summary": "The headers GET would send, without the body",
                    "parameters": PARAMETERS,
                    "responses": {
                        "200": {"description": "As for GET, without a body.", "headers": _RESPONSE_HEADERS},
                        "400": {"description": "As for GET."},
                        "401": {"description": "As for GET."},
                        "403": {"description": "As for GET."},
                        "404": {"description": "As for GET."},
                    },
                },
            },
            "/about": {
                "get": {
                    "operationId": "getAbout",
                    "summary": "The xAPI versions this LRS speaks",
                    "security": [],
                    "responses": {
                        "200": {
                            "description": "Versions and extensions.",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "required": ["version"],
                                        "properties": {
                                            "version": {"type": "array", "items": {"type": "string"}},
                                            "extensions": {"type": "object"},
                                        },
                                    }
                                }
                            },
                        }
                    },
                }
            },
        },
        "components": {
            "securitySchemes": {
                "lrsKey": {
                    "type": "http",
                    "scheme": "basic",
                    "description": "Key and secret from `npqsl-lti lrs key create --scope read|write|all`.",
                }
            },
            "schemas": {
                "Statement": STATEMENT_SCHEMA,
                "StatementResult": {
                    "type": "object",
                    "required": ["statements"],
                    "properties": {
                        "statements": {"type": "array", "items": {"$ref": "#/components/schemas/Statement"}},
                        "more": {
                            "type": "string",
                            "description": "A relative URL for the next page (same credentials and "
                            "version header); empty or absent on the last page.",
                        },
                    },
                },
                "Actor": {
                    "type": "object",
                    "description": "An Agent or Group, identified by exactly one of mbox, mbox_sha1sum, "
                    "openid or account (an anonymous Group lists its members instead).",
                    "properties": {
                        "objectType": {"type": "string", "enum": ["Agent", "Group"]},
                        "name": {"type": "string"},
                        "mbox": {"type": "string"},
                        "mbox_sha1sum": {"type": "string"},
                        "openid": {"type": "string"},
                        "account": {
                            "type": "object",
                            "required": ["homePage", "name"],
                            "properties": {"homePage": {"type": "string"}, "name": {"type": "string"}},
                        },
                        "member": {"type": "array", "items": {"type": "object"}},
                    },
                },
                "LanguageMap": {"type": "object", "additionalProperties": {"type": "string"}},
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {
                        "error": {
                            "type": "object",
                            "required": ["code", "message"],
                            "properties": {
                                "code": {"type": "integer", "description": "The HTTP status again."},
                                "message": {
                                    "type": "string",
                                    "description": "What was wrong, starting with the field at fault.",
                                },
                            },
                        }
                    },
                },
            },
        },
    }


bp = Blueprint("xapi_openapi", __name__)


@bp.get("/xapi/openapi.json")
def openapi_json():
    """The document, with the tool's version; open to all, like the LRS's /about."""
    response = jsonify(document(_tool_version()))
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


def _tool_version() -> str:
    try:
        return metadata.version("npqsl-lti")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from an uninstalled checkout
        return ""
