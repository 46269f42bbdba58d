"""Verbs, Activities with their definitions and interaction components, and Statement References."""

from __future__ import annotations

from .errors import XapiValidationError, array, json_object, only, require, string
from .formats import check_extensions, check_iri, validate_language_map, validate_uuid

_VERB_KEYS = frozenset(("id", "display"))
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


def check_verb(verb: object, field: str) -> dict:
    """A Verb: an IRI id and an optional display language map."""
    verb = json_object(verb, field)
    only(verb, _VERB_KEYS, field)
    check_iri(require(verb, "id", field), f"{field}.id")
    if "display" in verb:
        validate_language_map(verb["display"], field=f"{field}.display")
    return verb


def _definition(definition: object, field: str) -> None:
    """An Activity Definition; interaction components must suit the interactionType."""
    definition = json_object(definition, field)
    only(definition, _DEFINITION_KEYS, field)
    if "name" in definition:
        validate_language_map(definition["name"], field=f"{field}.name")
    if "description" in definition:
        validate_language_map(definition["description"], field=f"{field}.description")
    if "type" in definition:
        check_iri(definition["type"], f"{field}.type")
    if "moreInfo" in definition:
        check_iri(definition["moreInfo"], f"{field}.moreInfo")
    if "extensions" in definition:
        check_extensions(definition["extensions"], f"{field}.extensions")
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
        patterns = array(definition["correctResponsesPattern"], f"{field}.correctResponsesPattern")
        for i, pattern in enumerate(patterns):
            string(pattern, f"{field}.correctResponsesPattern[{i}]")
    for key in _COMPONENT_LISTS:
        if key in definition:
            if key not in allowed:
                raise XapiValidationError(
                    f"{field}.{key}",
                    f"is not used by the interactionType {interaction!r}",
                )
            _components(definition[key], f"{field}.{key}")


def _components(components: object, field: str) -> None:
    components = array(components, field)
    seen = set()
    for i, component in enumerate(components):
        where = f"{field}[{i}]"
        component = json_object(component, where)
        only(component, _COMPONENT_KEYS, where)
        component_id = string(require(component, "id", where), f"{where}.id")
        if component_id in seen:
            raise XapiValidationError(f"{where}.id", f"repeats the id {component_id!r}")
        seen.add(component_id)
        if "description" in component:
            validate_language_map(component["description"], field=f"{where}.description")


def check_activity(activity: object, field: str) -> dict:
    """An Activity: an IRI id and an optional definition."""
    activity = json_object(activity, field)
    only(activity, _ACTIVITY_KEYS, field)
    if "objectType" in activity and activity["objectType"] != "Activity":
        raise XapiValidationError(f"{field}.objectType", f'must be "Activity", got {activity["objectType"]!r}')
    check_iri(require(activity, "id", field), f"{field}.id")
    if "definition" in activity:
        _definition(activity["definition"], f"{field}.definition")
    return activity


def check_statement_ref(ref: object, field: str) -> dict:
    """A Statement Reference: objectType "StatementRef" and a UUID id."""
    ref = json_object(ref, field)
    only(ref, _STATEMENT_REF_KEYS, field)
    if ref.get("objectType") != "StatementRef":
        raise XapiValidationError(f"{field}.objectType", 'must be "StatementRef"')
    validate_uuid(require(ref, "id", field), field=f"{field}.id")
    return ref
