"""Learning events: what plugins report, written with their state and outbox rows in one transaction.

A plugin opens a recording for its launch, changes its own state through it and emits events.
When the block ends, the state, the events and one outbox row per interested receiver (xAPI,
AGS, ...) commit together, or none of them do. Nothing is sent during the request: the outbox
worker delivers later, so an LRS or VLE outage never loses a learner's work.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .context import LaunchContext
from .db import Database
from .models import LearningEventRow, OutboxMessage, PluginRecord, utcnow

if TYPE_CHECKING:
    from .app import Tool
    from .outbox import Delivery

EVENT_KINDS = (
    "launched",
    "initialized",
    "experienced",
    "progressed",
    "answered",
    "completed",
    "submitted",
    "scored",
    "passed",
    "failed",
    "attended",
    "commented",
)


class EventError(ValueError):
    """A plugin reported an event the core cannot accept; the message says which field."""


class StateConflict(Exception):
    """A plugin record changed since it was read (another tab or device saved first)."""

    def __init__(self, current_version: int):
        super().__init__(f"record changed: now at version {current_version}")
        self.current_version = current_version


@dataclass(frozen=True)
class Result:
    """The outcome an event carries, in the shape xAPI and AGS both understand."""

    score_raw: float | None = None
    score_min: float = 0.0
    score_max: float | None = None
    success: bool | None = None
    completion: bool | None = None
    duration_seconds: float | None = None
    response: str | None = None

    @property
    def has_score(self) -> bool:
        return self.score_raw is not None and self.score_max is not None

    def validate(self) -> None:
        for name in ("score_raw", "score_min", "score_max", "duration_seconds"):
            value = getattr(self, name)
            if value is not None and (
                not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value)
            ):
                raise EventError(f"result.{name} must be a finite number, got {value!r}")
        if (self.score_raw is None) != (self.score_max is None):
            raise EventError("result.score_raw and result.score_max go together")
        if self.has_score:
            if not self.score_max > self.score_min:
                raise EventError("result.score_max must be greater than result.score_min")
            if not self.score_min <= self.score_raw <= self.score_max:
                raise EventError("result.score_raw must lie between score_min and score_max")
        if self.duration_seconds is not None and self.duration_seconds < 0:
            raise EventError("result.duration_seconds must not be negative")
        if self.response is not None and len(self.response) > 20_000:
            raise EventError("result.response is longer than 20,000 characters")


@dataclass(frozen=True)
class LearningEvent:
    """What happened: a verb-like kind, the plugin's activity, an optional result."""

    kind: str
    activity: str
    result: Result | None = None
    occurred_at: datetime | None = None
    extensions: Mapping[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        if self.kind not in EVENT_KINDS:
            raise EventError(f"kind {self.kind!r} is not one of {', '.join(EVENT_KINDS)}")
        if not self.activity or len(self.activity) > 255:
            raise EventError("activity must be 1-255 characters")
        if self.occurred_at is not None and self.occurred_at.tzinfo is None:
            raise EventError("occurred_at must be timezone-aware")
        if self.result is not None:
            self.result.validate()


class Receiver(Protocol):
    """A destination of learning events (the xAPI LRS, the VLE gradebook, ...).

    The delivery contract (answers, retries, order, leases) is documented in ``lti_tool.outbox``.
    """

    #: Stable, at most 16 characters: outbox rows name their receiver by it.
    name: str

    def wants(self, event: LearningEventRow) -> bool:
        """Whether this receiver owes a delivery for the event."""

    def deliver(self, message: OutboxMessage, event: LearningEventRow, tool: Tool) -> Delivery:
        """Deliver one outbox row; answer delivered, retry later, or a permanent failure."""


def ordering_key(receiver: str, event: LearningEventRow) -> str:
    """Deliveries for the same receiver, person and activity keep their order."""
    return f"{receiver}:{event.platform_id}:{event.user_id}:{event.plugin_key}:{event.activity}"[:255]


class Recording:
    """A plugin's open transaction: its state and the events it emits commit together."""

    def __init__(self, session: Session, context: LaunchContext, plugin_key: str, receivers: Sequence[Receiver]):
        self.session = session
        self.context = context
        self.plugin_key = plugin_key
        self._receivers = receivers
        self.event_ids: list[str] = []

    def emit(self, event: LearningEvent) -> str:
        """Record an event and the deliveries it owes; returns the event id."""
        event.validate()
        ctx = self.context
        row = LearningEventRow(
            id=str(uuid.uuid4()),
            platform_id=ctx.platform_pk,
            user_id=ctx.user_pk,
            course_id=ctx.course_pk,
            resource_link_id=ctx.resource_link_pk,
            launch_id=ctx.launch_id,
            deployment_id=ctx.deployment_id,
            plugin_key=self.plugin_key,
            activity=event.activity,
            kind=event.kind,
            result=asdict(event.result) if event.result else None,
            extensions=dict(event.extensions),
            occurred_at=event.occurred_at or utcnow(),
        )
        self.session.add(row)
        self.session.flush()
        for receiver in self._receivers:
            if receiver.wants(row):
                self.session.add(
                    OutboxMessage(
                        platform_id=row.platform_id,
                        event_id=row.id,
                        receiver=receiver.name,
                        ordering_key=ordering_key(receiver.name, row),
                    )
                )
        self.event_ids.append(row.id)
        return row.id

    def about(self, context: LaunchContext) -> Recording:
        """A recording for another person's context (``lti_tool.plugin_records.member_context``)
        in this same transaction: a coach's event and the candidate's record commit together."""
        return Recording(self.session, context, self.plugin_key, self._receivers)

    # -- plugin state --------------------------------------------------------------------
    def _record_query(self, activity: str, name: str, per_person: bool):
        ctx = self.context
        return select(PluginRecord).where(
            PluginRecord.platform_id == ctx.platform_pk,
            PluginRecord.course_id == ctx.course_pk
            if ctx.course_pk is not None
            else PluginRecord.course_id.is_(None),
            PluginRecord.user_id == ctx.user_pk if per_person else PluginRecord.user_id.is_(None),
            PluginRecord.plugin_key == self.plugin_key,
            PluginRecord.activity == activity,
            PluginRecord.name == name,
        )

    def load(self, activity: str, name: str, *, per_person: bool = True) -> tuple[dict | None, int]:
        """A record's data and version (None, 0 when it does not exist yet)."""
        row = self.session.scalar(self._record_query(activity, name, per_person))
        return (dict(row.data), row.version) if row else (None, 0)

    def save(
        self, activity: str, name: str, data: dict, *, per_person: bool = True, expected_version: int | None = None
    ) -> int:
        """Write a record; with ``expected_version``, refuse if someone saved in between.

        The version check is part of the write itself (``UPDATE ... WHERE version = ?``, or the
        unique key for a first write), so two concurrent saves of one version cannot both pass,
        on SQLite (where SELECT ... FOR UPDATE means nothing) as on PostgreSQL. After a
        StateConflict the recording's transaction is spent: let the exception end the block.
        """
        row = self.session.scalar(self._record_query(activity, name, per_person).with_for_update())
        if expected_version is not None and (row.version if row else 0) != expected_version:
            raise StateConflict(row.version if row else 0)
        if row is None:
            row = PluginRecord(
                platform_id=self.context.platform_pk,
                course_id=self.context.course_pk,
                user_id=self.context.user_pk if per_person else None,
                plugin_key=self.plugin_key,
                activity=activity,
                name=name,
                data=data,
                version=1,
            )
            self.session.add(row)
            try:
                self.session.flush()
            except IntegrityError:
                raise StateConflict(1) from None
            return 1
        guard = [PluginRecord.id == row.id]
        if expected_version is not None:
            guard.append(PluginRecord.version == expected_version)
        written = self.session.execute(
            update(PluginRecord)
            .where(*guard)
            .values(data=data, version=PluginRecord.version + 1, updated_at=utcnow())
            .returning(PluginRecord.version),
            execution_options={"synchronize_session": False},
        ).scalar()
        self.session.expire(row)
        if written is None:
            raise StateConflict(self.load(activity, name, per_person=per_person)[1])
        return written


class EventRecorder:
    """Opens recordings; knows which receivers are installed."""

    def __init__(self, db: Database, receivers: Sequence[Receiver] = ()):
        self._db = db
        self.receivers = list(receivers)

    def add_receiver(self, receiver: Receiver) -> None:
        self.receivers.append(receiver)

    @contextmanager
    def record(self, context: LaunchContext, plugin_key: str) -> Iterator[Recording]:
        with self._db.transaction() as session:
            yield Recording(session, context, plugin_key, self.receivers)
