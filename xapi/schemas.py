"""Validation of xAPI statements and their parts, by the rules of xAPI 1.0.3 and 2.0 (IEEE 9274.1.1).

Every statement the tool emits and every statement the embedded LRS receives passes through
``validate_statement``. The checks are plain functions over the decoded JSON rather than
marshmallow field machinery because the LRS must ingest thousands of statements a second and a
nested marshmallow load costs more than a whole statement's budget; ``StatementSchema`` and its
siblings wrap the same checks for code that wants a marshmallow schema (nesting, ``load``).

Nothing here changes the data it checks: normalising (``contextActivities`` to arrays, UTC
timestamps, ``stored``/``authority``) is the LRS's job. Each failure raises
``XapiValidationError`` whose message starts with the path of the offending field, for example
``statement.actor.mbox: must be a mailto: IRI with an email address``.
"""

from __future__ import annotations

import math
import re
from datetime import date, time
from typing import Any

from marshmallow import Schema, ValidationError

__all__ = [
    "XapiValidationError",
    "validate_statement",
    "validate_statements",
    "validate_agent",
    "validate_activity_id",
    "validate_uuid",
    "validate_timestamp",
    "validate_duration",
    "validate_language_map",
    "validate_language_tag",
    "validate_iri",
    "validate_version",
    "is_v2",
    "StatementSchema",
    "AgentSchema",
]


class XapiValidationError(ValueError):
    """A statement (or a query parameter) breaks an xAPI rule; ``field`` is the path to the culprit."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


# --- scalar formats -------------------------------------------------------------------------

_UUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z")
# RFC 3987 in outline: a scheme, then no whitespace, controls, bidi formatting marks, surrogates,
# non-characters or the ASCII characters IRIs exclude, and every "%" starting a two-digit escape.
_IRI_RE = re.compile(
    r"[A-Za-z][A-Za-z0-9+.\-]*:"
    r"(?:[^\x00-\x20\x7f-\x9f<>\"{}|\\^`%\u200e\u200f\u202a-\u202e\ud800-\udfff\ufdd0-\ufdef\ufff0-\uffff]"
    r"|%[0-9A-Fa-f]{2})+\Z"
)
_MBOX_RE = re.compile(r"mailto:[^@\s:/?#]+@[^@\s/?#]+\Z")
_SHA1_RE = re.compile(r"[0-9a-fA-F]{40}\Z")
_SHA2_RE = re.compile(r"(?:[0-9a-fA-F]{56}|[0-9a-fA-F]{64}|[0-9a-fA-F]{96}|[0-9a-fA-F]{128})\Z")
_MEDIA_TYPE_RE = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+/[!#$%&'*+.^_`|~0-9A-Za-z-]+(?:\s*;.*)?\Z", re.DOTALL)
_STATEMENT_VERSION_V1_RE = re.compile(r"1\.0(?:\.\d+)?\Z")
_STATEMENT_VERSION_V2_RE = re.compile(r"(?:1|2)\.0(?:\.\d+)?\Z")
# ISO 8601 durations (4.4.3.2): PnYnMnDTnHnMnS or PnW; only the last component may have a fraction.
_DURATION_RE = re.compile(
    r"P(?:\d+(?:\.\d+)?W"
    r"|(?=\d|T\d)(?:\d+(?:\.\d+)?Y)?(?:\d+(?:\.\d+)?M)?(?:\d+(?:\.\d+)?D)?"
    r"(?:T(?=\d)(?:\d+(?:\.\d+)?H)?(?:\d+(?:\.\d+)?M)?(?:\d+(?:\.\d+)?S)?)?)\Z"
)
_FRACTION_NOT_LAST_RE = re.compile(r"\.\d+[A-Z].*\d")
# ISO 8601 date-times, extended (2024-01-31T12:00:00.123+01:00) and basic (20240131T120000Z); the
# extended form may also separate date and time with a space, as RFC 3339 allows.
_TS_EXTENDED_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?(Z|[+-]\d{2}(?::?\d{2})?)?\Z"
)
_TS_BASIC_RE = re.compile(
    r"(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(?:(\d{2})(?:[.,](\d+))?)?(Z|[+-]\d{2}(?:\d{2})?)?\Z"
)
# RFC 3339 (the profile of ISO 8601 that xAPI 2.0 requires): extended form with a mandatory offset;
# the RFC lets applications separate date and time with a space, and the reference LRS accepts it.
_TS_RFC3339_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})\Z"
)
_HEADER_VERSION_RE = re.compile(r"(?:1|2)\.0(?:\.\d+)?\Z")

# RFC 5646 well-formed language tags (section 2.1), matched case-insensitively.
_ALNUM = "[a-z0-9]"
_LANGTAG_RE = re.compile(
    r"(?:"
    r"(?P<language>[a-z]{2,3}(?:-[a-z]{3}){0,3}|[a-z]{4}|[a-z]{5,8})"
    r"(?:-[a-z]{4})?"
    r"(?:-(?:[a-z]{2}|[0-9]{3}))?"
    rf"(?P<variants>(?:-(?:{_ALNUM}{{5,8}}|[0-9]{_ALNUM}{{3}}))*)"
    rf"(?P<extensions>(?:-[a-wyz0-9](?:-{_ALNUM}{{2,8}})+)*)"
    rf"(?:-x(?:-{_ALNUM}{{1,8}})+)?"
    r"|"
    rf"x(?:-{_ALNUM}{{1,8}})+"
    r")\Z",
    re.IGNORECASE,
)
_GRANDFATHERED = frozenset(
    tag.lower()
    for tag in (
        "en-GB-oed i-ami i-bnn i-default i-enochian i-hak i-klingon i-lux i-mingo i-navajo i-pwn "
        "i-tao i-tay i-tsu sgn-BE-FR sgn-BE-NL sgn-CH-DE art-lojban cel-gaulish no-bok no-nyn "
        "zh-guoyu zh-hakka zh-min zh-min-nan zh-xiang"
    ).split()
)

# Well-formedness caches: the same verb ids, activity ids and language tags recur in nearly every
# statement, so a set lookup replaces a regex match. Bounded so hostile input cannot grow them.
_CACHE_LIMIT = 20_000
_known_iris: set[str] = set()
_known_tags: set[str] = set()


def _type_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _expected(field: str, what: str, value: object) -> XapiValidationError:
    return XapiValidationError(field, f"must be {what}, not {_type_name(value)}")


def _string(value: object, field: str) -> str:
    if not isinstance(value, str):
        raise _expected(field, "a string", value)
    return value


def _boolean(value: object, field: str) -> bool:
    if type(value) is not bool:
        raise _expected(field, "a boolean (true or false)", value)
    return value


def _number(value: object, field: str) -> float:
    if type(value) is not int and type(value) is not float:
        raise _expected(field, "a number", value)
    if type(value) is float and not math.isfinite(value):
        raise XapiValidationError(field, "must be a finite number")
    return value


def _object(value: object, field: str) -> dict:
    if not isinstance(value, dict):
        raise _expected(field, "an object", value)
    return value


def _array(value: object, field: str) -> list:
    if not isinstance(value, list):
        raise _expected(field, "an array", value)
    return value


def _only(obj: dict, allowed: frozenset[str], field: str) -> None:
    """Reject properties the spec does not define (keys are case-sensitive) and null values."""
    for key, value in obj.items():
        if key not in allowed:
            raise XapiValidationError(f"{field}.{key}", "is not a property defined by xAPI here")
        if value is None:
            raise XapiValidationError(f"{field}.{key}", "must not be null")


def _require(obj: dict, key: str, field: str) -> Any:
    try:
        return obj[key]
    except KeyError:
        raise XapiValidationError(f"{field}.{key}", "is required") from None


def validate_iri(value: object, *, field: str) -> str:
    """An absolute IRI (RFC 3987): a scheme, then no spaces, controls or excluded characters."""
    if not isinstance(value, str):
        raise _expected(field, "an IRI string", value)
    if value in _known_iris:
        return value
    if _IRI_RE.match(value) is None:
        raise XapiValidationError(field, f"must be an absolute IRI with a scheme, got {value!r}")
    if len(_known_iris) < _CACHE_LIMIT:
        _known_iris.add(value)
    return value


def _iri(value: object, field: str) -> str:
    if isinstance(value, str) and value in _known_iris:
        return value
    return validate_iri(value, field=field)


def validate_activity_id(value: object, *, field: str = "activityId") -> str:
    """An Activity id: an IRI (the ``activity`` query parameter and the documents APIs use this)."""
    return _iri(value, field)


def validate_uuid(value: object, *, field: str) -> str:
    """A UUID in its standard 8-4-4-4-12 hex string form (RFC 4122; any version or variant)."""
    if not isinstance(value, str):
        raise _expected(field, "a UUID string", value)
    if _UUID_RE.match(value) is None:
        raise XapiValidationError(field, f"must be a UUID in 8-4-4-4-12 hex form, got {value!r}")
    return value


def validate_language_tag(value: object, *, field: str) -> str:
    """A well-formed RFC 5646 language tag (singletons and variants not repeated)."""
    if not isinstance(value, str):
        raise _expected(field, "a language tag string", value)
    if value in _known_tags:
        return value
    match = _LANGTAG_RE.match(value)
    if match is None:
        if value.lower() in _GRANDFATHERED:
            return value
        raise XapiValidationError(field, f"{value!r} is not an RFC 5646 language tag")
    for group in ("variants", "extensions"):
        subtags = match.group(group)
        if subtags:
            parts = subtags.lower().split("-")[1:]
            keys = parts if group == "variants" else [p for p in parts if len(p) == 1]
            if len(keys) != len(set(keys)):
                raise XapiValidationError(
                    field, f"{value!r} is not an RFC 5646 language tag (a {group[:-1]} subtag repeats)"
                )
    if len(_known_tags) < _CACHE_LIMIT:
        _known_tags.add(value)
    return value


def validate_language_map(value: object, *, field: str) -> dict:
    """A Language Map: RFC 5646 tags mapped to strings."""
    if not isinstance(value, dict):
        raise _expected(field, "a language map (an object of language tags to strings)", value)
    for tag, text in value.items():
        if tag not in _known_tags:
            validate_language_tag(tag, field=field)
        if not isinstance(text, str):
            raise _expected(f"{field}.{tag}", "a string", text)
    return value


def _timestamp_parts(value: str, v2: bool) -> tuple[re.Match[str] | None, str]:
    if v2:
        return _TS_RFC3339_RE.match(value), "an RFC 3339 timestamp with a time zone offset"
    match = _TS_EXTENDED_RE.match(value) or _TS_BASIC_RE.match(value)
    return match, "an ISO 8601 timestamp"


def validate_timestamp(value: object, *, field: str, version: str = "1.0.3") -> str:
    """A Timestamp: ISO 8601 date and time (1.0.3), or RFC 3339 with an offset (2.0).

    Both versions forbid the "unknown local offset" forms -00, -0000 and -00:00.
    """
    if not isinstance(value, str):
        raise _expected(field, "a timestamp string", value)
    match, what = _timestamp_parts(value, is_v2(version))
    if match is None:
        raise XapiValidationError(field, f"must be {what}, got {value!r}")
    year, month, day, hour, minute, second, _fraction, offset = match.groups()
    if offset is not None and offset[0] == "-" and offset[1:].replace(":", "").strip("0") == "":
        raise XapiValidationError(field, f"must not use the offset {offset} (write Z or +00:00 for UTC)")
    try:
        date(int(year), int(month), int(day))
        sec = int(second or 0)
        time(int(hour), int(minute), 59 if sec == 60 else sec)
        if offset is not None and offset not in ("Z", "z"):
            digits = offset[1:].replace(":", "")
            time(int(digits[:2]), int(digits[2:] or 0))
    except ValueError:
        raise XapiValidationError(field, f"is not a real date and time: {value!r}") from None
    return value


def validate_duration(value: object, *, field: str) -> str:
    """A Duration in the ISO 8601 format PnYnMnDTnHnMnS (or PnW), not the alternative format."""
    if not isinstance(value, str):
        raise _expected(field, "an ISO 8601 duration string", value)
    if _DURATION_RE.match(value) is None or ("." in value and _FRACTION_NOT_LAST_RE.search(value)):
        raise XapiValidationError(field, f"must be an ISO 8601 duration such as PT1H30M5.2S, got {value!r}")
    return value


def validate_version(value: str) -> str:
    """The X-Experience-API-Version header: 1.0, 1.0.x, 2.0 or 2.0.x."""
    if not isinstance(value, str) or _HEADER_VERSION_RE.match(value) is None:
        raise XapiValidationError("X-Experience-API-Version", f"must be 1.0.x or 2.0.x, got {value!r}")
    return value


def is_v2(version: str) -> bool:
    """Whether a request's xAPI version takes the 2.0 rules."""
    return version.startswith("2")


# --- agents and groups ----------------------------------------------------------------------

_IFIS = ("mbox", "mbox_sha1sum", "openid", "account")
_ACTOR_KEYS = frozenset(("objectType", "name", "member", *_IFIS))
_ACCOUNT_KEYS = frozenset(("homePage", "name"))
_AGENT_OR_GROUP = frozenset(("Agent", "Group"))


def _ifi(actor: dict, field: str) -> str | None:
    found = None
    for key in _IFIS:
        if key in actor:
            if found is not None:
                raise XapiValidationError(
                    field,
                    f"must have exactly one identifier (mbox, mbox_sha1sum, openid or account), found {found} and {key}",
                )
            found = key
    if found == "mbox":
        mbox = actor["mbox"]
        if not isinstance(mbox, str):
            raise _expected(f"{field}.mbox", "a mailto: IRI string", mbox)
        if _MBOX_RE.match(mbox) is None:
            raise XapiValidationError(
                f"{field}.mbox", f"must be a mailto: IRI with an email address, got {mbox!r}"
            )
    elif found == "mbox_sha1sum":
        sha1 = actor["mbox_sha1sum"]
        if type(sha1) is not str:
            raise _expected(f"{field}.mbox_sha1sum", "a string of 40 hex digits", sha1)
        if _SHA1_RE.match(sha1) is None:
            raise XapiValidationError(f"{field}.mbox_sha1sum", "must be the SHA-1 of a mailto: IRI: 40 hex digits")
    elif found == "openid":
        openid = actor["openid"]
        _iri(openid, f"{field}.openid")
        if not openid.isascii():
            raise XapiValidationError(f"{field}.openid", "must be a URI (ASCII only)")
    elif found == "account":
        account = _object(actor["account"], f"{field}.account")
        _only(account, _ACCOUNT_KEYS, f"{field}.account")
        _iri(_require(account, "homePage", f"{field}.account"), f"{field}.account.homePage")
        _string(_require(account, "name", f"{field}.account"), f"{field}.account.name")
    return found


def _agent(agent: object, field: str) -> dict:
    """An Agent (objectType absent or "Agent"): exactly one identifier, no members."""
    agent = _object(agent, field)
    _only(agent, _ACTOR_KEYS, field)
    object_type = agent.get("objectType", "Agent")
    if object_type != "Agent":
        raise XapiValidationError(f"{field}.objectType", f'must be "Agent" here, got {object_type!r}')
    _agent_body(agent, field)
    return agent


def _agent_body(agent: dict, field: str) -> None:
    if "member" in agent:
        raise XapiValidationError(f"{field}.member", "is only allowed on a Group")
    if "name" in agent:
        _string(agent["name"], f"{field}.name")
    if _ifi(agent, field) is None:
        raise XapiValidationError(field, "an Agent needs one identifier: mbox, mbox_sha1sum, openid or account")


def _group_body(group: dict, field: str) -> str | None:
    if "name" in group:
        _string(group["name"], f"{field}.name")
    ifi = _ifi(group, field)
    if "member" in group:
        members = _array(group["member"], f"{field}.member")
        for i, member in enumerate(members):
            _agent(member, f"{field}.member[{i}]")
    elif ifi is None:
        raise XapiValidationError(
            f"{field}.member", "is required on an anonymous Group (one without an identifier)"
        )
    return ifi


def _actor(actor: object, field: str) -> dict:
    """An Agent or a Group, where objectType may be left out for an Agent."""
    actor = _object(actor, field)
    _only(actor, _ACTOR_KEYS, field)
    object_type = actor.get("objectType", "Agent")
    if object_type == "Agent":
        _agent_body(actor, field)
    elif object_type == "Group":
        _group_body(actor, field)
    else:
        raise XapiValidationError(f"{field}.objectType", f'must be "Agent" or "Group", got {object_type!r}')
    return actor


def _group(group: object, field: str) -> dict:
    group = _object(group, field)
    _only(group, _ACTOR_KEYS, field)
    if group.get("objectType") != "Group":
        raise XapiValidationError(f"{field}.objectType", 'must be "Group"')
    _group_body(group, field)
    return group


def _authority(authority: object, field: str) -> dict:
    """An Agent, or an anonymous Group of exactly two Agents (an OAuth consumer and a user)."""
    authority = _actor(authority, field)
    if authority.get("objectType") == "Group":
        if any(key in authority for key in _IFIS):
            raise XapiValidationError(field, "a Group authority must be anonymous (no identifier)")
        if len(authority.get("member", ())) != 2:
            raise XapiValidationError(f"{field}.member", "a Group authority must have exactly two members")
    return authority


def validate_agent(data: object, version: str = "1.0.3", *, field: str = "agent") -> dict:
    """An Agent or an identified Group, as the ``agent`` query parameter and documents APIs take it."""
    actor = _actor(data, field)
    if actor.get("objectType") == "Group" and not any(key in actor for key in _IFIS):
        raise XapiValidationError(
            field, "must be an Agent or an identified Group (with mbox, mbox_sha1sum, openid or account)"
        )
    return actor


# --- verb, activity, statement references ---------------------------------------------------

_VERB_KEYS = frozenset(("id", "display"))
_VOIDED = "http://adlnet.gov/expapi/verbs/voided"
_ACTIVITY_KEYS = frozenset(("objectType", "id", "definition"))
_DEFINITION_KEYS = frozenset(
    (
        "name",
        "description",
        "type",
        "moreInfo",
        "extensions",
        "interactionType",
        "correctResponsesPattern",
        "choices",
        "scale",
        "source",
        "target",
        "steps",
    )
)
_COMPONENT_LISTS = ("choices", "scale", "source", "target", "steps")
_INTERACTION_COMPONENTS = {
    "true-false": frozenset(),
    "choice": frozenset(("choices",)),
    "fill-in": frozenset(),
    "long-fill-in": frozenset(),
    "matching": frozenset(("source", "target")),
    "performance": frozenset(("steps",)),
    "sequencing": frozenset(("choices",)),
    "likert": frozenset(("scale",)),
    "numeric": frozenset(),
    "other": frozenset(),
}
_COMPONENT_KEYS = frozenset(("id", "description"))
_STATEMENT_REF_KEYS = frozenset(("objectType", "id"))


def _verb(verb: object, field: str) -> dict:
    verb = _object(verb, field)
    _only(verb, _VERB_KEYS, field)
    _iri(_require(verb, "id", field), f"{field}.id")
    if "display" in verb:
        validate_language_map(verb["display"], field=f"{field}.display")
    return verb


def _extensions(extensions: object, field: str) -> None:
    """Extensions: an object whose keys are IRIs; values are anything, null included."""
    if not isinstance(extensions, dict):
        raise _expected(field, "an object whose keys are IRIs", extensions)
    for key in extensions:
        if key not in _known_iris and _IRI_RE.match(key) is None:
            raise XapiValidationError(field, f"keys must be absolute IRIs; {key!r} is not one")


def _definition(definition: object, field: str) -> None:
    definition = _object(definition, field)
    _only(definition, _DEFINITION_KEYS, field)
    if "name" in definition:
        validate_language_map(definition["name"], field=f"{field}.name")
    if "description" in definition:
        validate_language_map(definition["description"], field=f"{field}.description")
    if "type" in definition:
        _iri(definition["type"], f"{field}.type")
    if "moreInfo" in definition:
        _iri(definition["moreInfo"], f"{field}.moreInfo")
    if "extensions" in definition:
        _extensions(definition["extensions"], f"{field}.extensions")
    interaction = definition.get("interactionType")
    if interaction is None:
        for key in ("correctResponsesPattern", *_COMPONENT_LISTS):
            if key in definition:
                raise XapiValidationError(f"{field}.interactionType", f"is required when {key} is present")
        return
    allowed = _INTERACTION_COMPONENTS.get(interaction) if isinstance(interaction, str) else None
    if allowed is None:
        raise XapiValidationError(
            f"{field}.interactionType",
            f"must be one of {', '.join(sorted(_INTERACTION_COMPONENTS))}, got {interaction!r}",
        )
    if "correctResponsesPattern" in definition:
        patterns = _array(definition["correctResponsesPattern"], f"{field}.correctResponsesPattern")
        for i, pattern in enumerate(patterns):
            _string(pattern, f"{field}.correctResponsesPattern[{i}]")
    for key in _COMPONENT_LISTS:
        if key in definition:
            if key not in allowed:
                raise XapiValidationError(f"{field}.{key}", f"is not used by the interactionType {interaction!r}")
            _components(definition[key], f"{field}.{key}")


def _components(components: object, field: str) -> None:
    components = _array(components, field)
    seen = set()
    for i, component in enumerate(components):
        where = f"{field}[{i}]"
        component = _object(component, where)
        _only(component, _COMPONENT_KEYS, where)
        component_id = _string(_require(component, "id", where), f"{where}.id")
        if component_id in seen:
            raise XapiValidationError(f"{where}.id", f"repeats the id {component_id!r}")
        seen.add(component_id)
        if "description" in component:
            validate_language_map(component["description"], field=f"{where}.description")


def _activity(activity: object, field: str) -> dict:
    activity = _object(activity, field)
    _only(activity, _ACTIVITY_KEYS, field)
    if "objectType" in activity and activity["objectType"] != "Activity":
        raise XapiValidationError(f"{field}.objectType", f'must be "Activity", got {activity["objectType"]!r}')
    _iri(_require(activity, "id", field), f"{field}.id")
    if "definition" in activity:
        _definition(activity["definition"], f"{field}.definition")
    return activity


def _statement_ref(ref: object, field: str) -> dict:
    ref = _object(ref, field)
    _only(ref, _STATEMENT_REF_KEYS, field)
    if ref.get("objectType") != "StatementRef":
        raise XapiValidationError(f"{field}.objectType", 'must be "StatementRef"')
    validate_uuid(_require(ref, "id", field), field=f"{field}.id")
    return ref


# --- result and context ---------------------------------------------------------------------

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
_CONTEXT_AGENT_KEYS = frozenset(("objectType", "agent", "relevantTypes"))
_CONTEXT_GROUP_KEYS = frozenset(("objectType", "group", "relevantTypes"))


def _result(result: object, field: str) -> None:
    result = _object(result, field)
    _only(result, _RESULT_KEYS, field)
    if "score" in result:
        _score(result["score"], f"{field}.score")
    if "success" in result:
        _boolean(result["success"], f"{field}.success")
    if "completion" in result:
        _boolean(result["completion"], f"{field}.completion")
    if "response" in result:
        _string(result["response"], f"{field}.response")
    if "duration" in result:
        validate_duration(result["duration"], field=f"{field}.duration")
    if "extensions" in result:
        _extensions(result["extensions"], f"{field}.extensions")


def _score(score: object, field: str) -> None:
    score = _object(score, field)
    _only(score, _SCORE_KEYS, field)
    for key in score:
        _number(score[key], f"{field}.{key}")
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
    context = _object(context, field)
    if not v2 and ("contextAgents" in context or "contextGroups" in context):
        key = "contextAgents" if "contextAgents" in context else "contextGroups"
        raise XapiValidationError(
            f"{field}.{key}", "is an xAPI 2.0 property; send X-Experience-API-Version: 2.0.0"
        )
    _only(context, _CONTEXT_KEYS_V2 if v2 else _CONTEXT_KEYS_V1, field)
    if "registration" in context:
        validate_uuid(context["registration"], field=f"{field}.registration")
    if "instructor" in context:
        _actor(context["instructor"], f"{field}.instructor")
    if "team" in context:
        _group(context["team"], f"{field}.team")
    if "contextActivities" in context:
        _context_activities(context["contextActivities"], f"{field}.contextActivities")
    for key in ("revision", "platform"):
        if key in context:
            _string(context[key], f"{field}.{key}")
            if not object_is_activity:
                raise XapiValidationError(f"{field}.{key}", "is only allowed when the object is an Activity")
    if "language" in context:
        validate_language_tag(context["language"], field=f"{field}.language")
    if "statement" in context:
        _statement_ref(context["statement"], f"{field}.statement")
    if "extensions" in context:
        _extensions(context["extensions"], f"{field}.extensions")
    if "contextAgents" in context:
        _context_agents(context["contextAgents"], f"{field}.contextAgents")
    if "contextGroups" in context:
        _context_groups(context["contextGroups"], f"{field}.contextGroups")


def _context_activities(value: object, field: str) -> None:
    value = _object(value, field)
    _only(value, _CONTEXT_ACTIVITY_KEYS, field)
    for key, activities in value.items():
        where = f"{field}.{key}"
        if isinstance(activities, list):
            for i, activity in enumerate(activities):
                _activity(activity, f"{where}[{i}]")
        elif isinstance(activities, dict):
            _activity(activities, where)
        else:
            raise _expected(where, "an Activity or an array of Activities", activities)


def _relevant_types(value: object, field: str) -> None:
    types = _array(value, field)
    if not types:
        raise XapiValidationError(field, "must not be empty when present")
    for i, iri in enumerate(types):
        _iri(iri, f"{field}[{i}]")


def _context_agents(value: object, field: str) -> None:
    for i, item in enumerate(_array(value, field)):
        where = f"{field}[{i}]"
        item = _object(item, where)
        _only(item, _CONTEXT_AGENT_KEYS, where)
        if item.get("objectType") != "contextAgent":
            raise XapiValidationError(f"{where}.objectType", 'must be "contextAgent"')
        _agent(_require(item, "agent", where), f"{where}.agent")
        if "relevantTypes" in item:
            _relevant_types(item["relevantTypes"], f"{where}.relevantTypes")


def _context_groups(value: object, field: str) -> None:
    for i, item in enumerate(_array(value, field)):
        where = f"{field}[{i}]"
        item = _object(item, where)
        _only(item, _CONTEXT_GROUP_KEYS, where)
        if item.get("objectType") != "contextGroup":
            raise XapiValidationError(f"{where}.objectType", 'must be "contextGroup"')
        _group(_require(item, "group", where), f"{where}.group")
        if "relevantTypes" in item:
            _relevant_types(item["relevantTypes"], f"{where}.relevantTypes")


# --- attachments ----------------------------------------------------------------------------

_SIGNATURE = "http://adlnet.gov/expapi/attachments/signature"
_ATTACHMENT_KEYS = frozenset(("usageType", "display", "description", "contentType", "length", "sha2", "fileUrl"))


def _attachments(value: object, field: str) -> None:
    for i, attachment in enumerate(_array(value, field)):
        where = f"{field}[{i}]"
        attachment = _object(attachment, where)
        _only(attachment, _ATTACHMENT_KEYS, where)
        _iri(_require(attachment, "usageType", where), f"{where}.usageType")
        validate_language_map(_require(attachment, "display", where), field=f"{where}.display")
        if "description" in attachment:
            validate_language_map(attachment["description"], field=f"{where}.description")
        content_type = _string(_require(attachment, "contentType", where), f"{where}.contentType")
        if _MEDIA_TYPE_RE.match(content_type) is None:
            raise XapiValidationError(
                f"{where}.contentType", f"must be an Internet media type, got {content_type!r}"
            )
        if (
            attachment["usageType"] == _SIGNATURE
            and content_type.split(";")[0].strip().lower() != "application/octet-stream"
        ):
            raise XapiValidationError(
                f"{where}.contentType", "a signature attachment must be application/octet-stream (a JWS)"
            )
        length = _require(attachment, "length", where)
        if type(length) is not int:
            raise _expected(f"{where}.length", "an integer", length)
        if length < 0:
            raise XapiValidationError(f"{where}.length", "must not be negative")
        sha2 = _string(_require(attachment, "sha2", where), f"{where}.sha2")
        if _SHA2_RE.match(sha2) is None:
            raise XapiValidationError(f"{where}.sha2", "must be a SHA-2 hash in hex (56, 64, 96 or 128 digits)")
        if "fileUrl" in attachment:
            _iri(attachment["fileUrl"], f"{where}.fileUrl")


# --- statements -----------------------------------------------------------------------------

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
    ("objectType", "actor", "verb", "object", "result", "context", "timestamp", "attachments")
)
_ACTOR_ONLY_KEYS = (*_IFIS, "member")
_OBJECT_TYPES = ("Activity", "Agent", "Group", "StatementRef", "SubStatement")


def _statement_object(obj: object, field: str, v2: bool, nested: bool) -> bool:
    """Check a statement's object; return whether it is an Activity."""
    obj = _object(obj, field)
    object_type = obj.get("objectType", "Activity")
    if object_type == "Activity":
        if "objectType" not in obj and any(key in obj for key in _ACTOR_ONLY_KEYS):
            raise XapiValidationError(f"{field}.objectType", "is required when the object is an Agent or Group")
        _activity(obj, field)
        return True
    if object_type == "Agent":
        _agent(obj, field)
    elif object_type == "Group":
        _actor(obj, field)
    elif object_type == "StatementRef":
        _statement_ref(obj, field)
    elif object_type == "SubStatement":
        if nested:
            raise XapiValidationError(f"{field}.objectType", "a SubStatement cannot contain another SubStatement")
        _substatement(obj, field, v2)
    else:
        raise XapiValidationError(
            f"{field}.objectType", f"must be one of {', '.join(_OBJECT_TYPES)}, got {object_type!r}"
        )
    return False


def _core(statement: dict, field: str, v2: bool, nested: bool) -> None:
    """The parts a Statement and a SubStatement share."""
    _actor(_require(statement, "actor", field), f"{field}.actor")
    _verb(_require(statement, "verb", field), f"{field}.verb")
    is_activity = _statement_object(_require(statement, "object", field), f"{field}.object", v2, nested)
    if "result" in statement:
        _result(statement["result"], f"{field}.result")
    if "context" in statement:
        _context(statement["context"], f"{field}.context", is_activity, v2)
    if "timestamp" in statement:
        validate_timestamp(statement["timestamp"], field=f"{field}.timestamp", version="2.0.0" if v2 else "1.0.3")
    if "attachments" in statement:
        _attachments(statement["attachments"], f"{field}.attachments")


def _substatement(sub: dict, field: str, v2: bool) -> None:
    for key in ("id", "stored", "version", "authority"):
        if key in sub:
            raise XapiValidationError(f"{field}.{key}", "is not allowed in a SubStatement")
    _only(sub, _SUBSTATEMENT_KEYS, field)
    _core(sub, field, v2, nested=True)


def _statement(data: object, field: str, v2: bool) -> dict:
    statement = _object(data, field)
    _only(statement, _STATEMENT_KEYS, field)
    if "id" in statement:
        validate_uuid(statement["id"], field=f"{field}.id")
    _core(statement, field, v2, nested=False)
    verb_id = statement["verb"]["id"]
    if verb_id == _VOIDED and statement["object"].get("objectType") != "StatementRef":
        raise XapiValidationError(f"{field}.object.objectType", 'must be "StatementRef" in a voiding statement')
    version = "2.0.0" if v2 else "1.0.3"
    if "stored" in statement:
        validate_timestamp(statement["stored"], field=f"{field}.stored", version=version)
    if "authority" in statement:
        _authority(statement["authority"], f"{field}.authority")
    if "version" in statement:
        value = _string(statement["version"], f"{field}.version")
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
        raise _expected("statements", "a Statement or an array of Statements", data)
    for i, statement in enumerate(data):
        _statement(statement, f"statements[{i}]", v2)
    return data


# --- marshmallow faces ----------------------------------------------------------------------


class _XapiSchema(Schema):
    """A marshmallow schema whose ``load`` runs one of the checks above, for a given xAPI version.

    Errors come back as marshmallow's ``ValidationError`` keyed by the field path, so the schema
    can sit inside other marshmallow schemas (``fields.Nested``) like any other.
    """

    def __init__(self, *args: Any, version: str = "1.0.3", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.xapi_version = version

    def check(self, data: object) -> Any:  # pragma: no cover - each subclass defines it
        raise NotImplementedError

    def load(self, data: Any, *, many: bool | None = None, **_kwargs: Any) -> Any:
        many = self.many if many is None else many
        try:
            if many:
                return [self.check(item) for item in _array(data, "items")]
            return self.check(data)
        except XapiValidationError as error:
            raise ValidationError({error.field: [error.message]}) from error


class StatementSchema(_XapiSchema):
    """A Statement, as marshmallow sees it; ``load`` returns the statement unchanged."""

    def check(self, data: object) -> object:
        return validate_statement(data, self.xapi_version)


class AgentSchema(_XapiSchema):
    """An Agent or identified Group (the agent of the documents APIs and queries)."""

    def check(self, data: object) -> object:
        return validate_agent(data, self.xapi_version)
