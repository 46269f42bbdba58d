"""Completion rules, the events and score they produce, the gradebook, and the progress API's role checks."""

from __future__ import annotations

import pytest

from lti_tool.worker import Worker
from plugins.modules import progress

from .modules_harness import GOOD, Learner, events, install_packs, uninstall_packs
from .platform_emulator import INSTRUCTOR, TestPlatform


@pytest.fixture
def modules(make_tool, tmp_path):
    install_packs(tmp_path / "site", GOOD)
    platform = TestPlatform().start()
    server = make_tool()
    server.register(platform)
    yield server, platform
    platform.stop()
    uninstall_packs(tmp_path / "site")


def finish_basics(alex: Learner, *, skip_reflection: bool = False) -> None:
    alex.visit("first-steps")
    alex.visit("second-steps")
    alex.reflect("first-steps", "why", "Because", version=0)
    if not skip_reflection:
        alex.reflect("second-steps", "next", "Next", version=0)
    alex.answer("first-steps", "check", {"q1": [0], "q2": [0, 2]})
    alex.answer("second-steps", "check", {"only": [0]})


def mine(server, learner: Learner):
    with server.app.test_request_context():
        return progress.progress_for(learner.context)


def test_the_default_rule_needs_every_unit_reflection_and_check(modules):
    server, platform = modules
    alex = Learner(server, platform)
    finish_basics(alex, skip_reflection=True)
    state = mine(server, alex)["test-basics"]
    assert (state.units_visited, state.reflections_answered, state.checks_passed) == (2, 1, 2)
    assert not state.completed and state.percent == 83  # 5 of 6 things done
    assert events(server, "completed") == []
    page = alex.post("second-steps/reflections/next", {"text": "Now done", "version": "0"})
    assert page.status_code == 200
    state = mine(server, alex)["test-basics"]
    assert state.completed and state.percent == 100 and state.score == 100.0 and state.completed_at
    assert "You completed this module" in alex.get("").text


def test_a_check_below_the_threshold_keeps_the_module_open(modules):
    server, platform = modules
    alex = Learner(server, platform)
    alex.visit("first-steps")
    alex.visit("second-steps")
    alex.reflect("first-steps", "why", "a", version=0)
    alex.reflect("second-steps", "next", "b", version=0)
    alex.answer("second-steps", "check", {"only": [0]})
    alex.answer("first-steps", "check", {"q1": [0], "q2": [0]})  # 50% < 80%
    assert not mine(server, alex)["test-basics"].completed
    alex.answer("first-steps", "check", {"q1": [0], "q2": [0, 2]})
    assert mine(server, alex)["test-basics"].completed


def test_a_pack_rule_can_skip_reflections_and_lower_the_threshold(modules):
    server, platform = modules
    sam = Learner(server, platform, module="test-lenient", sub="sam")
    sam.visit("only-unit")
    sam.answer("only-unit", "half", {"a": [0], "b": [0]})  # half marks
    state = mine(server, sam)["test-lenient"]
    assert state.completed and state.score == 50.0 and state.reflections_answered == 0


def test_completed_is_emitted_once_with_the_score_and_progress_along_the_way(modules):
    server, platform = modules
    alex = Learner(server, platform)
    finish_basics(alex)
    alex.answer("first-steps", "check", {"q1": [0], "q2": [0, 2]})  # again, after completion
    alex.visit("first-steps")
    [completed] = events(server, "completed")
    assert completed.activity == "test-basics" and completed.extensions == {"module": "test-basics"}
    assert completed.result["score_raw"] == 100.0 and completed.result["score_max"] == 100
    assert completed.result["score_min"] == 0 and completed.result["success"] is True
    figures = [e.extensions["progress"] for e in events(server, "progressed")]
    assert figures == sorted(figures) and figures[-1] == 100 and len(figures) == 6


def test_a_better_retake_after_completion_raises_the_module_score(modules):
    server, platform = modules
    sam = Learner(server, platform, module="test-lenient", sub="sam")
    sam.visit("only-unit")
    sam.answer("only-unit", "half", {"a": [0], "b": [0]})
    sam.answer("only-unit", "half", {"a": [0], "b": [1]})
    [scored] = events(server, "scored")
    assert scored.result["score_raw"] == 100.0 and len(events(server, "completed")) == 1
    assert mine(server, sam)["test-lenient"].score == 100.0


def test_the_completed_score_lands_in_the_modules_gradebook_column(modules):
    server, platform = modules
    server.tool.events.receivers[:] = [r for r in server.tool.events.receivers if r.name == "ags"]
    item = platform.add_grade_item(
        "rl-test-lenient", "Testing a Lenient Rule", 100, resource_id="modules:test-lenient", tag="module"
    )
    sam = Learner(server, platform, module="test-lenient", sub="sam")
    sam.visit("only-unit")
    sam.answer("only-unit", "half", {"a": [0], "b": [0]})
    Worker(server.app).drain()
    [column] = [c for c in platform.gradebook() if c["id"] == platform.lineitem_url(item)]
    grade = column["grades"]["sam"]
    assert (grade["score"], grade["maximum"], grade["gradingProgress"]) == (50.0, 100.0, "FullyGraded")
    # Only the module score went to the gradebook: no check attempt, visit or progress event.
    assert [h["scoreGiven"] for h in grade["history"]] == [50]


# -- who may read what ------------------------------------------------------------------------------
def test_a_candidate_sees_only_their_own_progress_and_reflections(modules):
    server, platform = modules
    alex = Learner(server, platform, sub="alex")
    sam = Learner(server, platform, sub="sam")
    alex.reflect("first-steps", "why", "Alex's private thought", version=0)
    alex.post("first-steps/reflections/why/share", {"shared": "1"})
    with server.app.test_request_context():
        with pytest.raises(progress.NotPermitted):
            progress.course_progress(sam.context)
        with pytest.raises(progress.NotPermitted):
            progress.shared_reflections(sam.context, "alex")
        assert progress.progress_for(sam.context)["test-basics"].reflections_answered == 0
        assert [r.text for r in progress.shared_reflections(alex.context, "alex")] == ["Alex's private thought"]


def test_a_coach_sees_their_course_only_and_shared_reflections_only(modules):
    server, platform = modules
    alex = Learner(server, platform, sub="alex")
    alex.visit("first-steps")
    alex.reflect("first-steps", "why", "Shared with my coach", version=0)
    alex.post("first-steps/reflections/why/share", {"shared": "1"})
    alex.reflect("second-steps", "next", "Not shared", version=0)
    elsewhere = Learner(server, platform, sub="kim", context={"id": "course-2", "title": "Another cohort"})
    elsewhere.visit("first-steps")
    coach = Learner(server, platform, sub="coach-1", roles=[INSTRUCTOR])
    assert "previewing this module as coach" in coach.page.text
    other_platform = TestPlatform().start()
    try:
        server.register(other_platform)
        # Same sub and course id on another platform: another tenant, never mixed in.
        twin = Learner(server, other_platform, sub="alex")
        twin.reflect("first-steps", "why", "Twin's text", version=0)
        twin.post("first-steps/reflections/why/share", {"shared": "1"})
        with server.app.test_request_context():
            seen = progress.course_progress(coach.context)
            assert set(seen) == {"alex"}
            assert seen["alex"]["test-basics"].units_visited == 1
            assert seen["alex"]["test-lenient"].units_visited == 0
            shared = progress.shared_reflections(coach.context, "alex")
            assert [(r.module, r.unit, r.reflection, r.text) for r in shared] == [
                ("test-basics", "first-steps", "why", "Shared with my coach")
            ]
            assert progress.shared_reflections(coach.context, "kim") == []
    finally:
        other_platform.stop()


def test_a_coach_previews_without_saving(modules):
    server, platform = modules
    coach = Learner(server, platform, sub="coach-1", roles=[INSTRUCTOR])
    page = coach.visit("first-steps")
    assert "the forms are for candidates" in page.text
    assert coach.reflect("first-steps", "why", "coach text", version=0).status_code == 403
    assert events(server, "experienced") == []


def test_installed_packs_lists_the_modules_essentials_first(modules):
    server, _ = modules
    with server.app.test_request_context():
        packs = {p.key: p for p in progress.installed_packs()}
    assert packs["test-basics"].status == "essential" and packs["test-basics"].unit_count == 2
    assert packs["test-lenient"].estimated_hours == 1
    statuses = [p.status for p in packs.values()]
    assert statuses == sorted(statuses, key=["essential", "elective"].index)
