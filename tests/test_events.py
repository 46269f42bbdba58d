"""Learning events: state, events and outbox rows commit together or not at all."""

from __future__ import annotations

import re
from datetime import datetime

import pytest
from sqlalchemy import func, select

from lti_tool.events import EventError, LearningEvent, Result, StateConflict
from lti_tool.models import LearningEventRow, OutboxMessage, PluginRecord

from . import plugin_install
from .platform_emulator import LaunchSpec, TestPlatform


class GradebookReceiver:
    """Wants only scored events, like the AGS receiver."""

    name = "ags"

    def wants(self, event):
        return bool(event.result and event.result.get("score_raw") is not None)


class EverythingReceiver:
    name = "xapi"

    def wants(self, event):
        return True


@pytest.fixture
def launched(make_tool, tmp_path):
    plugin_install.install(tmp_path / "site", {"example-reflection": "npqsl_example_plugin:plugin"})
    platform = TestPlatform().start()
    server = make_tool()
    server.register(platform)
    server.tool.events.receivers[:] = [EverythingReceiver(), GradebookReceiver()]
    yield server, platform
    platform.stop()
    plugin_install.uninstall(tmp_path / "site")


def counts(server) -> tuple[int, int, int]:
    with server.db.sessions() as session:
        return tuple(
            session.scalar(select(func.count()).select_from(model))
            for model in (LearningEventRow, OutboxMessage, PluginRecord)
        )


def context_of(server, browser, platform, sub="cand-1"):
    spec = LaunchSpec(sub=sub, custom={"npqsl_plugin": "example-reflection", "npqsl_activity": "quiz"})
    page = browser.launch(server, platform, spec)
    assert page.status_code == 200, page.text
    token = re.search(r"data-launch>([^<]+)<", page.text).group(1)
    from lti_tool import launch as launches

    return launches.load(server.db, server.tool.launch_tokens.read(token)), token


def test_a_launch_records_a_launched_event_with_one_outbox_row_per_interested_receiver(launched, browser):
    server, platform = launched
    before = counts(server)
    context_of(server, browser, platform)
    events, outbox, _ = (a - b for a, b in zip(counts(server), before, strict=True))
    assert (events, outbox) == (1, 1)  # launched: xapi wants it, the gradebook does not
    with server.db.sessions() as session:
        row = session.scalars(select(OutboxMessage).order_by(OutboxMessage.id.desc())).first()
        assert row.receiver == "xapi" and row.status == "pending" and row.attempts == 0


def test_a_score_posted_by_the_plugin_commits_state_event_and_both_deliveries(launched, browser):
    server, platform = launched
    context, token = context_of(server, browser, platform)
    before = counts(server)
    response = browser.post(server.base_url + "/p/example-reflection/score", data={"launch": token, "score": "7"})
    assert response.status_code == 200
    assert tuple(a - b for a, b in zip(counts(server), before, strict=True)) == (1, 2, 1)
    with server.db.sessions() as session:
        event = session.scalars(select(LearningEventRow).where(LearningEventRow.kind == "scored")).one()
        assert event.result["score_raw"] == 7 and event.result["score_max"] == 10
        assert event.user_id == context.user_pk and event.platform_id == context.platform_pk
        keys = {
            m.receiver: m.ordering_key
            for m in session.scalars(select(OutboxMessage).where(OutboxMessage.event_id == event.id))
        }
        assert keys["ags"] == f"ags:{context.platform_pk}:{context.user_pk}:example-reflection:quiz"


def test_an_error_inside_the_recording_stores_nothing(launched, browser):
    server, platform = launched
    context, _ = context_of(server, browser, platform)
    before = counts(server)
    with pytest.raises(RuntimeError), server.app.app_context():
        with server.tool.events.record(context, "example-reflection") as rec:
            rec.save("quiz", "attempts", {"last": 3})
            rec.emit(LearningEvent("scored", "quiz", Result(score_raw=3, score_max=10)))
            raise RuntimeError("the plugin failed after emitting")
    assert counts(server) == before


@pytest.mark.parametrize(
    ("event", "message"),
    [
        (LearningEvent("teleported", "quiz"), "kind 'teleported'"),
        (LearningEvent("scored", ""), "activity must be"),
        (LearningEvent("scored", "quiz", Result(score_raw=11, score_max=10)), "between score_min and score_max"),
        (LearningEvent("scored", "quiz", Result(score_raw=1)), "go together"),
        (LearningEvent("scored", "quiz", Result(score_raw=float("nan"), score_max=10)), "finite number"),
        (LearningEvent("scored", "quiz", Result(score_raw=0, score_min=5, score_max=5)), "greater than"),
        (LearningEvent("completed", "quiz", Result(duration_seconds=-1)), "must not be negative"),
        (LearningEvent("completed", "quiz", occurred_at=datetime(2026, 1, 1)), "timezone-aware"),
    ],
    ids=[
        "kind",
        "activity",
        "raw-over-max",
        "raw-without-max",
        "nan",
        "max-not-above-min",
        "negative-duration",
        "naive-time",
    ],
)
def test_invalid_events_are_refused_and_nothing_is_stored(launched, browser, event, message):
    server, platform = launched
    context, _ = context_of(server, browser, platform)
    before = counts(server)
    with pytest.raises(EventError, match=message):
        with server.tool.events.record(context, "example-reflection") as rec:
            rec.save("quiz", "attempts", {"last": 1})
            rec.emit(event)
    assert counts(server) == before


def test_a_stale_save_is_refused_with_the_current_version(launched, browser):
    server, platform = launched
    context, _ = context_of(server, browser, platform)
    with server.tool.events.record(context, "example-reflection") as rec:
        assert rec.save("journal", "draft", {"text": "first"}, expected_version=0) == 1
    with server.tool.events.record(context, "example-reflection") as rec:
        assert rec.save("journal", "draft", {"text": "second"}, expected_version=1) == 2
    with pytest.raises(StateConflict) as conflict:
        with server.tool.events.record(context, "example-reflection") as rec:
            rec.save("journal", "draft", {"text": "from an old tab"}, expected_version=1)
    assert conflict.value.current_version == 2
    with server.tool.events.record(context, "example-reflection") as rec:
        assert rec.load("journal", "draft") == ({"text": "second"}, 2)


def test_records_are_per_person(launched, browser):
    server, platform = launched
    alice, _ = context_of(server, browser, platform, sub="alice")
    bob, _ = context_of(server, browser, platform, sub="bob")
    with server.tool.events.record(alice, "example-reflection") as rec:
        rec.save("journal", "draft", {"text": "alice's"})
    with server.tool.events.record(bob, "example-reflection") as rec:
        assert rec.load("journal", "draft") == (None, 0)
