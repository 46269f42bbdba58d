"""The programme dashboard's pages: a candidate's own dashboard and the coach view of the course.

Every page is reached with the launch reference (``launch``) of a launch in a course: a
candidate sees only their own programme; coaches and administrators see the candidates of the
launch's course and nothing of another course. Forms post the launch reference, which another
site cannot know, so they need no other protection from cross-site forgery.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time

from flask import Blueprint, current_app, redirect, render_template, request, url_for

from lti_tool.errors import LaunchError
from lti_tool.plugin_records import NotInCourse, course_records, first_seen, member_context
from lti_tool.views.errors import render_launch_error
from plugins.contract import (
    ADMINISTRATOR,
    CANDIDATE,
    COACH,
    LaunchContext,
    LearningEvent,
    Plugin,
    RosterUnavailable,
    current_launch,
    launch_reference,
    record,
    roster,
)

from . import engine, records
from .plan import ChoiceError, Plan, build_plan, check_elective_choice
from .rules import EventDay, Rules
from .timeline import Timeline, timeline

COACH_ROLES = (COACH, ADMINISTRATOR)
FEEDBACK_ACTIVITY = "feedback"
NOTICES = {
    "electives": "Your electives are saved.",
    "feedback": "Your feedback is saved. The candidate sees it on their dashboard.",
    "attendance": "Attendance is saved.",
    "start": "The start date is saved.",
    "event-dates": "The event days' dates are saved.",
}


class FormError(ValueError):
    """A form's input is wrong; the message says what to change. Nothing is stored."""


def today() -> date:
    return datetime.now(UTC).date()


def long_date(value: date | datetime | None) -> str:
    """'7 March 2027' (UK style), or an empty string."""
    return f"{value.day} {value:%B %Y}" if value else ""


def _db():
    return current_app.extensions["npqsl_lti"].db


def _assessment_installed() -> bool:
    return any(p.kind == "assessment" for p in current_app.extensions["npqsl_lti"].plugins)


@dataclass(frozen=True)
class EventDayLine:
    day: EventDay
    date: date | None
    attendance: str | None

    @property
    def past(self) -> bool:
        return self.date is not None and self.date <= today()


@dataclass(frozen=True)
class Overview:
    """One candidate's programme: the plan, the timeline, the event days."""

    sub: str
    name: str
    plan: Plan
    timeline: Timeline | None
    start_source: str | None
    event_days: tuple[EventDayLine, ...]
    feedback: tuple[records.Feedback, ...]

    @property
    def attended(self) -> int:
        return sum(1 for line in self.event_days if line.attendance == records.ATTENDED)


def overview(
    rules: Rules,
    sub: str,
    name: str,
    state: records.CandidateState,
    progress,
    dates: dict[int, date],
    packs: list,
) -> Overview:
    """Assemble what a dashboard shows from records, progress and rules (no storage here)."""
    plan = build_plan(packs, progress or {}, state.electives, rules)
    line = (
        timeline(state.start, today(), rules.completion_months, rules.warn_months_remaining)
        if state.start
        else None
    )
    days = tuple(
        EventDayLine(day, dates.get(day.number), state.attendance.get(day.number)) for day in rules.event_days
    )
    return Overview(sub, name, plan, line, state.start_source, days, state.feedback)


def make_blueprint(plugin: Plugin, rules: Rules) -> Blueprint:
    bp = Blueprint("programme", __name__, template_folder="templates", static_folder="static")

    @bp.app_template_filter("long_date")
    def _long_date(value):
        return long_date(value)

    def page(template: str, context: LaunchContext, status: int = 200, **values):
        values.setdefault("notice", NOTICES.get(request.args.get("saved", "")))
        body = render_template(
            template, launch=context, launch_token=launch_reference(context), rules=rules, **values
        )
        return body, status

    def refused(context: LaunchContext, heading: str, message: str, status: int = 403):
        return page("programme/refused.html", context, status, heading=heading, message=message)

    def admit(context: LaunchContext, roles: tuple[str, ...]):
        """None when the launch may see a page for ``roles``, else the refusal page."""
        if context.course_pk is None:
            return refused(
                context,
                "This page belongs to a course",
                "Open the programme from your course page in the VLE: the dashboard follows a course.",
                400,
            )
        if context.role in roles:
            return None
        if context.role == CANDIDATE:
            message = "The coach view is for coaches. Your own programme is on your dashboard."
        elif CANDIDATE in roles and COACH in roles:
            message = "The programme dashboard is for candidates and their coaches."
        else:
            message = "This page shows a candidate their own programme. Coaches use the coach view."
        return refused(context, "You cannot open this page", message)

    def launched(*roles: str):
        """The request's launch, or the response refusing it (expired, no course, wrong role)."""
        try:
            context = current_launch()
        except LaunchError as error:
            return None, render_launch_error(error)
        response = admit(context, roles)
        return (None, response) if response is not None else (context, None)

    def done(endpoint: str, context: LaunchContext, saved: str, **values):
        return redirect(url_for(endpoint, launch=launch_reference(context), saved=saved, **values), code=303)

    # -- the candidate ------------------------------------------------------------------------
    def candidate_overview(context: LaunchContext) -> Overview:
        with record(context, plugin) as rec:
            state = records.read_state(rec)
            dates = records.read_event_dates(rec)
        if state.start is None:
            # The start date is fixed at the candidate's first appearance in the course.
            seen = first_seen(_db(), context, context.sub).get(context.sub)
            start = (seen or datetime.now(UTC)).date()
            with record(context, plugin) as rec:
                if rec.load(records.ACTIVITY, records.START)[0] is None:
                    records.save_start(rec, start, records.START_FIRST_LAUNCH)
            state = replace(state, start=start, start_source=records.START_FIRST_LAUNCH)
        packs = engine.installed_packs()
        return overview(rules, context.sub, context.name or "", state, engine.progress_for(context), dates, packs)

    def dashboard_page(context: LaunchContext, status: int = 200, **values):
        return page(
            "programme/dashboard.html",
            context,
            status,
            view=candidate_overview(context),
            engine_available=engine.available(),
            assessment_installed=_assessment_installed(),
            **values,
        )

    @bp.get("/")
    def index():
        """Candidates see their dashboard, coaches and administrators the coach view."""
        context, response = launched(CANDIDATE, *COACH_ROLES)
        if context is None:
            return response
        return dashboard_page(context) if context.role == CANDIDATE else coach_page(context)

    @bp.get("/dashboard")
    def dashboard():
        context, response = launched(CANDIDATE)
        return response if context is None else dashboard_page(context)

    @bp.post("/electives")
    def electives():
        """A candidate chooses their electives; a choice the rules refuse stores nothing."""
        context, response = launched(CANDIDATE)
        if context is None:
            return response
        with record(context, plugin) as rec:
            state = records.read_state(rec)
            plan = build_plan(engine.installed_packs(), {}, state.electives, rules)
            try:
                keys = check_elective_choice(request.form.getlist("elective"), plan)
            except ChoiceError as error:
                failure = str(error)
            else:
                records.save_electives(rec, keys)
                failure = None
        if failure:
            return dashboard_page(context, 400, error=failure, error_field="electives")
        return done("programme.dashboard", context, "electives")

    # -- the coach --------------------------------------------------------------------------------
    def course_roster(context: LaunchContext):
        try:
            return roster(context), None
        except RosterUnavailable as error:
            return None, error.message

    def candidate_overviews(context: LaunchContext, members) -> list[Overview]:
        db = _db()
        raw: dict[str, dict[str, dict]] = {}
        for row in course_records(
            db,
            platform_pk=context.platform_pk,
            course_pk=context.course_pk,
            plugin_key=plugin.key,
            activity=records.ACTIVITY,
            names=records.PERSONAL,
        ):
            raw.setdefault(row.sub, {})[row.name] = row.data
        with record(context, plugin) as rec:
            dates = records.read_event_dates(rec)
        starts = first_seen(db, context)
        progress = engine.course_progress(context)
        packs = engine.installed_packs()
        views = []
        for member in members:
            state = records.state_from(raw.get(member.sub, {}))
            if state.start is None and member.sub in starts:
                state = replace(state, start=starts[member.sub].date(), start_source=records.START_FIRST_LAUNCH)
            views.append(
                overview(rules, member.sub, member.display_name, state, progress.get(member.sub), dates, packs)
            )
        return views

    def coach_page(context: LaunchContext, status: int = 200, **values):
        members, roster_error = course_roster(context)
        candidates = members.candidates() if members is not None else []
        with record(context, plugin) as rec:
            dates = records.read_event_dates(rec)
        return page(
            "programme/coach.html",
            context,
            status,
            candidates=candidate_overviews(context, candidates),
            roster_error=roster_error,
            event_dates=dates,
            engine_available=engine.available(),
            **values,
        )

    @bp.get("/coach")
    def coach():
        context, response = launched(*COACH_ROLES)
        return response if context is None else coach_page(context)

    def candidate_of(context: LaunchContext, sub: str):
        """The candidate's context and roster name, or the refusal page (not in this course)."""
        members, _ = course_roster(context)
        try:
            person = member_context(_db(), context, sub, roster=members)
        except NotInCourse:
            person = None
        if person is None or person.role != CANDIDATE:
            return (
                None,
                "",
                refused(
                    context,
                    "No such candidate in this course",
                    "The person you asked for is not a candidate in this course.",
                    404,
                ),
            )
        member = members.find(sub) if members is not None else None
        return person, (member.display_name if member else person.name or sub), None

    def candidate_page(context: LaunchContext, sub: str, status: int = 200, **values):
        person, name, response = candidate_of(context, sub)
        if person is None:
            return response
        return page(
            "programme/coach_candidate.html",
            context,
            status,
            view=candidate_overviews(context, [_Person(person.sub, name)])[0],
            reflections=engine.shared_reflections(context, sub),
            engine_available=engine.available(),
            **values,
        )

    @bp.get("/coach/candidate")
    def candidate():
        context, response = launched(*COACH_ROLES)
        if context is None:
            return response
        return candidate_page(context, request.args.get("sub", ""))

    def coach_form(handler, saved: str):
        """Run a coach's form about one candidate: redirect when stored, the page with the error if not."""
        context, response = launched(*COACH_ROLES)
        if context is None:
            return response
        sub = request.form.get("sub", "")
        person, _, response = candidate_of(context, sub)
        if person is None:
            return response
        try:
            handler(context, person)
        except FormError as error:
            return candidate_page(context, sub, 400, error=str(error), error_field=saved)
        return done("programme.candidate", context, saved, sub=sub, _anchor=saved)

    @bp.post("/coach/feedback")
    def feedback():
        """Feedback the candidate sees on their dashboard; a ``commented`` event for the coach."""

        def store(context: LaunchContext, person: LaunchContext) -> None:
            text = request.form.get("text", "").strip()
            if not text:
                raise FormError("Write your feedback before saving it.")
            if len(text) > records.MAX_FEEDBACK_CHARS:
                raise FormError(
                    f"Feedback can be at most {records.MAX_FEEDBACK_CHARS:,} characters; yours has {len(text):,}."
                )
            with record(context, plugin) as rec:
                records.add_feedback(rec.about(person), text, context.sub, context.name)
                rec.emit(LearningEvent("commented", FEEDBACK_ACTIVITY))

        return coach_form(store, "feedback")

    @bp.post("/coach/attendance")
    def attendance():
        """Attendance at an event day; marking someone present emits their ``attended`` event."""

        def store(context: LaunchContext, person: LaunchContext) -> None:
            day = _event_day(request.form.get("day", ""))
            status = request.form.get("status", "")
            if status not in (*records.ATTENDANCE_STATES, "not-recorded"):
                raise FormError("Choose attended, absent or not recorded.")
            with record(context, plugin) as rec:
                when = records.read_event_dates(rec).get(day.number)
                if status != "not-recorded":
                    if when is None:
                        raise FormError(f"{day.title} has no date yet: set the event days' dates first.")
                    if when > today():
                        raise FormError(
                            f"{day.title} is on {long_date(when)}: record attendance on or after the day."
                        )
                mine = rec.about(person)
                previous = records.set_attendance(
                    mine, day.number, None if status == "not-recorded" else status, context.sub
                )
                if status == records.ATTENDED and previous != records.ATTENDED:
                    mine.emit(LearningEvent("attended", f"event-day-{day.number}", occurred_at=_on_the_day(when)))

        return coach_form(store, "attendance")

    @bp.post("/coach/start-date")
    def start_date():
        """The coach sets a candidate's start date (the timeline counts from it)."""

        def store(context: LaunchContext, person: LaunchContext) -> None:
            start = _form_date(request.form.get("start", ""), "The start date")
            if start is None:
                raise FormError("Enter the start date.")
            if start > today() + _ONE_YEAR:
                raise FormError("The start date can be at most a year from today.")
            with record(person, plugin) as rec:
                records.save_start(rec, start, records.START_COACH)

        return coach_form(store, "start")

    @bp.post("/coach/event-dates")
    def event_dates():
        """The course's event day dates (empty: not set yet)."""
        context, response = launched(*COACH_ROLES)
        if context is None:
            return response
        try:
            dates = {
                day.number: _form_date(request.form.get(f"day-{day.number}", ""), day.title)
                for day in rules.event_days
            }
        except FormError as error:
            return coach_page(context, 400, error=str(error), error_field="event-dates")
        with record(context, plugin) as rec:
            records.save_event_dates(rec, dates)
        return done("programme.coach", context, "event-dates", _anchor="event-dates")

    def _event_day(value: str) -> EventDay:
        day = rules.event_day(int(value)) if value.isdigit() else None
        if day is None:
            raise FormError("Choose one of the programme's event days.")
        return day

    return bp


@dataclass(frozen=True)
class _Person:
    """A roster-like member (sub and display name) for a candidate found outside the roster."""

    sub: str
    display_name: str


_ONE_YEAR = date(2001, 1, 1) - date(2000, 1, 1)


def _form_date(value: str, label: str) -> date | None:
    """A date from a date field (YYYY-MM-DD); empty is None; anything else a FormError naming ``label``."""
    value = value.strip()
    if not value:
        return None
    try:
        parsed = date.fromisoformat(value)
    except ValueError:
        raise FormError(f"{label}: enter a date as year-month-day, for example 2027-03-14.") from None
    if not 2000 <= parsed.year <= 2100:
        raise FormError(f"{label}: enter a date between the years 2000 and 2100.")
    return parsed


def _on_the_day(when: date) -> datetime:
    """When an attendance happened: midday (UTC) of the event day, or now if that is still ahead."""
    return min(datetime.combine(when, time(12, 0), UTC), datetime.now(UTC))
