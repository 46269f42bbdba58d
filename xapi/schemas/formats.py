"""The string formats xAPI defines: IRIs, UUIDs, RFC 5646 language tags and maps, ISO 8601
timestamps and durations, version numbers, and extension keys."""

from __future__ import annotations

import re
from datetime import date, time

from .errors import XapiValidationError, expected

_UUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z")
# RFC 3987 in outline: a scheme, then no whitespace, controls, bidi formatting marks, surrogates,
# non-characters or the ASCII characters IRIs exclude, and every "%" starting a two-digit escape.
_IRI_RE = re.compile(
    r"[A-Za-z][A-Za-z0-9+.\-]*:"
    r"(?:[^\x00-\x20\x7f-\x9f<>\"{}|\\^`%\u200e\u200f\u202a-\u202e\ud800-\udfff\ufdd0-\ufdef\ufff0-\uffff]"
    r"|%[0-9A-Fa-f]{2})+\Z"
)
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
    for tag in [
        "en-GB-oed",
        "i-ami",
        "i-bnn",
        "i-default",
        "i-enochian",
        "i-hak",
        "i-klingon",
        "i-lux",
        "i-mingo",
        "i-navajo",
        "i-pwn",
        "i-tao",
        "i-tay",
        "i-tsu",
        "sgn-BE-FR",
        "sgn-BE-NL",
        "sgn-CH-DE",
        "art-lojban",
        "cel-gaulish",
        "no-bok",
        "no-nyn",
        "zh-guoyu",
        "zh-hakka",
        "zh-min",
        "zh-min-nan",
        "zh-xiang",
    ]
)

# Well-formedness caches: the same verb ids, activity ids and language tags recur in nearly every
# statement, so a set lookup replaces a regex match. Bounded so hostile input cannot grow them.
_CACHE_LIMIT = 20_000
_known_iris: set[str] = set()
_known_tags: set[str] = set()


def validate_iri(value: object, *, field: str) -> str:
    """An absolute IRI (RFC 3987): a scheme, then no spaces, controls or excluded characters."""
    if not isinstance(value, str):
        raise expected(field, "an IRI string", value)
    if value in _known_iris:
        return value
    if _IRI_RE.match(value) is None:
        raise XapiValidationError(field, f"must be an absolute IRI with a scheme, got {value!r}")
    if len(_known_iris) < _CACHE_LIMIT:
        _known_iris.add(value)
    return value


def check_iri(value: object, field: str) -> str:
    """``validate_iri`` for the statement checks: a cached IRI costs one set lookup."""
    if isinstance(value, str) and value in _known_iris:
        return value
    return validate_iri(value, field=field)


def validate_activity_id(value: object, *, field: str = "activityId") -> str:
    """An Activity id: an IRI (the ``activity`` query parameter and the documents APIs use this)."""
    return check_iri(value, field)


def validate_uuid(value: object, *, field: str) -> str:
    """A UUID in its standard 8-4-4-4-12 hex string form (RFC 4122; any version or variant)."""
    if not isinstance(value, str):
        raise expected(field, "a UUID string", value)
    if _UUID_RE.match(value) is None:
        raise XapiValidationError(field, f"must be a UUID in 8-4-4-4-12 hex form, got {value!r}")
    return value


def validate_language_tag(value: object, *, field: str) -> str:
    """A well-formed RFC 5646 language tag (singletons and variants not repeated)."""
    if not isinstance(value, str):
        raise expected(field, "a language tag string", value)
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
                    field,
                    f"{value!r} is not an RFC 5646 language tag (a {group[:-1]} subtag repeats)",
                )
    if len(_known_tags) < _CACHE_LIMIT:
        _known_tags.add(value)
    return value


def validate_language_map(value: object, *, field: str) -> dict:
    """A Language Map: RFC 5646 tags mapped to strings."""
    if not isinstance(value, dict):
        raise expected(field, "a language map (an object of language tags to strings)", value)
    for tag, text in value.items():
        if tag not in _known_tags:
            validate_language_tag(tag, field=field)
        if not isinstance(text, str):
            raise expected(f"{field}.{tag}", "a string", text)
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
        raise expected(field, "a timestamp string", value)
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
        raise expected(field, "an ISO 8601 duration string", value)
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


def check_extensions(extensions: object, field: str) -> None:
    """Extensions: an object whose keys are IRIs; values are anything, null included."""
    if not isinstance(extensions, dict):
        raise expected(field, "an object whose keys are IRIs", extensions)
    for key in extensions:
        if key not in _known_iris and _IRI_RE.match(key) is None:
            raise XapiValidationError(field, f"keys must be absolute IRIs; {key!r} is not one")
