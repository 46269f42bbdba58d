"""The module engine over real HTTP: launch from the test platform, units, reflections, checks, tasks."""

from __future__ import annotations

import lxml.html
import pytest

from .modules_harness import GOOD, Learner, events, install_packs, uninstall_packs
from .platform_emulator import TestPlatform


@pytest.fixture
def modules(make_tool, tmp_path):
    install_packs(tmp_path / "site", GOOD)
    platform = TestPlatform().start()
    server = make_tool()
    server.register(platform)
    yield server, platform
    platform.stop()
    uninstall_packs(tmp_path / "site")


def text_of(page) -> str:
    return " ".join(lxml.html.fromstring(page.text).text_content().split())


def test_a_launch_shows_the_module_overview_and_records_launched(modules):
    server, platform = modules
    alex = Learner(server, platform)
    assert alex.page.status_code == 200, alex.page.text[:800]
    text = text_of(alex.page)
    assert "Testing the Basics" in text and "0% complete" in text
    assert "First steps" in text and "Second steps" in text
    assert "Strategy and improvement" in text and "Personal drive" in text
    [launched] = events(server, "launched")
    assert launched.activity == "test-basics" and launched.extensions == {"module": "test-basics"}


def test_a_unit_page_shows_content_safely_with_outcomes_reading_tools_and_navigation(modules):
    server, platform = modules
    alex = Learner(server, platform)
    page = alex.visit("first-steps")
    doc = lxml.html.fromstring(page.text)
    assert doc.xpath("//h1/text()") == ["First steps"]
    assert "Name one thing the tests check." in page.text
    # Raw HTML in the Markdown is text; a javascript: link is not a link.
    assert "<script>window.injected" not in page.text and "&lt;script&gt;window.injected" in page.text
    assert not doc.xpath("//a[starts-with(@href, 'javascript')]")
    [safe] = doc.xpath("//div[@class='unit-content']//a")
    assert safe.get("href") == "https://example.org/safe" and safe.get("target") == "_blank"
    assert "Wiliam, D. (2011)" in page.text
    # Tool links: the example plugin is not installed here, nor the gap analyser.
    tools = {li.get("data-tool"): li for li in doc.xpath("//li[@data-tool]")}
    assert "not installed" in tools["gap-analyser"].text_content() and not tools["gap-analyser"].xpath(".//a")
    nav = doc.xpath("//nav[@aria-label='Units of this module']//a")
    assert [a.get("rel") for a in nav] == [None, "next"]
    assert "Feeds your final project" in page.text
    [experienced] = events(server, "experienced")
    assert experienced.extensions == {"module": "test-basics", "unit": "first-steps"}
    last = alex.visit("second-steps")
    assert [
        a.get("rel") for a in lxml.html.fromstring(last.text).xpath("//nav[@aria-label='Units of this module']//a")
    ] == ["prev", None]
    assert alex.get("no-such-unit").status_code == 404


def test_a_tool_link_works_once_its_plugin_is_installed(make_tool, tmp_path):
    from . import plugin_install

    install_packs(tmp_path / "packs", GOOD)
    plugin_install.install(tmp_path / "site", {"example-reflection": "npqsl_example_plugin:plugin"})
    platform = TestPlatform().start()
    try:
        server = make_tool()
        server.register(platform)
        alex = Learner(server, platform)
        doc = lxml.html.fromstring(alex.visit("first-steps").text)
        [link] = doc.xpath("//li[@data-tool='example-reflection']/a")
        assert link.get("href").startswith("/p/example-reflection/?launch=")
        assert doc.xpath("//li[@data-tool='gap-analyser']/a") == []
    finally:
        platform.stop()
        plugin_install.uninstall(tmp_path / "site")
        uninstall_packs(tmp_path / "packs")


def test_reflections_autosave_with_history_and_a_reload_shows_the_last_text(modules):
    server, platform = modules
    alex = Learner(server, platform)
    first = alex.reflect("first-steps", "why", "Because", version=0)
    assert first.status_code == 200 and first.json()["version"] == 1 and not first.json()["conflict"]
    second = alex.reflect("first-steps", "why", "Because pupils", version=1)
    assert second.json()["version"] == 2
    reloaded = lxml.html.fromstring(alex.visit("first-steps").text)
    assert reloaded.xpath("//textarea[@id='text-why']/text()") == ["Because pupils"]
    history = alex.get("first-steps/reflections/why/history")
    assert history.text.index("Because pupils") < history.text.index("Because<")
    # Answered once (the first time it had text), progress moved, the text stays in the tool.
    [answered] = events(server, "answered")
    assert answered.extensions == {"module": "test-basics", "unit": "first-steps", "reflection": "why"}
    assert (answered.result or {}).get("response") is None


def test_two_tabs_saving_at_once_lose_nothing(modules):
    server, platform = modules
    alex = Learner(server, platform)
    assert alex.reflect("first-steps", "why", "start", version=0).json()["version"] == 1
    tab_a = alex.reflect("first-steps", "why", "text from tab A", version=1).json()
    tab_b = alex.reflect("first-steps", "why", "text from tab B", version=1).json()
    assert not tab_a["conflict"]
    assert tab_b["conflict"] and tab_b["other_text"] == "text from tab A" and tab_b["version"] == 3
    history = alex.get("first-steps/reflections/why/history").text
    assert "text from tab A" in history and "text from tab B" in history


def test_many_concurrent_saves_keep_every_text(modules):
    from concurrent.futures import ThreadPoolExecutor

    server, platform = modules
    alex = Learner(server, platform)
    texts = [f"draft number {i}" for i in range(8)]
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda t: alex.reflect("first-steps", "why", t, version=0), texts))
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    assert sorted(a.json()["version"] for a in answers) == list(range(1, 9))
    history = alex.get("first-steps/reflections/why/history").text
    assert all(t in history for t in texts)


def test_a_save_after_the_session_ended_is_refused_clearly_and_changes_nothing(modules):
    from sqlalchemy import update

    from lti_tool.models import Launch, utcnow

    server, platform = modules
    alex = Learner(server, platform)
    alex.reflect("first-steps", "why", "kept safe", version=0)
    with server.db.transaction() as session:
        session.execute(update(Launch).values(expires_at=utcnow()))
    refused = alex.reflect("first-steps", "why", "typed after expiry", version=1)
    assert refused.status_code == 401
    assert refused.json()["error"] == "launch_expired" and "reopen the activity" in refused.json()["message"]
    # Without JavaScript the page shows the text back so it can be copied.
    form = alex.post("first-steps/reflections/why", {"text": "typed without js", "version": "1"})
    assert form.status_code == 401 and "typed without js" in form.text
    # After a new launch, the last saved text is there.
    again = Learner(server, platform)
    assert lxml.html.fromstring(again.visit("first-steps").text).xpath("//textarea[@id='text-why']/text()") == [
        "kept safe"
    ]


def test_a_reflection_form_works_without_javascript_and_sharing_toggles(modules):
    server, platform = modules
    alex = Learner(server, platform)
    page = alex.post("first-steps/reflections/why", {"text": "no script here", "version": "0"})
    assert page.status_code == 200 and "Saved " in page.text and "no script here" in page.text
    shared = alex.post("first-steps/reflections/why/share", {"shared": "1"})
    assert "Your coach can read this reflection." in shared.text
    unshared = alex.post("first-steps/reflections/why/share", {"shared": "0"})
    assert "Only you can read this reflection." in unshared.text
    too_long = alex.reflect("first-steps", "why", "x" * 20_001, version=1)
    assert too_long.status_code == 400 and "20,000" in too_long.json()["message"]


def test_knowledge_checks_show_feedback_keep_the_best_score_and_allow_retakes(modules):
    server, platform = modules
    alex = Learner(server, platform)
    wrong = alex.answer("first-steps", "check", {"q1": [1], "q2": [0, 2]})
    text = text_of(wrong)
    assert "You got 1 of 2 right (50%)" in text and "No, the second is wrong." in text
    assert "Yes, the first is right." in text  # the right answer they missed is explained
    right = alex.answer("first-steps", "check", {"q1": [0], "q2": [0, 2]})
    assert "You got 2 of 2 right (100%)" in text_of(right)
    worse = alex.answer("first-steps", "check", {"q1": [1], "q2": [0]})
    assert "Your best score is 100%" in text_of(worse)
    answered = [e for e in events(server, "answered") if "check" in e.extensions]
    assert [e.extensions["score_percent"] for e in answered] == [50.0, 100.0, 0.0]
    assert [e.extensions["best_percent"] for e in answered] == [50.0, 100.0, 100.0]
    assert [e.result["success"] for e in answered] == [False, True, False]
    assert all(e.result["score_raw"] is None for e in answered)  # no gradebook score for a check


def test_a_check_with_a_missing_or_impossible_answer_is_refused_and_nothing_stored(modules):
    server, platform = modules
    alex = Learner(server, platform)
    missing = alex.answer("first-steps", "check", {"q1": [0]})
    assert missing.status_code == 400 and "question 2 has no answer" in text_of(missing)
    two = alex.answer("first-steps", "check", {"q1": [0, 1], "q2": [0]})
    assert two.status_code == 400 and "choose one option only" in text_of(two)
    outside = alex.answer("first-steps", "check", {"q1": [7], "q2": [0]})
    assert outside.status_code == 400
    assert [e for e in events(server, "answered")] == []


def test_workplace_task_entries_are_kept_with_timestamps(modules):
    server, platform = modules
    alex = Learner(server, platform)
    empty = alex.post("first-steps/tasks/audit", {"did": "  ", "evidence": "notes"})
    assert empty.status_code == 400 and "Write what you did" in empty.text
    alex.post(
        "first-steps/tasks/audit",
        {"did": "Ran the audit with Year 9", "evidence": "Spreadsheet in the shared drive"},
    )
    page = alex.post("first-steps/tasks/audit", {"did": "Shared it with heads of department", "evidence": ""})
    doc = lxml.html.fromstring(page.text)
    entries = doc.xpath("//section[@id='task-audit']//ol[@class='task-log']/li")
    assert len(entries) == 2 and "Ran the audit with Year 9" in entries[0].text_content()
    assert "UTC" in entries[0].text_content() and "Spreadsheet in the shared drive" in entries[0].text_content()
    submitted = events(server, "submitted")
    assert [e.extensions["feeds_final_project"] for e in submitted] == [True, True]
