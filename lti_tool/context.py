"""LaunchContext: what a view knows about the launch it serves, and nothing about LTI mechanics."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class LaunchContext:
    """Who launched, from which platform and course, into which activity, in which role.

    ``user_key`` (issuer, sub) is the person's stable identity; the ``*_pk`` fields are the
    tool's own row ids, already scoped to the platform.
    """

    launch_id: str
    platform_pk: int
    issuer: str
    client_id: str
    deployment_id: str
    user_pk: int
    sub: str
    role: str
    lti_roles: tuple[str, ...]
    message_type: str
    name: str | None = None
    course_pk: int | None = None
    context_id: str | None = None
    course_title: str | None = None
    resource_link_pk: int | None = None
    resource_link_id: str | None = None
    resource_title: str | None = None
    custom: dict[str, Any] = field(default_factory=dict)

    @property
    def user_key(self) -> tuple[str, str]:
        return (self.issuer, self.sub)

    def has_role(self, *roles: str) -> bool:
        return self.role in roles
