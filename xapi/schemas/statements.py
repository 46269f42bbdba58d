"""Statements and SubStatements: their results, contexts, attachments and version rules."""

from __future__ import annotations

import re

from .activities import check_activity, check_statement_ref, check_verb
from .actors import IFIS, check_actor, check_agent, check_authority, check_group
from .errors import (
    XapiValidationError,
    array,
    boolean,
    expected,
    json_object,
    number,
    only,
    require,
    string,
)
from .formats import (
    check_extensions,
    check_iri,
    is_v2,
    validate_duration,
    validate_language_map,
    validate_language_tag,
    validate_timestamp,
    validate_uuid,
)

_VOIDED = "http://adlnet.gov/expapi/verbs/voided"
_SHA2_RE = re.compile(r"(?:[0-9a-fA-F]{56}|[0-9a-fA-F]{64}|[0-9a-fA-F]{96}|[0-9a-fA-F]{128})\Z")

_MEDIA_TYPE_RE = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+/[!#$%&'*+.^_`|~0-9A-Za-z-]+(?:\s*;.*)?\Z", re.DOTALL)

_STATEMENT_VERSION_V1_RE = re.compile(r"1\.0(?:\.\d+)?\Z")

_STATEMENT_VERSION_V2_RE = re.compile(r"(?:1|2)\.0(?:\.\d+)?\Z")


_RESULT_KEYS = frozenset(("score", "success", "completion", "response", "duration", "extensions"))
_SCORE_KEYS = frozenset(("scaled", "raw", "min", "max"))
_CONTEXT_KEYS_V1 = frozenset(
    (
        "registration",
        "instructor",
        "team",
        "contextActivities",
        "revision",
        "platform",
        "language",
        "statement",
        "extensions",
    )
)
_CONTEXT_KEYS_V2 = _CONTEXT_KEYS_V1 | {"contextAgents", "contextGroups"}
_CONTEXT_ACTIVITY_KEYS = frozenset(("parent", "grouping", "category", "other"))
_CONTEXT_MEMBERS = {
    "agent": (check_agent, frozenset(("objectType", "agent", "relevantTypes"))),
    "group": (check_group, frozenset(("objectType", "group", "relevantTypes"))),
}


def _result(result: object, field: str) -> None:
    result = json_object(result, field)
    only(result, _RESULT_KEYS, field)
    if "score" in result:
        _score(result["score"], f"{field}.score")
    if "success" in result:
        boolean(result["success"], f"{field}.success")
    if "completion" in result:
        boolean(result["completion"], f"{field}.completion")
    if "response" in result:
        string(result["response"], f"{field}.response")
    if "duration" in result:
        validate_duration(result["duration"], field=f"{field}.duration")
    if "extensions" in result:
        check_extensions(result["extensions"], f"{field}.extensions")


def _score(score: object, field: str) -> None:
    score = json_object(score, field)
    only(score, _SCORE_KEYS, field)
    for key in score:
        number(score[key], f"{field}.{key}")
    scaled = score.get("scaled")
    if scaled is not None and not -1 <= scaled <= 1:
        raise XapiValidationError(f"{field}.scaled", f"must be between -1 and 1, got {scaled}")
    low, high, raw = score.get("min"), score.get("max"), score.get("raw")
    if low is not None and high is not None and not low < high:
        raise XapiValidationError(f"{field}.min", f"must be less than max ({low} is not less than {high})")
    if raw is not None:
        if low is not None and raw < low:
            raise XapiValidationError(f"{field}.raw", f"must not be less than min ({raw} < {low})")
        if high is not None and raw > high:
            raise XapiValidationError(f"{field}.raw", f"must not be more than max ({raw} > {high})")


def _context(context: object, field: str, object_is_activity: bool, v2: bool) -> None:
    """A Context; contextAgents and contextGroups exist only in xAPI 2.0."""
    context = json_object(context, field)
    if not v2 and ("contextAgents" in context or "contextGroups" in context):
        key = "contextAgents" if "contextAgents" in context else "contextGroups"
        raise XapiValidationError(
            f"{field}.{key}",
            "is an xAPI 2.0 property; send X-Experience-API-Version: 2.0.0",
        )
    only(context, _CONTEXT_KEYS_V2 if v2 else _CONTEXT_KEYS_V1, field)
    if "registration" in context:
        validate_uuid(context["registration"], field=f"{field}.registration")
    if "instructor" in context:
        check_actor(context["instructor"], f"{field}.instructor")
    if "team" in context:
        check_group(context["team"], f"{field}.team")
    if "contextActivities" in context:
        _context_activities(context["contextActivities"], f"{field}.contextActivities")
    for key in ("revision", "platform"):
        if key in context:
            string(context[key], f"{field}.{key}")
            if not object_is_activity:
                raise XapiValidationError(f"{field}.{key}", "is only allowed when the object is an Activity")
    if "language" in context:
        validate_language_tag(context["language"], field=f"{field}.language")
    if "statement" in context:
        check_statement_ref(context["statement"], f"{field}.statement")
    if "extensions" in context:
        check_extensions(context["extensions"], f"{field}.extensions")
    if "contextAgents" in context:
        _context_members(context["contextAgents"], f"{field}.contextAgents", "contextAgent", "agent")
    if "contextGroups" in context:
        _context_members(context["contextGroups"], f"{field}.contextGroups", "contextGroup", "group")


def _context_activities(value: object, field: str) -> None:
    value = json_object(value, field)
    only(value, _CONTEXT_ACTIVITY_KEYS, field)
    for key, activities in value.items():
        where = f"{field}.{key}"
        if isinstance(activities, list):
            for i, activity in enumerate(activities):
                check_activity(activity, f"{where}[{i}]")
        elif isinstance(activities, dict):
            check_activity(activities, where)
        else:
            raise expected(where, "an Activity or an array of Activities", activities)


def _relevant_types(value: object, field: str) -> None:
    types = array(value, field)
    if not types:
        raise XapiValidationError(field, "must not be empty when present")
    for i, iri in enumerate(types):
        check_iri(iri, f"{field}[{i}]")


def _context_members(value: object, field: str, object_type: str, key: str) -> None:
    """contextAgents or contextGroups (2.0): typed wrappers of an Agent or Group and its roles."""
    check, allowed = _CONTEXT_MEMBERS[key]
    for i, item in enumerate(array(value, field)):
        where = f"{field}[{i}]"
        item = json_object(item, where)
        only(item, allowed, where)
        if item.get("objectType") != object_type:
            raise XapiValidationError(f"{where}.objectType", f'must be "{object_type}"')
        check(require(item, key, where), f"{where}.{key}")
        if "relevantTypes" in item:
            _relevant_types(item["relevantTypes"], f"{where}.relevantTypes")


_SIGNATURE = "http://adlnet.gov/expapi/attachments/signature"
_ATTACHMENT_KEYS = frozenset(("usageType", "display", "description", "contentType", "length", "sha2", "fileUrl"))


def _attachments(value: object, field: str) -> None:
    for i, attachment in enumerate(array(value, field)):
        where = f"{field}[{i}]"
        attachment = json_object(attachment, where)
        only(attachment, _ATTACHMENT_KEYS, where)
        check_iri(require(attachment, "usageType", where), f"{where}.usageType")
        validate_language_map(require(attachment, "display", where), field=f"{where}.display")
        if "description" in attachment:
            validate_language_map(attachment["description"], field=f"{where}.description")
        content_type = string(require(attachment, "contentType", where), f"{where}.contentType")
        if _MEDIA_TYPE_RE.match(content_type) is None:
            raise XapiValidationError(
                f"{where}.contentType",
                f"must be an Internet media type, got {content_type!r}",
            )
        if (
            attachment["usageType"] == _SIGNATURE
            and content_type.split(";")[0].strip().lower() != "application/octet-stream"
        ):
            raise XapiValidationError(
                f"{where}.contentType",
                "a signature attachment must be application/octet-stream (a JWS)",
            )
        length = require(attachment, "length", where)
        if type(length) is not int:
            raise expected(f"{where}.length", "an integer", length)
        if length < 0:
            raise XapiValidationError(f"{where}.length", "must not be negative")
        sha2 = string(require(attachment, "sha2", where), f"{where}.sha2")
        if _SHA2_RE.match(sha2) is None:
            raise XapiValidationError(
                f"{where}.sha2",
                "must be a SHA-2 hash in hex (56, 64, 96 or 128 digits)",
            )
        if "fileUrl" in attachment:
            check_iri(attachment["fileUrl"], f"{where}.fileUrl")


_STATEMENT_KEYS = frozenset(
    (
        "id",
        "actor",
        "verb",
        "object",
        "result",
        "context",
        "timestamp",
        "stored",
        "authority",
        "version",
        "attachments",
    )
)
_SUBSTATEMENT_KEYS = frozenset(
    (
        "objectType",
        "actor",
        "verb",
        "object",
        "result",
        "context",
        "timestamp",
        "attachments",
    )
)
_ACTOR_ONLY_KEYS = (*IFIS, "member")
_OBJECT_TYPES = ("Activity", "Agent", "Group", "StatementRef", "SubStatement")


def _statement_object(obj: object, field: str, v2: bool, nested: bool) -> bool:
    """Check a statement's object; return whether it is an Activity."""
    obj = json_object(obj, field)
    object_type = obj.get("objectType", "Activity")
    if object_type == "Activity":
        if "objectType" not in obj and any(key in obj for key in _ACTOR_ONLY_KEYS):
            raise XapiValidationError(
                f"{field}.objectType",
                "is required when the object is an Agent or Group",
            )
        check_activity(obj, field)
        return True
    if object_type == "Agent":
        check_agent(obj, field)
    elif object_type == "Group":
        check_actor(obj, field)
    elif object_type == "StatementRef":
        check_statement_ref(obj, field)
    elif object_type == "SubStatement":
        if nested:
            raise XapiValidationError(
                f"{field}.objectType",
                "a SubStatement cannot contain another SubStatement",
            )
        _substatement(obj, field, v2)
    else:
        raise XapiValidationError(
            f"{field}.objectType",
            f"must be one of {', '.join(_OBJECT_TYPES)}, got {object_type!r}",
        )
    return False


def _core(statement: dict, field: str, v2: bool, nested: bool) -> None:
    """The parts a Statement and a SubStatement share."""
    check_actor(require(statement, "actor", field), f"{field}.actor")
    check_verb(require(statement, "verb", field), f"{field}.verb")
    is_activity = _statement_object(require(statement, "object", field), f"{field}.object", v2, nested)
    if "result" in statement:
        _result(statement["result"], f"{field}.result")
    if "context" in statement:
        _context(statement["context"], f"{field}.context", is_activity, v2)
    if "timestamp" in statement:
        validate_timestamp(
            statement["timestamp"],
            field=f"{field}.timestamp",
            version="2.0.0" if v2 else "1.0.3",
        )
    if "attachments" in statement:
        _attachments(statement["attachments"], f"{field}.attachments")


def _substatement(sub: dict, field: str, v2: bool) -> None:
    for key in ("id", "stored", "version", "authority"):
        if key in sub:
            raise XapiValidationError(f"{field}.{key}", "is not allowed in a SubStatement")
    only(sub, _SUBSTATEMENT_KEYS, field)
    _core(sub, field, v2, nested=True)


def _statement(data: object, field: str, v2: bool) -> dict:
    statement = json_object(data, field)
    only(statement, _STATEMENT_KEYS, field)
    if "id" in statement:
        validate_uuid(statement["id"], field=f"{field}.id")
    _core(statement, field, v2, nested=False)
    verb_id = statement["verb"]["id"]
    if verb_id == _VOIDED and statement["object"].get("objectType") != "StatementRef":
        raise XapiValidationError(
            f"{field}.object.objectType",
            'must be "StatementRef" in a voiding statement',
        )
    version = "2.0.0" if v2 else "1.0.3"
    if "stored" in statement:
        validate_timestamp(statement["stored"], field=f"{field}.stored", version=version)
    if "authority" in statement:
        check_authority(statement["authority"], f"{field}.authority")
    if "version" in statement:
        value = string(statement["version"], f"{field}.version")
        pattern = _STATEMENT_VERSION_V2_RE if v2 else _STATEMENT_VERSION_V1_RE
        if pattern.match(value) is None:
            allowed = "1.0.x or 2.0.x" if v2 else "1.0.x"
            raise XapiValidationError(f"{field}.version", f"must be {allowed}, got {value!r}")
    return statement


def validate_statement(data: object, version: str = "1.0.3") -> dict:
    """Check one Statement against the rules of ``version``; return it unchanged."""
    return _statement(data, "statement", is_v2(version))


def validate_statements(data: object, version: str = "1.0.3") -> list[dict]:
    """Check a POSTed body: one Statement or an array of them; return them as a list."""
    v2 = is_v2(version)
    if isinstance(data, dict):
        return [_statement(data, "statement", v2)]
    if not isinstance(data, list):
        raise expected("statements", "a Statement or an array of Statements", data)
    for i, statement in enumerate(data):
        _statement(statement, f"statements[{i}]", v2)
    return data
