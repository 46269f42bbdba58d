"""Query parameters of the LRS resources, parsed and checked (a 400 names the parameter)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from xapi import schemas

from .errors import bad_request
from .store import parse_instant
from .terms import agent_ifi

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _json_object(name: str, value: str) -> dict:
    try:
        data = json.loads(value)
    except ValueError:
        raise bad_request(f"{name}: must be a JSON object") from None
    if not isinstance(data, dict):
        raise bad_request(f"{name}: must be a JSON object")
    return data


def agent(value: str, version: str, name: str = "agent") -> tuple[dict, str]:
    """An agent parameter: the agent and its inverse functional identifier."""
    data = _json_object(name, value)
    try:
        data = schemas.validate_agent(data, version, field=name)
    except schemas.XapiValidationError as exc:
        raise bad_request(str(exc)) from None
    ifi = agent_ifi(data)
    if ifi is None:
        raise bad_request(f"{name}: must identify an Agent or Group (mbox, mbox_sha1sum, openid or account)")
    return data, ifi


def iri(name: str, value: str) -> str:
    try:
        return schemas.validate_iri(value, field=name)
    except schemas.XapiValidationError as exc:
        raise bad_request(str(exc)) from None


def uuid(name: str, value: str) -> str:
    try:
        return schemas.validate_uuid(value, field=name).lower()
    except schemas.XapiValidationError as exc:
        raise bad_request(str(exc)) from None


def timestamp_ms(name: str, value: str) -> int:
    """An ISO 8601 timestamp parameter in whole milliseconds (floored)."""
    instant = parse_instant(value) if "T" in value or "t" in value else None
    if instant is None:
        raise bad_request(f"{name}: must be an ISO 8601 timestamp such as 2024-05-01T12:00:00.000Z")
    return (instant - EPOCH) // timedelta(milliseconds=1)


def boolean(name: str, value: str) -> bool:
    if value.lower() == "true":
        return True
    if value.lower() == "false":
        return False
    raise bad_request(f"{name}: must be true or false")


def non_negative_int(name: str, value: str) -> int:
    if not value.isdigit():
        raise bad_request(f"{name}: must be a non-negative integer")
    return int(value)


def accept_languages(header: str | None) -> list[str]:
    """Accept-Language tags, most preferred first."""
    if not header:
        return []
    weighted = []
    for position, item in enumerate(header.split(",")):
        tag, _, params = item.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        if tag and tag != "*":
            weighted.append((-quality, position, tag))
    return [tag for _q, _p, tag in sorted(weighted)]
