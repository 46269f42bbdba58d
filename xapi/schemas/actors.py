"""Agents and Groups: identifiers (mbox, mbox_sha1sum, openid, account), members, authorities."""

from __future__ import annotations

import re

from .errors import (
    XapiValidationError,
    array,
    expected,
    json_object,
    only,
    require,
    string,
)
from .formats import check_iri

_MBOX_RE = re.compile(r"mailto:[^@\s:/?#]+@[^@\s/?#]+\Z")

_SHA1_RE = re.compile(r"[0-9a-fA-F]{40}\Z")

IFIS = ("mbox", "mbox_sha1sum", "openid", "account")
_ACTOR_KEYS = frozenset(("objectType", "name", "member", *IFIS))
_ACCOUNT_KEYS = frozenset(("homePage", "name"))


def _ifi(actor: dict, field: str) -> str | None:
    """Check the one inverse functional identifier, if any, and return its name."""
    found = None
    for key in IFIS:
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
            raise expected(f"{field}.mbox", "a mailto: IRI string", mbox)
        if _MBOX_RE.match(mbox) is None:
            raise XapiValidationError(
                f"{field}.mbox",
                f"must be a mailto: IRI with an email address, got {mbox!r}",
            )
    elif found == "mbox_sha1sum":
        sha1 = actor["mbox_sha1sum"]
        if type(sha1) is not str:
            raise expected(f"{field}.mbox_sha1sum", "a string of 40 hex digits", sha1)
        if _SHA1_RE.match(sha1) is None:
            raise XapiValidationError(
                f"{field}.mbox_sha1sum",
                "must be the SHA-1 of a mailto: IRI: 40 hex digits",
            )
    elif found == "openid":
        openid = actor["openid"]
        check_iri(openid, f"{field}.openid")
        if not openid.isascii():
            raise XapiValidationError(f"{field}.openid", "must be a URI (ASCII only)")
    elif found == "account":
        account = json_object(actor["account"], f"{field}.account")
        only(account, _ACCOUNT_KEYS, f"{field}.account")
        check_iri(
            require(account, "homePage", f"{field}.account"),
            f"{field}.account.homePage",
        )
        string(require(account, "name", f"{field}.account"), f"{field}.account.name")
    return found


def check_agent(agent: object, field: str) -> dict:
    """An Agent (objectType absent or "Agent"): exactly one identifier, no members."""
    agent = json_object(agent, field)
    only(agent, _ACTOR_KEYS, field)
    object_type = agent.get("objectType", "Agent")
    if object_type != "Agent":
        raise XapiValidationError(f"{field}.objectType", f'must be "Agent" here, got {object_type!r}')
    _agent_body(agent, field)
    return agent


def _agent_body(agent: dict, field: str) -> None:
    if "member" in agent:
        raise XapiValidationError(f"{field}.member", "is only allowed on a Group")
    if "name" in agent:
        string(agent["name"], f"{field}.name")
    if _ifi(agent, field) is None:
        raise XapiValidationError(
            field,
            "an Agent needs one identifier: mbox, mbox_sha1sum, openid or account",
        )


def _group_body(group: dict, field: str) -> str | None:
    if "name" in group:
        string(group["name"], f"{field}.name")
    ifi = _ifi(group, field)
    if "member" in group:
        members = array(group["member"], f"{field}.member")
        for i, member in enumerate(members):
            check_agent(member, f"{field}.member[{i}]")
    elif ifi is None:
        raise XapiValidationError(
            f"{field}.member",
            "is required on an anonymous Group (one without an identifier)",
        )
    return ifi


def check_actor(actor: object, field: str) -> dict:
    """An Agent or a Group, where objectType may be left out for an Agent."""
    actor = json_object(actor, field)
    only(actor, _ACTOR_KEYS, field)
    object_type = actor.get("objectType", "Agent")
    if object_type == "Agent":
        _agent_body(actor, field)
    elif object_type == "Group":
        _group_body(actor, field)
    else:
        raise XapiValidationError(f"{field}.objectType", f'must be "Agent" or "Group", got {object_type!r}')
    return actor


def check_group(group: object, field: str) -> dict:
    """A Group, where objectType "Group" is required (a team, a contextGroup's group)."""
    group = json_object(group, field)
    only(group, _ACTOR_KEYS, field)
    if group.get("objectType") != "Group":
        raise XapiValidationError(f"{field}.objectType", 'must be "Group"')
    _group_body(group, field)
    return group


def check_authority(authority: object, field: str) -> dict:
    """An Agent, or an anonymous Group of exactly two Agents (an OAuth consumer and a user)."""
    authority = check_actor(authority, field)
    if authority.get("objectType") == "Group":
        if any(key in authority for key in IFIS):
            raise XapiValidationError(field, "a Group authority must be anonymous (no identifier)")
        if len(authority.get("member", ())) != 2:
            raise XapiValidationError(f"{field}.member", "a Group authority must have exactly two members")
    return authority


def validate_agent(data: object, version: str = "1.0.3", *, field: str = "agent") -> dict:
    """An Agent or an identified Group, as the ``agent`` query parameter and documents APIs take it."""
    actor = check_actor(data, field)
    if actor.get("objectType") == "Group" and not any(key in actor for key in IFIS):
        raise XapiValidationError(
            field,
            "must be an Agent or an identified Group (with mbox, mbox_sha1sum, openid or account)",
        )
    return actor
