"""Plugin records and events about another person of the same course.

A ``Recording`` writes for the person who launched. A coach recording a candidate's attendance,
or leaving them feedback, writes about someone else: ``member_context`` gives the LaunchContext
of that person, with the platform, deployment, course and resource link of the coach's own
launch and the candidate's own user row. Records saved and events emitted through it belong to
the candidate (an ``attended`` event becomes the candidate's xAPI statement), and they can only
land in the coach's course on the coach's platform: never across tenants or courses.

``course_records`` reads per-person records of everyone in a course at once (a roster page),
and ``first_seen`` tells when each person first appeared in a course.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .context import LaunchContext
from .db import Database
from .models import Launch, LearningEventRow, PluginRecord, User
from .roles import CANDIDATE
from .roster import Roster


class NotInCourse(LookupError):
    """The person is not a member of the launch's course (or the launch has no course)."""


def _seen_in_course(session: Session, context: LaunchContext, user_id: int) -> Launch | None | bool:
    """The person's latest launch in the course, True when only their events or records are, else None."""
    launch = session.scalars(
        select(Launch)
        .where(
            Launch.platform_id == context.platform_pk,
            Launch.course_id == context.course_pk,
            Launch.user_id == user_id,
        )
        .order_by(Launch.created_at.desc())
        .limit(1)
    ).first()
    if launch is not None:
        return launch
    for model in (LearningEventRow, PluginRecord):
        found = session.scalar(
            select(model.id)
            .where(model.platform_id == context.platform_pk, model.course_id == context.course_pk)
            .where(model.user_id == user_id)
            .limit(1)
        )
        if found is not None:
            return True
    return None


def member_context(
    db: Database, context: LaunchContext, sub: str, *, roster: Roster | None = None
) -> LaunchContext:
    """The context of person ``sub`` in the course of ``context``, for records and events about them.

    ``sub`` must be a member of the course: listed in ``roster`` (the course's NRPS roster, when
    the caller has it) or seen in this course before (a launch, an event or a record). Their user
    row is created when the VLE lists them but they have never launched. Raises NotInCourse.
    The role is the one the roster gives, else the one of their latest launch in the course.
    """
    if context.course_pk is None or not sub:
        raise NotInCourse("the launch has no course")
    same_course = (
        roster is not None
        and roster.platform_pk == context.platform_pk
        and roster.context_id == context.context_id
    )
    member = roster.find(sub) if same_course else None
    with db.transaction() as session:
        user = session.scalar(select(User).where(User.platform_id == context.platform_pk, User.sub == sub))
        seen = _seen_in_course(session, context, user.id) if user is not None else None
        if member is None and seen is None:
            raise NotInCourse(f"{sub!r} is not a member of this course")
        if member is not None:
            role, lti_roles = member.role, tuple(member.lti_roles)
        elif isinstance(seen, Launch):
            role, lti_roles = seen.role, tuple(seen.roles or ())
        else:
            role, lti_roles = CANDIDATE, ()
        if user is None:
            user = _create_user(session, context.platform_pk, sub)
        user_pk, name = user.id, user.name
    return dataclasses.replace(context, user_pk=user_pk, sub=sub, role=role, lti_roles=lti_roles, name=name)


def _create_user(session: Session, platform_pk: int, sub: str) -> User:
    """A user row for someone the VLE lists but who never launched (their first launch may race us)."""
    try:
        with session.begin_nested():
            user = User(platform_id=platform_pk, sub=sub)
            session.add(user)
        return user
    except IntegrityError:
        return session.scalars(select(User).where(User.platform_id == platform_pk, User.sub == sub)).one()


@dataclass(frozen=True)
class PersonRecord:
    """One person's plugin record, as ``course_records`` lists it."""

    sub: str
    activity: str
    name: str
    data: dict
    version: int
    updated_at: datetime


def course_records(
    db: Database,
    *,
    platform_pk: int,
    course_pk: int | None,
    plugin_key: str,
    activity: str | None = None,
    names: Sequence[str] | None = None,
    name_prefix: str | None = None,
    sub: str | None = None,
) -> list[PersonRecord]:
    """Everyone's per-person records of ``plugin_key`` in one course (a coach's roster page).

    Narrowed by ``activity``, ``names`` (any of), ``name_prefix`` and one person's ``sub``;
    course-level records (``per_person=False``) are not listed. Always one platform, one course.
    """
    if course_pk is None:
        return []
    query = (
        select(User.sub, PluginRecord)
        .join(User, User.id == PluginRecord.user_id)
        .where(
            PluginRecord.platform_id == platform_pk,
            PluginRecord.course_id == course_pk,
            PluginRecord.plugin_key == plugin_key,
            User.platform_id == platform_pk,
        )
        .order_by(PluginRecord.id)
    )
    if activity is not None:
        query = query.where(PluginRecord.activity == activity)
    if names is not None:
        query = query.where(PluginRecord.name.in_(list(names)))
    if name_prefix is not None:
        escaped = name_prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(PluginRecord.name.like(escaped + "%", escape="\\"))
    if sub is not None:
        query = query.where(User.sub == sub)
    with db.sessions() as session:
        return [
            PersonRecord(who, row.activity, row.name, dict(row.data or {}), row.version, row.updated_at)
            for who, row in session.execute(query)
        ]


def first_seen(db: Database, context: LaunchContext, sub: str | None = None) -> dict[str, datetime]:
    """When each person (only ``sub``, when given) first appeared in the launch's course, by sub.

    The earliest of their launches and learning events there; launches are purged after a while,
    events are kept, so the answer does not move later.
    """
    if context.course_pk is None:
        return {}
    earliest: dict[str, datetime] = {}
    with db.sessions() as session:
        for model, moment in ((Launch, Launch.created_at), (LearningEventRow, LearningEventRow.occurred_at)):
            query = (
                select(User.sub, func.min(moment))
                .join(User, User.id == model.user_id)
                .where(
                    model.platform_id == context.platform_pk,
                    model.course_id == context.course_pk,
                    User.platform_id == context.platform_pk,
                )
                .group_by(User.sub)
            )
            if sub is not None:
                query = query.where(User.sub == sub)
            for who, when in session.execute(query):
                if when is not None and (who not in earliest or when < earliest[who]):
                    earliest[who] = when
    return earliest
