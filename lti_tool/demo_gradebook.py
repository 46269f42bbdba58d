"""The demo platform's gradebook: line items and the latest score of each learner, in the database.

It is what the development-mode demo platform (``lti_tool.demo``) serves over Assignment and
Grade Services, so a newcomer sees a completed module's score land without a VLE. It keeps to the
rules a tool meets on a real platform, in the small:

- a line item has a label and a maximum above zero, and may carry ``resourceId``, ``tag`` and
  ``resourceLinkId`` to be found by;
- a score names a learner of the course, an ISO 8601 timestamp with a zone, and the AGS
  ``activityProgress`` and ``gradingProgress`` values; ``scoreGiven`` needs ``scoreMaximum``;
- only a score newer than the stored one replaces it (409 otherwise), so a late, re-sent score
  never overwrites a newer grade;
- a result shows a grade only for a FullyGraded score, scaled to the line item's maximum.

The tables belong to the demo platform's registration (``platform_id``) and go with it. Nothing
here knows Flask or HTTP: bad input raises ``GradebookError`` with the status a service answers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Float, ForeignKey, Integer, String, Text, UniqueConstraint, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from .db import Base, Database, UTCDateTime

ACTIVITY_PROGRESS = ("Initialized", "Started", "InProgress", "Submitted", "Completed")
GRADING_PROGRESS = ("FullyGraded", "Pending", "PendingManual", "Failed", "NotReady")
MAX_TEXT = 255
MAX_COMMENT = 4000


def _now() -> datetime:
    return datetime.now(UTC)


class DemoLineItem(Base):
    """A column of the demo gradebook."""

    __tablename__ = "demo_line_items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    platform_id: Mapped[int] = mapped_column(ForeignKey("platforms.id", ondelete="CASCADE"), index=True)
    context_id: Mapped[str] = mapped_column(String(255))
    label: Mapped[str] = mapped_column(String(255))
    score_maximum: Mapped[float] = mapped_column(Float)
    resource_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    tag: Mapped[str | None] = mapped_column(String(255), nullable=True)
    resource_link_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=_now)


class DemoScore(Base):
    """The latest score one learner has in one column."""

    __tablename__ = "demo_scores"
    __table_args__ = (UniqueConstraint("line_item_id", "user_id", name="uq_demo_score"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    platform_id: Mapped[int] = mapped_column(ForeignKey("platforms.id", ondelete="CASCADE"), index=True)
    line_item_id: Mapped[int] = mapped_column(ForeignKey("demo_line_items.id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(String(255))
    score_given: Mapped[float | None] = mapped_column(Float, nullable=True)
    score_maximum: Mapped[float | None] = mapped_column(Float, nullable=True)
    activity_progress: Mapped[str] = mapped_column(String(32))
    grading_progress: Mapped[str] = mapped_column(String(32))
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)
    timestamp: Mapped[datetime] = mapped_column(UTCDateTime())
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=_now)


class GradebookError(Exception):
    """A request the gradebook refuses: the HTTP status to answer and a sentence saying why."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


# -- what comes in ------------------------------------------------------------------------------


@dataclass(frozen=True)
class LineItemSpec:
    label: str
    score_maximum: float
    resource_id: str | None = None
    tag: str | None = None
    resource_link_id: str | None = None


@dataclass(frozen=True)
class ScoreSpec:
    user_id: str
    activity_progress: str
    grading_progress: str
    timestamp: datetime
    score_given: float | None = None
    score_maximum: float | None = None
    comment: str | None = None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _optional_text(data: Mapping[str, Any], name: str) -> str | None:
    value = data.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > MAX_TEXT:
        raise GradebookError(400, f"{name} must be a string of at most {MAX_TEXT} characters")
    return value


def parse_line_item(data: Any) -> LineItemSpec:
    """A line item from a lineitem+json body (or a deep-linking lineItem); GradebookError if not."""
    if not isinstance(data, Mapping):
        raise GradebookError(400, "the line item must be a JSON object")
    label = data.get("label")
    if not isinstance(label, str) or not label.strip() or len(label) > MAX_TEXT:
        raise GradebookError(400, f"label is required: a non-empty string of at most {MAX_TEXT} characters")
    maximum = _number(data.get("scoreMaximum"))
    if maximum is None or maximum <= 0:
        raise GradebookError(400, "scoreMaximum is required: a number above 0")
    return LineItemSpec(
        label=label.strip(),
        score_maximum=maximum,
        resource_id=_optional_text(data, "resourceId"),
        tag=_optional_text(data, "tag"),
        resource_link_id=_optional_text(data, "resourceLinkId"),
    )


def _timestamp(value: Any) -> datetime:
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            moment = None
        if moment is not None and moment.tzinfo is not None:
            return moment.astimezone(UTC)
    raise GradebookError(
        400, "timestamp is required: an ISO 8601 date and time with a zone, e.g. 2026-01-31T09:00:00.000Z"
    )


def parse_score(data: Any) -> ScoreSpec:
    """A score from a score+json body; GradebookError(400) naming the first thing wrong."""
    if not isinstance(data, Mapping):
        raise GradebookError(400, "the score must be a JSON object")
    user_id = data.get("userId")
    if not isinstance(user_id, str) or not user_id or len(user_id) > MAX_TEXT:
        raise GradebookError(400, "userId is required: the learner's LTI user id")
    activity = data.get("activityProgress")
    if activity not in ACTIVITY_PROGRESS:
        raise GradebookError(400, f"activityProgress must be one of {', '.join(ACTIVITY_PROGRESS)}")
    grading = data.get("gradingProgress")
    if grading not in GRADING_PROGRESS:
        raise GradebookError(400, f"gradingProgress must be one of {', '.join(GRADING_PROGRESS)}")
    timestamp = _timestamp(data.get("timestamp"))
    given = maximum = None
    if data.get("scoreGiven") is not None:
        given = _number(data["scoreGiven"])
        if given is None or given < 0:
            raise GradebookError(400, "scoreGiven must be a number of 0 or more")
        maximum = _number(data.get("scoreMaximum"))
        if maximum is None or maximum <= 0:
            raise GradebookError(400, "scoreMaximum is required with scoreGiven: a number above 0")
    comment = data.get("comment")
    if comment is not None and (not isinstance(comment, str) or len(comment) > MAX_COMMENT):
        raise GradebookError(400, f"comment must be a string of at most {MAX_COMMENT} characters")
    return ScoreSpec(user_id, activity, grading, timestamp, given, maximum, comment or None)


# -- what goes out ------------------------------------------------------------------------------


@dataclass(frozen=True)
class LineItem:
    id: int
    label: str
    score_maximum: float
    resource_id: str | None
    tag: str | None
    resource_link_id: str | None

    @classmethod
    def from_row(cls, row: DemoLineItem) -> LineItem:
        return cls(row.id, row.label, row.score_maximum, row.resource_id, row.tag, row.resource_link_id)


@dataclass(frozen=True)
class Result:
    """A learner's stored score in one column; ``grade`` is set only for a FullyGraded score."""

    line_item_id: int
    user_id: str
    grade: float | None
    maximum: float
    activity_progress: str
    grading_progress: str
    timestamp: datetime
    comment: str | None


def _result(row: DemoScore, item: DemoLineItem) -> Result:
    grade = None
    if row.grading_progress == "FullyGraded" and row.score_given is not None and row.score_maximum:
        grade = row.score_given * item.score_maximum / row.score_maximum
    return Result(
        item.id,
        row.user_id,
        grade,
        item.score_maximum,
        row.activity_progress,
        row.grading_progress,
        row.timestamp,
        row.comment,
    )


# -- the gradebook of one course ----------------------------------------------------------------


class CourseGradebook:
    """The demo platform's gradebook for one course (its registration and context id)."""

    def __init__(self, db: Database, platform_id: int, context_id: str):
        self._db = db
        self._platform_id = platform_id
        self._context_id = context_id

    def _items(self):
        return select(DemoLineItem).where(
            DemoLineItem.platform_id == self._platform_id, DemoLineItem.context_id == self._context_id
        )

    def line_items(
        self, *, resource_id: str | None = None, tag: str | None = None, resource_link_id: str | None = None
    ) -> list[LineItem]:
        query = self._items()
        for column, value in (
            (DemoLineItem.resource_id, resource_id),
            (DemoLineItem.tag, tag),
            (DemoLineItem.resource_link_id, resource_link_id),
        ):
            if value is not None:
                query = query.where(column == value)
        with self._db.sessions() as session:
            return [LineItem.from_row(row) for row in session.scalars(query.order_by(DemoLineItem.id))]

    def line_item(self, item_id: int) -> LineItem:
        with self._db.sessions() as session:
            row = session.scalar(self._items().where(DemoLineItem.id == item_id))
        if row is None:
            raise GradebookError(404, f"there is no line item {item_id} in this course")
        return LineItem.from_row(row)

    def add_line_items(self, specs: list[LineItemSpec]) -> list[LineItem]:
        """New columns, all in one transaction."""
        with self._db.transaction() as session:
            rows = [
                DemoLineItem(
                    platform_id=self._platform_id,
                    context_id=self._context_id,
                    label=spec.label,
                    score_maximum=spec.score_maximum,
                    resource_id=spec.resource_id,
                    tag=spec.tag,
                    resource_link_id=spec.resource_link_id,
                )
                for spec in specs
            ]
            session.add_all(rows)
            session.flush()
            return [LineItem.from_row(row) for row in rows]

    def record_score(self, item_id: int, score: ScoreSpec) -> None:
        """Keep ``score`` as the learner's latest in the column; 409 unless it is newer than the stored one."""
        self.line_item(item_id)
        values = {
            "score_given": score.score_given,
            "score_maximum": score.score_maximum,
            "activity_progress": score.activity_progress,
            "grading_progress": score.grading_progress,
            "comment": score.comment,
            "timestamp": score.timestamp,
            "received_at": _now(),
        }
        mine = (DemoScore.line_item_id == item_id, DemoScore.user_id == score.user_id)
        for _attempt in range(2):
            try:
                with self._db.transaction() as session:
                    # Write first: the update takes the write lock before anything is read.
                    changed = session.execute(
                        update(DemoScore)
                        .where(*mine, DemoScore.timestamp < score.timestamp)
                        .values(**values)
                        .execution_options(synchronize_session=False)
                    ).rowcount
                    if changed:
                        return
                    stored = session.scalar(select(DemoScore.timestamp).where(*mine))
                    if stored is not None:
                        raise GradebookError(
                            409,
                            f"a score for {score.user_id} timestamped {stored.isoformat()} is already stored; "
                            "only a later timestamp replaces it",
                        )
                    session.add(
                        DemoScore(
                            platform_id=self._platform_id, line_item_id=item_id, user_id=score.user_id, **values
                        )
                    )
                return
            except IntegrityError:
                continue  # another request stored the learner's first score meanwhile: compare with it
        raise GradebookError(409, f"scores for {score.user_id} arrived at the same moment; send it again")

    def results(self, item_id: int, user_id: str | None = None) -> list[Result]:
        with self._db.sessions() as session:
            item = session.scalar(self._items().where(DemoLineItem.id == item_id))
            if item is None:
                raise GradebookError(404, f"there is no line item {item_id} in this course")
            query = select(DemoScore).where(DemoScore.line_item_id == item_id)
            if user_id is not None:
                query = query.where(DemoScore.user_id == user_id)
            return [_result(row, item) for row in session.scalars(query.order_by(DemoScore.user_id))]

    def all_results(self) -> dict[tuple[int, str], Result]:
        """Every stored score of the course, keyed by (line item id, user id): the grader report."""
        with self._db.sessions() as session:
            rows = session.execute(
                select(DemoScore, DemoLineItem)
                .join(DemoLineItem, DemoScore.line_item_id == DemoLineItem.id)
                .where(DemoLineItem.platform_id == self._platform_id, DemoLineItem.context_id == self._context_id)
            ).all()
            return {(item.id, score.user_id): _result(score, item) for score, item in rows}
