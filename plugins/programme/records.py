"""What the programme dashboard keeps, as the core's plugin records.

Per candidate, in their course: the electives they chose, their start date, their coach's
feedback, their attendance at the event days. Per course: the event days' dates. Every reader
and writer takes a ``Recording`` opened for the right person (the candidate's own launch, or
the coach's launch turned into the candidate's context by ``lti_tool.plugin_records``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from plugins.contract import Recording

ACTIVITY = "programme"
ELECTIVES = "electives"
START = "start"
FEEDBACK = "feedback"
ATTENDANCE = "attendance"
EVENT_DATES = "event-dates"
# Per-person records, in the order a candidate's state is read.
PERSONAL = (ELECTIVES, START, FEEDBACK, ATTENDANCE)

START_FIRST_LAUNCH = "first-launch"
START_COACH = "coach"

ATTENDED = "attended"
ABSENT = "absent"
ATTENDANCE_STATES = (ATTENDED, ABSENT)

MAX_FEEDBACK_CHARS = 5000


@dataclass(frozen=True)
class Feedback:
    text: str
    at: datetime
    coach_name: str


@dataclass(frozen=True)
class CandidateState:
    """A candidate's own programme records, read together."""

    electives: tuple[str, ...] = ()
    start: date | None = None
    start_source: str | None = None
    feedback: tuple[Feedback, ...] = ()
    attendance: dict[int, str] = field(default_factory=dict)


def _date(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


def state_from(raw: dict[str, dict | None]) -> CandidateState:
    """A CandidateState from the raw records (name -> data), as ``read_state`` or ``course_records`` give them."""
    electives = (raw.get(ELECTIVES) or {}).get("keys", [])
    start = raw.get(START) or {}
    feedback = [
        Feedback(item["text"], datetime.fromisoformat(item["at"]), item.get("coach_name") or "Your coach")
        for item in (raw.get(FEEDBACK) or {}).get("items", [])
    ]
    attendance = {int(k): v for k, v in ((raw.get(ATTENDANCE) or {}).get("days") or {}).items()}
    return CandidateState(
        electives=tuple(electives),
        start=_date(start.get("date")),
        start_source=start.get("source"),
        feedback=tuple(sorted(feedback, key=lambda f: f.at, reverse=True)),
        attendance=attendance,
    )


def read_state(rec: Recording) -> CandidateState:
    """The candidate's state, for the person the recording is for."""
    return state_from({name: rec.load(ACTIVITY, name)[0] for name in PERSONAL})


def save_electives(rec: Recording, keys: list[str]) -> None:
    rec.save(ACTIVITY, ELECTIVES, {"keys": list(keys), "chosen_at": _now()})


def save_start(rec: Recording, start: date, source: str) -> None:
    rec.save(ACTIVITY, START, {"date": start.isoformat(), "source": source, "saved_at": _now()})


def add_feedback(rec: Recording, text: str, coach_sub: str, coach_name: str | None) -> None:
    data, _ = rec.load(ACTIVITY, FEEDBACK)
    items = list((data or {}).get("items", []))
    items.append({"text": text, "at": _now(), "coach_sub": coach_sub, "coach_name": coach_name})
    rec.save(ACTIVITY, FEEDBACK, {"items": items})


def set_attendance(rec: Recording, number: int, status: str | None, coach_sub: str) -> str | None:
    """Record attendance at event day ``number`` (None clears it); returns the previous status."""
    data, _ = rec.load(ACTIVITY, ATTENDANCE)
    days = dict((data or {}).get("days") or {})
    history = list((data or {}).get("history") or [])
    previous = days.get(str(number))
    if status is None:
        days.pop(str(number), None)
    else:
        days[str(number)] = status
    history.append({"day": number, "status": status, "by": coach_sub, "at": _now()})
    rec.save(ACTIVITY, ATTENDANCE, {"days": days, "history": history})
    return previous


def read_event_dates(rec: Recording) -> dict[int, date]:
    data, _ = rec.load(ACTIVITY, EVENT_DATES, per_person=False)
    return {int(k): date.fromisoformat(v) for k, v in ((data or {}).get("dates") or {}).items() if v}


def save_event_dates(rec: Recording, dates: dict[int, date | None]) -> None:
    stored = {str(k): v.isoformat() for k, v in dates.items() if v is not None}
    rec.save(ACTIVITY, EVENT_DATES, {"dates": stored, "saved_at": _now()}, per_person=False)


def _now() -> str:
    return datetime.now(UTC).isoformat()
