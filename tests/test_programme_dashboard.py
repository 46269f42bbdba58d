"""The programme dashboard and the coach view over real HTTP, launched from a test platform with NRPS.

Candidates and coaches sign in through the platform (real RS256 id_tokens), the coach view
reads the course roster over NRPS, and what the pages store is read back from the database.
"""

from __future__ import annotations

import html
import re
from datetime import UTC, date, datetime, timedelta

import pytest
import requests
from sqlalchemy import func, select

from lti_tool.models import LearningEventRow, OutboxMessage, PluginRecord, User
from lti_tool.worker import Worker
from plugins.programme.timeline import add_months
from xapi import vocabulary
from xapi.lrs.auth import create_key

from .browser import Browser
from .modules_harness import GOOD, Learner, install_packs, uninstall_packs
from .nrps_platform import NrpsPlatform
from .platform_emulator import ADMIN, INSTRUCTOR, LEARNER, LaunchSpec

DASHBOARD = {"npqsl_plugin": "programme", "npqsl_activity": "dashboard"}
COURSE_A = {"id": "course-1", "title": "NPQSL Cohort 2026"}
COURSE_B = {"id": "course-2", "title": "NPQSL Cohort 2027"}
ASSESSOR = "urn:npqsl-lti:role:Assessor"
ESSENTIALS = ("succeeding-in-senior-leadership", "closing-the-gap")
ELECTIVES = ("improving-the-quality-of-teaching", "leading-change-for-improvement")


@pytest.fixture
def platform():
    server = NrpsPlatform(page_size=50).start()
    server.course_titles["course-2"] = COURSE_B["title"]
    server.add_member("coach-1", [INSTRUCTOR], name="Chris Coach")
    server.add_member("cand-1", [LEARNER], name="Alex Candidate")
    server.add_member("cand-2", [LEARNER], name="Bea Candidate")
    server.add_member("coach-2", [INSTRUCTOR], name="Dana Coach", context_id="course-2")
    server.add_member("cand-9", [LEARNER], name="Zed Elsewhere", context_id="course-2")
    yield server
    server.stop()


@pytest.fixture
def server(make_tool, platform):
    tool = make_tool()
    tool.register(platform)
    return tool


class Person:
    """One person's browser, launched into the programme dashboard of a course."""

    def __init__(self, server, platform, sub, roles, name, course=COURSE_A, custom=DASHBOARD):
        self.server = server
        self.browser = Browser()
        spec = LaunchSpec(sub=sub, roles=roles, name=name, context=course, custom=custom)
        self.page = self.browser.launch(server, platform, spec)
        match = re.search(r'[?&]launch=([^"&#]+)', self.page.text)
        assert match, self.page.text[:2000]
        self.token = html.unescape(match.group(1))

    def get(self, path: str, **params):
        return self.browser.get(
            self.server.base_url + "/p/programme" + path, params={"launch": self.token, **params}
        )

    def post(self, path: str, data: dict | list):
        pairs = list(data.items()) if isinstance(data, dict) else list(data)
        return self.browser.post(
            self.server.base_url + "/p/programme" + path, data=[("launch", self.token), *pairs]
        )


def candidate(server, platform, sub="cand-1", name="Alex Candidate", **kwargs) -> Person:
    return Person(server, platform, sub, [LEARNER], name, **kwargs)


def coach(server, platform, sub="coach-1", name="Chris Coach", **kwargs) -> Person:
    return Person(server, platform, sub, [INSTRUCTOR], name, **kwargs)


def records_of(server, sub: str, name: str) -> list[dict]:
    with server.db.sessions() as session:
        rows = session.scalars(
            select(PluginRecord)
            .join(User, User.id == PluginRecord.user_id)
            .where(PluginRecord.plugin_key == "programme", PluginRecord.name == name, User.sub == sub)
        ).all()
        return [dict(row.data) for row in rows]


def events(server, kind: str) -> list[tuple[str, LearningEventRow]]:
    with server.db.sessions() as session:
        rows = session.execute(
            select(User.sub, LearningEventRow)
            .join(User, User.id == LearningEventRow.user_id)
            .where(LearningEventRow.kind == kind, LearningEventRow.plugin_key == "programme")
        ).all()
        session.expunge_all()
        return list(rows)


def count(server, model) -> int:
    with server.db.sessions() as session:
        return session.scalar(select(func.count()).select_from(model))


def long_date(value: date) -> str:
    return f"{value.day} {value:%B %Y}"


# -- the candidate's dashboard --------------------------------------------------------------------
def test_a_candidate_launch_opens_their_dashboard_with_the_rule_timeline_events_and_assessment(server, platform):
    alex = candidate(server, platform)
    page = alex.page.text
    assert alex.page.status_code == 200 and alex.page.url.startswith(server.base_url + "/p/programme/")
    assert "Your programme dashboard</h1>" in page
    # The two essentials are listed and not started; no elective is chosen yet, and the page says so.
    for key in ESSENTIALS:
        assert f'data-module="{key}" data-state="not-started"' in page
    assert "data-no-electives" in page
    assert (
        'data-warning="electives_not_chosen"' in page
        and "2 electives must be chosen to complete the qualification; 0 chosen so far." in page
    )
    assert "0 of 4 modules completed." in page
    # Every installed elective is offered as a checkbox.
    for key in ELECTIVES:
        assert f'name="elective" value="{key}" id="elective-{key}"' in page
    # The timeline starts at the first launch: today, with the target 18 months on.
    today = datetime.now(UTC).date()
    assert f"<dd data-start>{long_date(today)} (first opened the programme)</dd>" in page
    assert f"<dd data-target>{long_date(add_months(today, 18))}</dd>" in page
    assert "<dd data-elapsed>0 of 18</dd>" in page
    assert "<dd data-remaining>18 months</dd>" in page
    # Three event days, no dates yet; the final assessment is honestly not available.
    assert page.count("Date to be confirmed by your coach") == 3
    assert "Status: not yet available." in page
    assert "data-no-feedback" in page
    # The header link to the dashboard is marked as the current page.
    assert 'data-programme-link aria-current="page">Your programme dashboard</a>' in page
    assert records_of(server, "cand-1", "start")[0]["source"] == "first-launch"


def test_the_start_date_is_the_first_appearance_in_the_course_and_then_stays(server, platform):
    candidate(server, platform)
    first = records_of(server, "cand-1", "start")
    candidate(server, platform).get("/")
    assert records_of(server, "cand-1", "start") == first  # a second visit keeps the first date


def test_choosing_two_electives_is_stored_and_completes_the_plan(server, platform):
    alex = candidate(server, platform)
    saved = alex.post("/electives", [("elective", ELECTIVES[0]), ("elective", ELECTIVES[1])])
    assert saved.status_code == 200 and saved.history[0].status_code == 303
    assert "Your electives are saved." in saved.text
    assert records_of(server, "cand-1", "electives")[0]["keys"] == list(ELECTIVES)
    assert "data-plan-warnings" not in saved.text
    for key in ELECTIVES:
        assert f'value="{key}" id="elective-{key}" aria-describedby="elective-{key}-hint" checked' in saved.text
        assert f'data-module="{key}" data-state="not-started"' in saved.text


def test_one_elective_is_kept_with_a_warning_that_a_second_is_needed(server, platform):
    alex = candidate(server, platform)
    saved = alex.post("/electives", {"elective": ELECTIVES[1]})
    assert saved.status_code == 200
    assert 'data-warning="electives_not_chosen"' in saved.text and "1 chosen so far." in saved.text


@pytest.mark.parametrize(
    ("choice", "message"),
    [
        ([*ELECTIVES, ELECTIVES[0]], "Choose each elective only once."),
        ([], "Choose at least one elective."),
        (["closing-the-gap"], "is not one of the electives offered here."),
        (["underwater-basket-weaving"], "is not one of the electives offered here."),
    ],
    ids=["repeated", "none", "an-essential", "unknown"],
)
def test_a_choice_the_rules_refuse_is_explained_and_stores_nothing(server, platform, choice, message):
    alex = candidate(server, platform)
    alex.post("/electives", {"elective": ELECTIVES[0]})
    before = records_of(server, "cand-1", "electives")
    refused = alex.post("/electives", [("elective", key) for key in choice])
    assert refused.status_code == 400
    assert "Nothing was saved" in refused.text and message in html.unescape(refused.text)
    assert records_of(server, "cand-1", "electives") == before


def test_an_elective_that_is_no_longer_installed_is_flagged(server, platform):
    alex = candidate(server, platform)
    context = _context(server, alex)
    with server.app.app_context(), server.tool.events.record(context, "programme") as rec:
        # What the record holds after a provider removed a pack the candidate had chosen.
        rec.save("programme", "electives", {"keys": [ELECTIVES[0], "retired-elective"]})
    page = alex.get("/").text
    assert 'data-warning="elective_not_installed"' in page
    assert "retired-elective" in page and 'data-state="not-installed"' in page


def _context(server, person: Person):
    from lti_tool import launch as launches

    return launches.load(server.db, server.tool.launch_tokens.read(person.token))


# -- the coach view -----------------------------------------------------------------------------------
def test_the_coach_view_lists_the_courses_candidates_from_the_roster(server, platform):
    candidate(server, platform).post("/electives", [("elective", k) for k in ELECTIVES])
    chris = coach(server, platform)
    page = chris.page.text
    assert chris.page.status_code == 200 and "Your candidates</h1>" in page
    listed = re.findall(r'data-candidate="([^"]+)"', page)
    assert listed == ["cand-1", "cand-2"]  # from the VLE's roster, candidates only, this course only
    assert "Alex Candidate</a>" in page and "Bea Candidate</a>" in page
    assert "Zed Elsewhere" not in page
    alex_card = page[page.index('data-candidate="cand-1"') : page.index('data-candidate="cand-2"')]
    assert "Improving the Quality of Teaching" in alex_card and "Can complete" in alex_card
    assert "Month 1 of 18" in alex_card  # Alex opened the programme today
    bea_card = page[page.index('data-candidate="cand-2"') :]
    assert "Not chosen yet" in bea_card and "Not started" in bea_card
    assert 'data-programme-link aria-current="page">Your candidates&#39; progress</a>' in page


def test_an_administrator_sees_the_coach_view_too(server, platform):
    admin = Person(server, platform, "admin-1", [ADMIN, INSTRUCTOR], "Ada Admin")
    assert "Your candidates</h1>" in admin.page.text


def test_the_coach_view_says_when_the_vle_does_not_share_its_roster(server, platform):
    platform.nrps_enabled = False
    page = coach(server, platform).page
    assert page.status_code == 200
    assert "data-roster-error" in page.text and "data-candidate=" not in page.text


def test_coach_feedback_is_shown_on_the_candidates_dashboard_with_a_commented_event(server, platform):
    alex = candidate(server, platform)
    chris = coach(server, platform)
    saved = chris.post(
        "/coach/feedback", {"sub": "cand-1", "text": "Strong start on the gap analysis.\nKeep going."}
    )
    assert saved.status_code == 200 and saved.history[0].status_code == 303
    assert "The candidate sees it on their dashboard." in saved.text
    page = alex.get("/").text
    assert "Strong start on the gap analysis.\nKeep going." in page
    assert "Chris Coach, " in page and "data-no-feedback" not in page
    # Bea sees none of it.
    assert "Strong start" not in candidate(server, platform, "cand-2", "Bea Candidate").page.text
    [(who, event)] = events(server, "commented")
    assert who == "coach-1" and event.activity == "feedback"


def test_empty_or_overlong_feedback_is_refused_and_stores_nothing(server, platform):
    chris = coach(server, platform)
    for text, message in (
        ("   ", "Write your feedback before saving it."),
        ("x" * 5001, "at most 5,000 characters"),
    ):
        refused = chris.post("/coach/feedback", {"sub": "cand-1", "text": text})
        assert refused.status_code == 400 and message in refused.text
    assert records_of(server, "cand-1", "feedback") == [] and events(server, "commented") == []


def set_event_dates(chris: Person, *dates: date | None):
    return chris.post(
        "/coach/event-dates", {f"day-{n}": d.isoformat() if d else "" for n, d in enumerate(dates, start=1)}
    )


def test_recording_attendance_emits_the_candidates_attended_event_and_an_outbox_row(server, platform):
    alex = candidate(server, platform)
    chris = coach(server, platform)
    day_one = datetime.now(UTC).date() - timedelta(days=7)
    assert set_event_dates(chris, day_one, None, None).status_code == 200
    saved = chris.post("/coach/attendance", {"sub": "cand-1", "day": "1", "status": "attended"})
    assert saved.status_code == 200 and "Attendance is saved." in saved.text
    [(who, event)] = events(server, "attended")
    alex_context = _context(server, alex)
    assert who == "cand-1" and event.activity == "event-day-1"
    assert (event.platform_id, event.course_id) == (alex_context.platform_pk, alex_context.course_pk)
    assert event.occurred_at.date() == day_one
    with server.db.sessions() as session:
        receivers = set(session.scalars(select(OutboxMessage.receiver).where(OutboxMessage.event_id == event.id)))
    assert receivers == {"lrs"}  # a statement for the learning record store, no grade
    # The worker delivers it: an xAPI "attended" statement whose actor is the candidate.
    Worker(server.app).drain()
    response = requests.get(
        server.base_url + "/xapi/statements",
        params={"statementId": vocabulary.statement_id(event.id)},
        auth=create_key(server.db, "read"),
        headers={"X-Experience-API-Version": "1.0.3"},
        timeout=10,
    )
    statement = response.json()
    assert statement["verb"]["id"] == "http://adlnet.gov/expapi/verbs/attended"
    assert statement["actor"]["account"] == {"homePage": platform.issuer, "name": "cand-1"}
    # Saying it again sends nothing more; the candidate sees it on their dashboard.
    chris.post("/coach/attendance", {"sub": "cand-1", "day": "1", "status": "attended"})
    assert len(events(server, "attended")) == 1
    page = alex.get("/").text
    assert re.search(r'data-event-day="1">.*?You attended', page, re.S)
    assert long_date(day_one) in page


def test_attendance_needs_a_past_event_date(server, platform):
    candidate(server, platform)
    chris = coach(server, platform)
    no_date = chris.post("/coach/attendance", {"sub": "cand-1", "day": "2", "status": "attended"})
    assert no_date.status_code == 400 and "has no date yet" in no_date.text
    set_event_dates(chris, None, datetime.now(UTC).date() + timedelta(days=30), None)
    future = chris.post("/coach/attendance", {"sub": "cand-1", "day": "2", "status": "absent"})
    assert future.status_code == 400 and "record attendance on or after the day" in future.text
    bad_day = chris.post("/coach/attendance", {"sub": "cand-1", "day": "7", "status": "attended"})
    assert bad_day.status_code == 400 and "Choose one of the programme" in bad_day.text
    assert records_of(server, "cand-1", "attendance") == [] and events(server, "attended") == []


def test_bad_event_dates_are_refused_naming_the_day(server, platform):
    chris = coach(server, platform)
    refused = chris.post("/coach/event-dates", {"day-1": "2026-02-30", "day-2": "", "day-3": ""})
    assert (
        refused.status_code == 400 and "Event day 1: leading across the whole school: enter a date" in refused.text
    )
    with server.db.sessions() as session:
        assert (
            session.scalar(
                select(func.count()).select_from(PluginRecord).where(PluginRecord.name == "event-dates")
            )
            == 0
        )


def test_a_coach_set_start_date_drives_the_timeline_and_its_overdue_warning(server, platform):
    alex = candidate(server, platform)
    chris = coach(server, platform)
    saved = chris.post("/coach/start-date", {"sub": "cand-1", "start": "2020-01-31"})
    assert saved.status_code == 200 and "The start date is saved." in saved.text
    page = alex.get("/").text
    assert "<dd data-start>31 January 2020 (set by your coach)</dd>" in page
    assert "<dd data-target>31 July 2021</dd>" in page
    assert "<dd data-elapsed>18 of 18</dd>" in page
    assert 'data-timeline-warning="overdue"' in page and "has passed" in page
    refused = chris.post("/coach/start-date", {"sub": "cand-1", "start": "31/01/2020"})
    assert refused.status_code == 400 and "enter a date as year-month-day" in refused.text
    assert records_of(server, "cand-1", "start")[0]["date"] == "2020-01-31"


def test_a_roster_candidate_who_never_launched_can_be_given_feedback(server, platform):
    chris = coach(server, platform)
    page = chris.get("/coach/candidate", sub="cand-2")
    assert page.status_code == 200 and "Bea Candidate</h1>" in page.text
    chris.post("/coach/feedback", {"sub": "cand-2", "text": "Welcome to the programme."})
    assert "Welcome to the programme." in candidate(server, platform, "cand-2", "Bea Candidate").page.text


# -- who may see what ------------------------------------------------------------------------------------
def test_a_candidate_cannot_open_the_coach_view_or_anyone_elses_programme(server, platform):
    alex = candidate(server, platform)
    for response in (
        alex.get("/coach"),
        alex.get("/coach/candidate", sub="cand-2"),
        alex.post("/coach/feedback", {"sub": "cand-2", "text": "I can write this"}),
        alex.post("/coach/attendance", {"sub": "cand-1", "day": "1", "status": "attended"}),
        alex.post("/coach/start-date", {"sub": "cand-1", "start": "2020-01-01"}),
        alex.post("/coach/event-dates", {"day-1": "2020-01-01"}),
    ):
        assert response.status_code == 403
        assert "The coach view is for coaches." in response.text
    assert records_of(server, "cand-2", "feedback") == [] and records_of(server, "cand-1", "attendance") == []
    # The dashboard shows only the launching candidate, whatever is asked for.
    assert "Bea Candidate" not in alex.get("/", sub="cand-2").text


def test_a_coach_sees_only_their_own_courses_candidates(server, platform):
    candidate(server, platform, "cand-9", "Zed Elsewhere", course=COURSE_B)
    chris = coach(server, platform)
    for response in (
        chris.get("/coach/candidate", sub="cand-9"),
        chris.post("/coach/feedback", {"sub": "cand-9", "text": "Not my candidate"}),
        chris.post("/coach/start-date", {"sub": "cand-9", "start": "2020-01-01"}),
    ):
        assert response.status_code == 404 and "not a candidate in this course" in response.text
    assert records_of(server, "cand-9", "feedback") == []
    # A coach is not a candidate either.
    assert chris.get("/coach/candidate", sub="coach-1").status_code == 404
    # Course B's coach sees course B's candidate, and not course A's.
    dana = coach(server, platform, "coach-2", "Dana Coach", course=COURSE_B)
    assert re.findall(r'data-candidate="([^"]+)"', dana.page.text) == ["cand-9"]
    assert dana.get("/coach/candidate", sub="cand-1").status_code == 404


def test_an_assessor_is_not_admitted_and_gets_no_dashboard_link(server, platform):
    ash = Browser().launch(server, platform, LaunchSpec(sub="ash", roles=[ASSESSOR], custom=DASHBOARD))
    assert ash.status_code == 403
    landing = Browser().launch(server, platform, LaunchSpec(sub="ash", roles=[ASSESSOR]))
    assert landing.status_code == 200 and "data-programme-link" not in landing.text


def test_every_launch_in_a_course_links_to_the_dashboard(server, platform):
    landing = Browser().launch(server, platform, LaunchSpec(sub="cand-1", roles=[LEARNER]))
    link = re.search(r'<a href="([^"]+)" data-programme-link>Your programme dashboard</a>', landing.text)
    assert link, landing.text[:1500]
    followed = Browser().get(server.base_url + html.unescape(link.group(1)))
    assert followed.status_code == 200 and "Your programme dashboard</h1>" in followed.text
    no_course = Browser().launch(server, platform, LaunchSpec(sub="cand-1", roles=[LEARNER], context=None))
    assert no_course.status_code == 200 and "data-programme-link" not in no_course.text


def test_a_request_without_a_valid_launch_is_refused(server, platform):
    response = Browser().get(server.base_url + "/p/programme/", params={"launch": "forged"})
    assert response.status_code == 401
    assert count(server, PluginRecord) == 0


# -- with the module engine: progress and shared reflections --------------------------------------------
@pytest.fixture
def with_test_packs(tmp_path):
    install_packs(tmp_path / "site", GOOD)
    yield
    uninstall_packs(tmp_path / "site")


def test_module_progress_and_shared_reflections_reach_the_dashboard_and_the_coach(
    with_test_packs, make_tool, platform
):
    server = make_tool()
    server.register(platform)
    # Alex completes the lenient elective through the module engine, and shares one reflection.
    sam = Learner(server, platform, module="test-lenient", sub="cand-1")
    sam.visit("only-unit")
    sam.answer("only-unit", "half", {"a": [0], "b": [0]})
    alex = Learner(server, platform, module="test-basics", sub="cand-1")
    alex.visit("first-steps")
    alex.reflect("first-steps", "why", "To see the dashboard work.", version=0)
    alex.post("first-steps/reflections/why/share", {"shared": "1"})

    dashboard = candidate(server, platform)
    dashboard.post("/electives", [("elective", "test-lenient"), ("elective", ELECTIVES[0])])
    page = dashboard.get("/").text
    assert 'data-module="test-lenient" data-state="completed"' in page and "score 50" in page
    assert 'data-module="test-basics" data-state="in-progress"' in page and "(1 of 2 units visited)" in page
    assert "1 of 5 modules completed." in page  # three essentials installed here, plus two electives

    chris = coach(server, platform)
    card = chris.page.text[chris.page.text.index('data-candidate="cand-1"') :]
    assert "1 of 5 completed" in card[: card.index("</li>")]
    detail = chris.get("/coach/candidate", sub="cand-1").text
    assert 'data-module="test-lenient" data-state="completed"' in detail
    assert "To see the dashboard work." in detail and "Why are you testing this?" in detail
    # Bea shared nothing.
    assert "data-no-reflections" in chris.get("/coach/candidate", sub="cand-2").text


def test_module_pages_link_to_the_dashboard_too(with_test_packs, make_tool, platform):
    server = make_tool()
    server.register(platform)
    alex = Learner(server, platform, module="test-basics", sub="cand-1")
    for page in (alex.page, alex.visit("first-steps")):
        link = re.search(r'<a href="([^"]+)" data-programme-link>Your programme dashboard</a>', page.text)
        assert link, page.text[:1500]
    followed = alex.browser.get(server.base_url + html.unescape(link.group(1)))
    assert "Your programme dashboard</h1>" in followed.text
    assert 'data-module="test-basics" data-state="in-progress"' in followed.text
