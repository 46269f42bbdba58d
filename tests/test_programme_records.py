"""Records and events about another member of a course (lti_tool.plugin_records), on real launches.

Two platforms share course and user ids on purpose: nothing may cross from one to the other.
"""

from __future__ import annotations

import html
import re

import pytest
from sqlalchemy import func, select

from lti_tool import launch as launches
from lti_tool.events import LearningEvent
from lti_tool.models import LearningEventRow, PluginRecord, User
from lti_tool.plugin_records import NotInCourse, course_records, first_seen, member_context
from plugins.contract import CANDIDATE, COACH, roster

from .browser import Browser
from .nrps_platform import NrpsPlatform
from .platform_emulator import INSTRUCTOR, LEARNER, LaunchSpec

COURSE_A = {"id": "course-1", "title": "NPQSL Cohort 2026"}
COURSE_B = {"id": "course-2", "title": "NPQSL Cohort 2027"}


@pytest.fixture
def platforms():
    first, second = NrpsPlatform(page_size=50).start(), NrpsPlatform(client_id="other-client").start()
    for platform in (first, second):
        platform.add_member("coach-1", [INSTRUCTOR], name="Chris Coach")
        platform.add_member("cand-1", [LEARNER], name="Alex Candidate")
        platform.add_member("cand-2", [LEARNER], name="Bea Candidate")
    yield first, second
    first.stop()
    second.stop()


@pytest.fixture
def server(make_tool, platforms):
    tool = make_tool()
    for platform in platforms:
        tool.register(platform)
    return tool


def launch(server, platform, sub, roles=(LEARNER,), course=COURSE_A):
    page = Browser().launch(server, platform, LaunchSpec(sub=sub, roles=list(roles), context=course))
    assert page.status_code == 200, page.text[:500]
    token = html.unescape(re.search(r'href="/lti/activity\?launch=([^"]+)"', page.text).group(1))
    return launches.load(server.db, server.tool.launch_tokens.read(token))


def users(server) -> int:
    with server.db.sessions() as session:
        return session.scalar(select(func.count()).select_from(User))


def test_a_member_seen_in_the_course_gets_their_own_context_in_the_coachs_course(server, platforms):
    first, _ = platforms
    alex = launch(server, first, "cand-1")
    coach = launch(server, first, "coach-1", [INSTRUCTOR])
    theirs = member_context(server.db, coach, "cand-1")
    assert (theirs.user_pk, theirs.sub, theirs.role) == (alex.user_pk, "cand-1", CANDIDATE)
    assert (theirs.platform_pk, theirs.course_pk, theirs.resource_link_pk) == (
        coach.platform_pk,
        coach.course_pk,
        coach.resource_link_pk,
    )


def test_events_and_records_through_it_belong_to_the_member_and_commit_with_the_coachs(server, platforms):
    first, _ = platforms
    alex = launch(server, first, "cand-1")
    coach = launch(server, first, "coach-1", [INSTRUCTOR])
    with server.app.app_context(), server.tool.events.record(coach, "programme") as rec:
        rec.about(member_context(server.db, coach, "cand-1")).save("programme", "feedback", {"text": "Well done"})
        rec.emit(LearningEvent("commented", "feedback"))
    with server.app.app_context(), server.tool.events.record(alex, "programme") as rec:
        assert rec.load("programme", "feedback") == ({"text": "Well done"}, 1)
    with server.db.sessions() as session:
        event = session.scalars(select(LearningEventRow).where(LearningEventRow.kind == "commented")).one()
        assert event.user_id == coach.user_pk
    # Nothing of it commits when the block fails.
    with pytest.raises(RuntimeError), server.app.app_context():
        with server.tool.events.record(coach, "programme") as rec:
            rec.about(member_context(server.db, coach, "cand-1")).save("programme", "feedback", {"text": "Lost"})
            raise RuntimeError("the coach's part failed")
    with server.app.app_context(), server.tool.events.record(alex, "programme") as rec:
        assert rec.load("programme", "feedback")[0] == {"text": "Well done"}


def test_a_roster_member_who_never_launched_gets_a_user_row_only_with_the_roster(server, platforms):
    first, _ = platforms
    coach = launch(server, first, "coach-1", [INSTRUCTOR])
    before = users(server)
    with pytest.raises(NotInCourse):
        member_context(server.db, coach, "cand-2")
    assert users(server) == before
    with server.app.test_request_context():
        members = roster(coach)
    bea = member_context(server.db, coach, "cand-2", roster=members)
    assert bea.role == CANDIDATE and users(server) == before + 1
    assert member_context(server.db, coach, "cand-2", roster=members).user_pk == bea.user_pk


def test_nobody_crosses_courses_or_platforms(server, platforms):
    first, second = platforms
    launch(server, first, "cand-1", course=COURSE_B)  # Alex is in course B on the first platform
    launch(server, second, "cand-1")  # and someone with the same id in course A on the second
    coach_a = launch(server, first, "coach-1", [INSTRUCTOR])
    with pytest.raises(NotInCourse):
        member_context(server.db, coach_a, "cand-1")
    # The other platform's roster does not vouch for anyone here either.
    coach_other = launch(server, second, "coach-1", [INSTRUCTOR])
    with server.app.test_request_context():
        other_roster = roster(coach_other)
    with pytest.raises(NotInCourse):
        member_context(server.db, coach_a, "cand-1", roster=other_roster)
    assert member_context(server.db, coach_other, "cand-1").platform_pk == coach_other.platform_pk


def test_a_coach_is_found_with_their_own_role(server, platforms):
    first, _ = platforms
    launch(server, first, "coach-1", [INSTRUCTOR])
    alex = launch(server, first, "cand-1")
    assert member_context(server.db, alex, "coach-1").role == COACH


def test_course_records_and_first_seen_stay_in_one_course(server, platforms):
    first, second = platforms
    alex = launch(server, first, "cand-1")
    bea = launch(server, first, "cand-2")
    elsewhere = launch(server, first, "cand-1", course=COURSE_B)
    other_platform = launch(server, second, "cand-1")
    with server.app.app_context():
        for context, text in (
            (alex, "A"),
            (bea, "B"),
            (elsewhere, "other course"),
            (other_platform, "other tenant"),
        ):
            with server.tool.events.record(context, "programme") as rec:
                rec.save("programme", "electives", {"keys": [text]})
                rec.save("programme", "start", {"date": "2026-01-01"})
                rec.save("programme", "event-dates", {"dates": {}}, per_person=False)
    scope = {"platform_pk": alex.platform_pk, "course_pk": alex.course_pk, "plugin_key": "programme"}
    found = course_records(server.db, **scope, names=["electives"])
    assert sorted((r.sub, r.data["keys"][0]) for r in found) == [("cand-1", "A"), ("cand-2", "B")]
    assert [r.name for r in course_records(server.db, **scope, sub="cand-2")] == ["electives", "start"]
    assert {r.name for r in course_records(server.db, **scope, name_prefix="elec")} == {"electives"}
    assert course_records(server.db, **scope, name_prefix="%") == []  # a prefix, not a pattern
    assert course_records(server.db, **{**scope, "course_pk": None}) == []
    seen = first_seen(server.db, alex)
    assert set(seen) == {"cand-1", "cand-2"} and set(first_seen(server.db, alex, "cand-2")) == {"cand-2"}
    with server.db.sessions() as session:
        course_level = session.scalars(select(PluginRecord).where(PluginRecord.name == "event-dates")).all()
        assert all(row.user_id is None for row in course_level) and len(course_level) == 3
