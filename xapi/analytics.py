"""The figures of the administrators' analytics page, read from the flat projection.

Every query is scoped to one platform (tenant) and leaves out voided statements and the voiding
statements themselves: what remains is what learners did. Days are UTC days of the statement's
``timestamp`` (when it happened, not when it was stored). The aggregates read only columns of the
projection's (platform_id, timestamp, ...) index, so they scan the index and never the rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from .projection import VOIDED_VERB, FlatStatement

COMPLETED_VERBS = ("http://adlnet.gov/expapi/verbs/completed", "http://adlnet.gov/expapi/verbs/passed")
PASSED_VERBS = ("http://adlnet.gov/expapi/verbs/passed",)
PERIODS = (7, 30, 90, 365)
FUNNEL_LIMIT = 15
# Scaled scores in tenths: [0, 0.1), [0.1, 0.2), ..., [0.9, 1.0]; negatives have a band of their own.
SCORE_BANDS = ("below 0", *(f"{n / 10:.1f}–{(n + 1) / 10:.1f}" for n in range(10)))


@dataclass(frozen=True)
class FunnelStep:
    """How many people reached each step of one activity."""

    activity_id: str
    name: str
    started: int
    completed: int
    passed: int


@dataclass(frozen=True)
class Overview:
    statements: int
    people: int
    registrations: int


def _counted(platform_id: int, since: datetime) -> list[ColumnElement[bool]]:
    """What learners did on this platform since ``since``: no voided or voiding statements."""
    return [
        FlatStatement.platform_id == platform_id,
        FlatStatement.timestamp >= since,
        FlatStatement.voided.is_(False),
        FlatStatement.verb_id != VOIDED_VERB,
    ]


def period_start(days: int, today: date) -> datetime:
    """The first instant of a period of ``days`` UTC days ending with ``today``."""
    return datetime.combine(today - timedelta(days=days - 1), time.min, tzinfo=UTC)


def _utc_day(session: Session):
    column = FlatStatement.timestamp
    if session.get_bind().dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD")
    return func.strftime("%Y-%m-%d", column)  # SQLite keeps UTC datetimes as ISO text


def _distinct_count(session: Session, column, conditions) -> int:
    """How many distinct non-NULL values: grouped first, then counted.

    PostgreSQL computes count(DISTINCT x) by sorting every row (spilling to disk at a million);
    a GROUP BY hashes instead. SQLite does about the same either way.
    """
    values = select(column).where(*conditions, column.is_not(None)).group_by(column).subquery()
    return session.scalar(select(func.count()).select_from(values))


def overview(session: Session, platform_id: int, since: datetime) -> Overview:
    conditions = _counted(platform_id, since)
    return Overview(
        session.scalar(select(func.count()).select_from(FlatStatement).where(*conditions)),
        _distinct_count(session, FlatStatement.actor_ifi, conditions),
        _distinct_count(session, FlatStatement.registration, conditions),
    )


def statements_per_day(session: Session, platform_id: int, days: int, today: date) -> list[tuple[date, int]]:
    """One (day, statements) pair for each of the last ``days`` UTC days, zeros included."""
    day = _utc_day(session)
    counts = dict(
        session.execute(
            select(day, func.count()).where(*_counted(platform_id, period_start(days, today))).group_by(day)
        ).all()
    )
    first = today - timedelta(days=days - 1)
    return [
        (first + timedelta(days=n), counts.get((first + timedelta(days=n)).isoformat(), 0)) for n in range(days)
    ]


def completion_funnel(session: Session, platform_id: int, since: datetime) -> list[FunnelStep]:
    """People per activity who did anything, who completed it, who passed it; busiest first."""
    flat = FlatStatement
    completed = or_(flat.completion.is_(True), flat.verb_id.in_(COMPLETED_VERBS))
    passed = or_(flat.success.is_(True), flat.verb_id.in_(PASSED_VERBS))
    # One row per (activity, person) first, then counted per activity: no count(DISTINCT ...),
    # which PostgreSQL would sort for.
    people = (
        select(
            flat.object_id,
            func.max(case((completed, 1), else_=0)).label("completed"),
            func.max(case((passed, 1), else_=0)).label("passed"),
        )
        .where(*_counted(platform_id, since), flat.object_type == "Activity")
        .group_by(flat.object_id, flat.actor_ifi)
        .subquery()
    )
    started = func.count()
    rows = session.execute(
        select(people.c.object_id, started, func.sum(people.c.completed), func.sum(people.c.passed))
        .group_by(people.c.object_id)
        .order_by(started.desc(), people.c.object_id)
        .limit(FUNNEL_LIMIT)
    ).all()
    names = activity_names(session, [row[0] for row in rows])
    return [FunnelStep(activity, names[activity], s, c, p) for activity, s, c, p in rows]


def scored_activities(session: Session, platform_id: int, since: datetime) -> list[tuple[str, str]]:
    """(activity id, name) of the activities with scaled scores in the period, by name."""
    ids = session.scalars(
        select(FlatStatement.object_id)
        .where(*_counted(platform_id, since), FlatStatement.score_scaled.is_not(None))
        .group_by(FlatStatement.object_id)
    ).all()
    names = activity_names(session, ids)
    return sorted(names.items(), key=lambda item: item[1].lower())


def activity_names(session: Session, activity_ids: list[str]) -> dict[str, str]:
    """The latest name each activity was given (its id when it never had one).

    One index probe per activity, so the aggregates above never read the wide rows.
    """
    names = {}
    for activity_id in activity_ids:
        names[activity_id] = (
            session.scalar(
                select(FlatStatement.object_name)
                .where(FlatStatement.object_id == activity_id, FlatStatement.object_name.is_not(None))
                .order_by(FlatStatement.timestamp.desc())
                .limit(1)
            )
            or activity_id
        )
    return names


def score_distribution(
    session: Session, platform_id: int, since: datetime, activity_id: str | None = None
) -> list[tuple[str, int]]:
    """How many scaled scores fall in each band of SCORE_BANDS (of one activity, when given)."""
    scaled = FlatStatement.score_scaled
    band = case(
        (scaled < 0, 0),
        *((and_(scaled >= n / 10, scaled < (n + 1) / 10), n + 1) for n in range(9)),
        else_=10,
    )
    conditions = [*_counted(platform_id, since), scaled.is_not(None)]
    if activity_id:
        conditions.append(FlatStatement.object_id == activity_id)
    counts = dict(session.execute(select(band, func.count()).where(*conditions).group_by(band)).all())
    return [(label, counts.get(index, 0)) for index, label in enumerate(SCORE_BANDS)]
