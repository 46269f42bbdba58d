"""What a statement can be found by: the terms the Statements API filters on.

Each term is a kind and a value ("verb" + the verb IRI); it is stored as a signed 64-bit hash so
the index is compact and fixed-width. ``agent``/``activity`` terms are what the plain filters
match (the actor or object); ``related-agent``/``related-activity`` terms hold the rest of the
broader sets that ``related_agents=true`` and ``related_activities=true`` match, so those
filters accept either kind. (Statements stored before the related terms stopped repeating the
actor and object have both, which matches the same way.)
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from functools import lru_cache

AGENT = "agent"
RELATED_AGENT = "related-agent"
VERB = "verb"
ACTIVITY = "activity"
RELATED_ACTIVITY = "related-activity"
REGISTRATION = "registration"


@lru_cache(maxsize=65536)
def term_hash(kind: str, value: str) -> int:
    """The stored form of a term: BLAKE2b-64 of kind NUL value, as a signed integer."""
    digest = hashlib.blake2b(f"{kind}\0{value}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def agent_ifi(agent: dict) -> str | None:
    """An Agent's or identified Group's inverse functional identifier as one string, else None."""
    if not isinstance(agent, dict):
        return None
    if isinstance(agent.get("mbox"), str):
        return "mbox|" + agent["mbox"]
    if isinstance(agent.get("mbox_sha1sum"), str):
        return "mbox_sha1sum|" + agent["mbox_sha1sum"].lower()
    if isinstance(agent.get("openid"), str):
        return "openid|" + agent["openid"]
    account = agent.get("account")
    if isinstance(account, dict):
        return f"account|{account.get('homePage')}|{account.get('name')}"
    return None


def _agent_and_members(agent) -> Iterator[str]:
    if not isinstance(agent, dict):
        return
    ifi = agent_ifi(agent)
    if ifi:
        yield ifi
    members = agent.get("member")
    if isinstance(members, list):
        for member in members:
            ifi = agent_ifi(member)
            if ifi:
                yield ifi


def _is_agent(obj) -> bool:
    return isinstance(obj, dict) and obj.get("objectType") in ("Agent", "Group")


def _is_activity(obj) -> bool:
    return isinstance(obj, dict) and obj.get("objectType", "Activity") == "Activity" and "id" in obj


def _context_activity_ids(context) -> Iterator[str]:
    if not isinstance(context, dict):
        return
    activities = context.get("contextActivities")
    if not isinstance(activities, dict):
        return
    for value in activities.values():
        for activity in value if isinstance(value, list) else [value]:
            if isinstance(activity, dict) and isinstance(activity.get("id"), str):
                yield activity["id"]


def _context_agents(context) -> Iterator[str]:
    if not isinstance(context, dict):
        return
    yield from _agent_and_members(context.get("instructor"))
    yield from _agent_and_members(context.get("team"))
    for entry in context.get("contextAgents") or []:
        if isinstance(entry, dict):
            yield from _agent_and_members(entry.get("agent"))
    for entry in context.get("contextGroups") or []:
        if isinstance(entry, dict):
            yield from _agent_and_members(entry.get("group"))


def _related(statement: dict, agents: set[str], activities: set[str]) -> None:
    """Agents and activities anywhere in a statement or its sub-statement (the related sets)."""
    agents.update(_agent_and_members(statement.get("actor")))
    obj = statement.get("object")
    if _is_agent(obj):
        agents.update(_agent_and_members(obj))
    elif _is_activity(obj):
        activities.add(obj["id"])
    elif isinstance(obj, dict) and obj.get("objectType") == "SubStatement":
        _related(obj, agents, activities)
    context = statement.get("context")
    agents.update(_context_agents(context))
    activities.update(_context_activity_ids(context))


def statement_terms(statement: dict) -> set[int]:
    """Every term hash a complete statement (with its authority) is found by."""
    terms: list[tuple[str, str]] = []
    actor = statement.get("actor")
    obj = statement.get("object")
    direct_agents = set(_agent_and_members(actor))
    if _is_agent(obj):
        direct_agents.update(_agent_and_members(obj))
    terms.extend((AGENT, ifi) for ifi in direct_agents)
    verb = statement.get("verb")
    if isinstance(verb, dict) and isinstance(verb.get("id"), str):
        terms.append((VERB, verb["id"]))
    direct_activities = {obj["id"]} if _is_activity(obj) else set()
    terms.extend((ACTIVITY, iri) for iri in direct_activities)
    context = statement.get("context")
    if isinstance(context, dict) and isinstance(context.get("registration"), str):
        terms.append((REGISTRATION, context["registration"].lower()))
    agents: set[str] = set()
    activities: set[str] = set()
    _related(statement, agents, activities)
    agents.update(_agent_and_members(statement.get("authority")))
    # The related sets include the direct ones, which have their terms already: a related query
    # matches either kind (StatementStore.query), so they are not written twice.
    terms.extend((RELATED_AGENT, ifi) for ifi in agents - direct_agents)
    terms.extend((RELATED_ACTIVITY, iri) for iri in activities - direct_activities)
    return {term_hash(kind, value) for kind, value in terms}


def activity_definitions(statement: dict) -> Iterable[dict]:
    """The activity objects in a statement that carry a definition (object, context, sub-statement)."""
    found = []

    def visit(stmt: dict) -> None:
        obj = stmt.get("object")
        if _is_activity(obj) and isinstance(obj.get("definition"), dict):
            found.append(obj)
        elif isinstance(obj, dict) and obj.get("objectType") == "SubStatement":
            visit(obj)
        context = stmt.get("context")
        if isinstance(context, dict) and isinstance(context.get("contextActivities"), dict):
            for value in context["contextActivities"].values():
                for activity in value if isinstance(value, list) else [value]:
                    if _is_activity(activity) and isinstance(activity.get("definition"), dict):
                        found.append(activity)

    visit(statement)
    return found
