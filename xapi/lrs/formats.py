"""The ``format`` parameter of GET /statements: exact (as stored), ids, canonical."""

from __future__ import annotations

from typing import Any

IFI_KEYS = ("mbox", "mbox_sha1sum", "openid", "account")


def _agent_ids(agent: Any) -> Any:
    if not isinstance(agent, dict):
        return agent
    reduced = {k: agent[k] for k in ("objectType", *IFI_KEYS) if k in agent}
    if agent.get("objectType") == "Group" and isinstance(agent.get("member"), list):
        if not any(k in agent for k in IFI_KEYS):
            reduced["member"] = [_agent_ids(m) for m in agent["member"]]
    return reduced


def _object_ids(obj: Any) -> Any:
    if not isinstance(obj, dict):
        return obj
    kind = obj.get("objectType", "Activity")
    if kind in ("Agent", "Group"):
        return _agent_ids(obj)
    if kind == "SubStatement":
        return _statement_ids(obj)
    return {"id": obj.get("id")}


def _statement_ids(statement: dict) -> dict:
    result = dict(statement)
    for key in ("actor", "authority"):
        if key in result:
            result[key] = _agent_ids(result[key])
    if isinstance(result.get("verb"), dict):
        result["verb"] = {"id": result["verb"].get("id")}
    if "object" in result:
        result["object"] = _object_ids(result["object"])
    context = result.get("context")
    if isinstance(context, dict):
        context = dict(context)
        for key in ("instructor", "team"):
            if key in context:
                context[key] = _agent_ids(context[key])
        activities = context.get("contextActivities")
        if isinstance(activities, dict):
            context["contextActivities"] = {
                k: [_object_ids(a) for a in v] if isinstance(v, list) else _object_ids(v)
                for k, v in activities.items()
            }
        if isinstance(context.get("contextAgents"), list):
            context["contextAgents"] = [
                {**e, "agent": _agent_ids(e.get("agent"))} if isinstance(e, dict) else e
                for e in context["contextAgents"]
            ]
        if isinstance(context.get("contextGroups"), list):
            context["contextGroups"] = [
                {**e, "group": _agent_ids(e.get("group"))} if isinstance(e, dict) else e
                for e in context["contextGroups"]
            ]
        result["context"] = context
    return result


def ids(statement: dict) -> dict:
    """Agents, activities and verbs reduced to what identifies them."""
    return _statement_ids(statement)


def _pick(language_map: Any, languages: list[str]) -> Any:
    if not isinstance(language_map, dict) or len(language_map) <= 1:
        return language_map
    lowered = {k.lower(): k for k in language_map}
    for wanted in languages:
        wanted = wanted.lower()
        if wanted in lowered:
            return {lowered[wanted]: language_map[lowered[wanted]]}
        for tag_lower, tag in lowered.items():
            if tag_lower.split("-")[0] == wanted.split("-")[0]:
                return {tag: language_map[tag]}
    first = next(iter(language_map))
    return {first: language_map[first]}


def _canonical_definition(definition: Any, languages: list[str]) -> Any:
    if not isinstance(definition, dict):
        return definition
    result = dict(definition)
    for key in ("name", "description"):
        if key in result:
            result[key] = _pick(result[key], languages)
    for key in ("choices", "scale", "source", "target", "steps"):
        if isinstance(result.get(key), list):
            result[key] = [
                {**c, "description": _pick(c.get("description"), languages)}
                if isinstance(c, dict) and "description" in c
                else c
                for c in result[key]
            ]
    return result


def _canonical_activity(activity: Any, languages: list[str]) -> Any:
    if isinstance(activity, dict) and "definition" in activity:
        return {**activity, "definition": _canonical_definition(activity["definition"], languages)}
    return activity


def canonical(statement: dict, languages: list[str]) -> dict:
    """Language maps narrowed to the one language the client prefers (Accept-Language)."""
    result = dict(statement)
    if isinstance(result.get("verb"), dict) and "display" in result["verb"]:
        result["verb"] = {**result["verb"], "display": _pick(result["verb"]["display"], languages)}
    obj = result.get("object")
    if isinstance(obj, dict):
        if obj.get("objectType") == "SubStatement":
            result["object"] = canonical(obj, languages)
        else:
            result["object"] = _canonical_activity(obj, languages)
    context = result.get("context")
    if isinstance(context, dict) and isinstance(context.get("contextActivities"), dict):
        result["context"] = {
            **context,
            "contextActivities": {
                k: [_canonical_activity(a, languages) for a in v] if isinstance(v, list) else v
                for k, v in context["contextActivities"].items()
            },
        }
    if isinstance(result.get("attachments"), list):
        result["attachments"] = [
            {
                **a,
                **{k: _pick(a[k], languages) for k in ("display", "description") if k in a},
            }
            if isinstance(a, dict)
            else a
            for a in result["attachments"]
        ]
    return result
