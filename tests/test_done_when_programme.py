"""Issue 6, "Done when": the NPQSL programme end to end, over real HTTP.

A candidate launched from a test platform (real RS256 id_tokens, Moodle-like AGS, NRPS) works
through the four built-in modules, completes Closing the Gap by doing what its pack asks (the
right answers are read from the pack's own data), and then the score is in the platform's
gradebook, the statements are in the embedded LRS (read with a key the CLI made), and the coach
launched into the same course sees the completion. The same candidate path runs from ``/demo``.
The completion path also runs on PostgreSQL (``make test-postgres``).
"""

from __future__ import annotations

import html
import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import lxml.html
import pytest
import requests
from sqlalchemy import func, select

from lti_tool.models import LearningEventRow, OutboxMessage
from lti_tool.worker import Worker
from plugins.modules.packs import BUILTIN_PACKS, KnowledgeCheck, Pack, Reflection, WorkplaceTask, load_pack
from xapi import vocabulary
from xapi.lrs.auth import create_key

from .browser import Browser, auto_post_form
from .modules_harness import Learner
from .nrps_platform import NrpsPlatform
from .platform_emulator import INSTRUCTOR, LEARNER, LaunchSpec
from .test_demo import follow_demo
from .test_xapi_statements import check_valid, read_all

CLI = Path(sys.executable).with_name("npqsl-lti")
BUILTIN = (
    "succeeding-in-senior-leadership",
    "closing-the-gap",
    "improving-the-quality-of-teaching",
    "leading-change-for-improvement",
)
COMPLETED = "closing-the-gap"
DASHBOARD = {"npqsl_plugin": "programme", "npqsl_activity": "dashboard"}
XAPI_HEADERS = {"X-Experience-API-Version": "2.0.0"}
KIND_OF_VERB = {verb.iri: kind for kind, verb in vocabulary.VERBS.items()}


def pack(key: str) -> Pack:
    return load_pack(BUILTIN_PACKS / key)


def right_answers(check: KnowledgeCheck) -> dict[str, list[int]]:
    """The correct options of every question, as the pack declares them."""
    return {q.key: [i for i, option in enumerate(q.options) if option.correct] for q in check.questions}


def text_of(page) -> str:
    return " ".join(lxml.html.fromstring(page.text).text_content().split())


@pytest.fixture
def platform():
    server = NrpsPlatform(page_size=50).start()
    server.add_member("coach-1", [INSTRUCTOR], name="Chris Coach")
    server.add_member("cand-1", [LEARNER], name="Alex Candidate")
    server.add_member("cand-2", [LEARNER], name="Bea Candidate")
    yield server
    server.stop()


@pytest.fixture
def server(make_tool, platform, database_url):
    """The tool on SQLite, or (marked ``postgres``) on a fresh PostgreSQL schema."""
    tool = make_tool(database_url)
    tool.register(platform)
    return tool


def cli(server, *args: str) -> str:
    """``npqsl-lti ARGS`` as a subprocess against the tool's database; its standard output."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "NPQSL_ENV": "development",
        "NPQSL_INSTANCE_PATH": str(server.settings.instance_path),
        "NPQSL_DATABASE_URL": server.settings.database_url,
        "NPQSL_OUTBOX_INLINE_WORKER": "false",
    }
    done = subprocess.run([str(CLI), *args], env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def lrs_key_from_cli(server, scope: str = "read") -> tuple[str, str]:
    printed = cli(server, "lrs", "key", "create", "--scope", scope, "--name", "analytics team")
    key = re.search(r"^key:\s+(\S+)$", printed, re.M)
    secret = re.search(r"^secret:\s+(\S+)$", printed, re.M)
    assert key and secret, printed
    return key.group(1), secret.group(1)


def complete_module(learner: Learner, module: Pack) -> None:
    """Everything the default rule asks, through the pages: visit, reflect, pass, log."""
    for unit in module.units:
        page = learner.visit(unit.key)
        assert lxml.html.fromstring(page.text).xpath("//h1/text()") == [unit.title]
        do_unit(learner, module, unit)


def do_unit(learner: Learner, module: Pack, unit) -> None:
    """Answer every reflection and knowledge check of ``unit`` and log each workplace task once."""
    for reflection in unit.of_type(Reflection):
        saved = learner.reflect(
            unit.key, reflection.key, f"My answer to {reflection.key} in {unit.key}.", version=0
        )
        assert saved.status_code == 200 and not saved.json()["conflict"], saved.text
    for check in unit.of_type(KnowledgeCheck):
        marked = learner.answer(unit.key, check.key, right_answers(check))
        total = len(check.questions)
        assert marked.status_code == 200, marked.text[:500]
        assert f"You got {total} of {total} right (100%)" in text_of(marked), (unit.key, check.key)
    for task in unit.of_type(WorkplaceTask):
        logged = learner.post(
            f"{unit.key}/tasks/{task.key}",
            {"did": f"Did {task.key} with the year 9 team.", "evidence": "Notes in the shared drive."},
        )
        assert logged.status_code == 200 and f"Did {task.key} with the year 9 team." in logged.text


def deliver(server) -> None:
    Worker(server.app).drain()
    with server.db.sessions() as session:
        stuck = session.execute(
            select(OutboxMessage.receiver, OutboxMessage.status, OutboxMessage.last_error).where(
                OutboxMessage.status != "delivered"
            )
        ).all()
    assert stuck == [], stuck


def event_count(server) -> int:
    with server.db.sessions() as session:
        return session.scalar(select(func.count()).select_from(LearningEventRow))


def launch_token(page) -> str:
    match = re.search(r'[?&]launch=([^"&#]+)', page.text)
    assert match, page.text[:2000]
    return html.unescape(match.group(1))


# -- all four modules ----------------------------------------------------------------------------
def test_a_candidate_works_through_all_four_builtin_modules(make_tool, platform):
    server = make_tool()
    server.register(platform)
    for key in BUILTIN:
        module = pack(key)
        alex = Learner(server, platform, module=key, sub="cand-1")
        assert alex.page.status_code == 200, alex.page.text[:500]
        overview = lxml.html.fromstring(alex.page.text)
        assert overview.xpath("//h1/text()") == [module.title]
        links = overview.xpath("//ol[@class='unit-list']//a/@href")
        assert [href.split("?")[0].rsplit("/", 1)[-1] for href in links] == [u.key for u in module.units]
        for href, unit in zip(links, module.units, strict=True):
            page = alex.browser.get(server.base_url + href)
            assert page.status_code == 200, (key, unit.key, page.text[:500])
            assert lxml.html.fromstring(page.text).xpath("//h1/text()") == [unit.title]
        # The candidate can answer in every module: the first unit's activities, all of them.
        do_unit(alex, module, module.units[0])
        reopened = Learner(server, platform, module=key, sub="cand-1")
        first = lxml.html.fromstring(reopened.visit(module.units[0].key).text)
        for reflection in module.units[0].of_type(Reflection):
            assert first.xpath(f"//textarea[@id='text-{reflection.key}']/text()") == [
                f"My answer to {reflection.key} in {module.units[0].key}."
            ]
        assert "100% complete" not in reopened.page.text  # started, not finished

    # On the dashboard the candidate chooses the two electives; all four modules are under way.
    dashboard = Browser()
    landing = dashboard.launch(server, platform, LaunchSpec(sub="cand-1", custom=DASHBOARD))
    electives = [key for key in BUILTIN if pack(key).status == "elective"]
    page = dashboard.post(
        server.base_url + "/p/programme/electives",
        data=[("launch", launch_token(landing)), *(("elective", key) for key in electives)],
    )
    assert page.status_code == 200 and "Your electives are saved." in page.text
    assert "data-plan-warnings" not in page.text and "0 of 4 modules completed." in page.text
    for key in BUILTIN:
        assert f'data-module="{key}" data-state="in-progress"' in page.text, key
    deliver(server)
    statements = read_all(server, create_key(server.db, "read"))
    assert len(statements) == event_count(server)
    vocab = vocabulary.Vocabulary.from_settings(server.settings)
    answered = Counter(
        s["context"]["contextActivities"]["grouping"][-1]["id"]
        for s in statements
        if s["verb"]["id"] == vocabulary.VERBS["answered"].iri
    )
    for key in BUILTIN:
        first_unit = pack(key).units[0]
        expected = len(first_unit.of_type(Reflection)) + len(first_unit.of_type(KnowledgeCheck))
        assert answered[vocab.plugin_activity("modules", key)] == expected, key


# -- one module completed: gradebook, LRS, coach ----------------------------------------------------
def test_completing_a_module_reaches_the_gradebook_the_lrs_and_the_coach(server, platform):
    module = pack(COMPLETED)
    alex = Learner(server, platform, module=COMPLETED, sub="cand-1")
    complete_module(alex, module)
    assert "You completed this module" in alex.get("").text
    deliver(server)

    # The gradebook: the module's own line item, out of 100, with the one module score.
    [column] = [c for c in platform.gradebook() if c["resourceId"] == f"modules:{COMPLETED}"]
    assert column["scoreMaximum"] == 100 and column["tag"] == "module"
    assert column["resourceLinkId"] == f"rl-{COMPLETED}"
    grade = column["grades"]["cand-1"]
    assert (grade["score"], grade["gradingProgress"], grade["activityProgress"]) == (
        100.0,
        "FullyGraded",
        "Completed",
    )
    assert [h["scoreGiven"] for h in grade["history"]] == [100]
    assert [c["resourceId"] for c in platform.gradebook()] == [f"modules:{COMPLETED}"]

    # The LRS: every event is one valid, profile-tagged statement, read with a key the CLI made.
    key = lrs_key_from_cli(server)
    statements = read_all(server, key)
    assert len(statements) == event_count(server) and len({s["id"] for s in statements}) == len(statements)
    vocab = vocabulary.Vocabulary.from_settings(server.settings)
    module_iri = vocab.plugin_activity("modules", COMPLETED)
    by_verb: dict[str, list[dict]] = {}
    for statement in statements:
        check_valid(statement)
        assert statement["actor"]["account"] == {"homePage": platform.issuer, "name": "cand-1"}
        assert [a["id"] for a in statement["context"]["contextActivities"]["category"]] == [vocab.profile_version]
        by_verb.setdefault(KIND_OF_VERB[statement["verb"]["id"]], []).append(statement)
    assert {"launched", "experienced", "answered", "submitted", "progressed", "completed"} <= set(by_verb)

    experienced = {s["object"]["id"] for s in by_verb["experienced"]}
    assert experienced == {vocab.plugin_activity("modules", f"{COMPLETED}/{u.key}") for u in module.units}
    for statement in by_verb["experienced"]:  # a unit's parent is its module
        assert [a["id"] for a in statement["context"]["contextActivities"]["parent"]] == [module_iri]
    for statement in by_verb["answered"] + by_verb["submitted"]:
        unit_key, item = statement["object"]["id"].removeprefix(module_iri + "/").split("/")
        activities = statement["context"]["contextActivities"]
        assert [a["id"] for a in activities["parent"]] == [f"{module_iri}/{unit_key}"]
        assert activities["grouping"][-1]["id"] == module_iri
        assert activities["grouping"][-1]["definition"]["name"] == {"en-GB": module.title}
        assert item in {a.key for a in module.unit(unit_key).activities}
    reflections = [s for s in by_verb["answered"] if "response" not in s.get("result", {})]
    checks = [s for s in by_verb["answered"] if "response" in s.get("result", {})]
    assert len(reflections) == sum(len(u.of_type(Reflection)) for u in module.units)
    assert len(checks) == sum(len(u.of_type(KnowledgeCheck)) for u in module.units)
    assert all(s["result"]["success"] is True for s in checks)
    assert len(by_verb["submitted"]) == sum(len(u.of_type(WorkplaceTask)) for u in module.units)

    [completed] = by_verb["completed"]
    assert completed["object"]["id"] == module_iri
    assert completed["object"]["definition"]["name"] == {"en-GB": module.title}
    assert completed["result"] == {
        "score": {"scaled": 1, "raw": 100, "min": 0, "max": 100},
        "success": True,
        "completion": True,
    }
    # An analytics team's query finds it: this person's completions of this module.
    agent = {"objectType": "Agent", "account": {"homePage": platform.issuer, "name": "cand-1"}}
    found = requests.get(
        server.base_url + "/xapi/statements",
        params={
            "agent": json.dumps(agent),
            "verb": vocabulary.VERBS["completed"].iri,
            "activity": module_iri,
        },
        auth=key,
        headers=XAPI_HEADERS,
        timeout=10,
    )
    assert found.status_code == 200 and [s["id"] for s in found.json()["statements"]] == [completed["id"]]
    # And everything about the module: its units and their activities name it as parent or grouping.
    related = read_all(server, key, activity=module_iri, related_activities="true")
    assert sorted(s["id"] for s in related) == sorted(s["id"] for s in statements)

    # The coach, launched into the same course, sees the completion on the roster and in detail.
    coach = Browser()
    roster = coach.launch(
        server, platform, LaunchSpec(sub="coach-1", roles=[INSTRUCTOR], name="Chris Coach", custom=DASHBOARD)
    )
    assert roster.status_code == 200 and "Your candidates</h1>" in roster.text
    assert re.findall(r'data-candidate="([^"]+)"', roster.text) == ["cand-1", "cand-2"]
    alex_card = roster.text[
        roster.text.index('data-candidate="cand-1"') : roster.text.index('data-candidate="cand-2"')
    ]
    bea_card = roster.text[roster.text.index('data-candidate="cand-2"') :]
    assert "data-modules-done>1 of 4 completed" in alex_card, alex_card  # 2 essentials + 2 electives
    assert "data-modules-done>0 of 4 completed" in bea_card, bea_card
    detail = coach.get(
        server.base_url + "/p/programme/coach/candidate", params={"launch": launch_token(roster), "sub": "cand-1"}
    )
    assert detail.status_code == 200 and "Alex Candidate</h1>" in detail.text
    line = re.search(rf'data-module="{COMPLETED}" data-state="completed">(.*?)</li>', detail.text, re.S)
    assert line and "score 100" in line.group(1), detail.text[:3000]
    # And the candidate's own dashboard agrees.
    own = Browser().launch(server, platform, LaunchSpec(sub="cand-1", custom=DASHBOARD))
    assert f'data-module="{COMPLETED}" data-state="completed"' in own.text


# -- from /demo -------------------------------------------------------------------------------------------
class DemoLearner(Learner):
    """The demo candidate, launched from the tool's own demo platform into a placed module."""

    def __init__(self, server, browser: Browser, page, module: str):
        self.server = server
        self.browser = browser
        self.module = module
        self.sub = "demo-candidate"
        self.page = page
        self.token = self.launch_of(page)


def test_the_demo_candidate_completes_a_units_activities_and_then_the_module(make_tool):
    server = make_tool()
    browser = Browser()
    browser.get(server.base_url + "/demo/")
    picker = follow_demo(browser, server, role="administrator", action="deeplink")
    form = auto_post_form(picker.text, server.base_url)
    returned = browser.post(
        server.base_url + "/lti/deep-link", data={"launch": form.fields["launch"], "item": f"modules:{COMPLETED}"}
    )
    back = auto_post_form(returned.text, server.base_url)
    assert "1 activity added" in browser.post(back.action, data=back.fields).text

    module = pack(COMPLETED)
    launched = follow_demo(browser, server, role="candidate", action="launch", item="0")
    assert launched.status_code == 200 and "0% complete" in launched.text
    casey = DemoLearner(server, browser, launched, COMPLETED)
    unit = module.units[0]
    casey.visit(unit.key)
    do_unit(casey, module, unit)
    overview = casey.get("")
    # One unit visited, its reflections answered and its check passed, of the module's whole rule.
    done = 1 + len(unit.of_type(Reflection)) + len(unit.of_type(KnowledgeCheck))
    total = len(module.units) + sum(
        len(u.of_type(Reflection)) + len(u.of_type(KnowledgeCheck)) for u in module.units
    )
    assert f"{done * 100 // total}% complete" in overview.text

    deliver(server)
    statements = read_all(server, create_key(server.db, "read"))
    assert len(statements) == event_count(server)
    vocab = vocabulary.Vocabulary.from_settings(server.settings)
    unit_iri = vocab.plugin_activity("modules", f"{COMPLETED}/{unit.key}")
    done_in_unit = Counter(
        KIND_OF_VERB[s["verb"]["id"]]
        for s in statements
        if [a["id"] for a in s["context"]["contextActivities"].get("parent", [])] == [unit_iri]
    )
    assert done_in_unit == {
        "answered": len(unit.of_type(Reflection)) + len(unit.of_type(KnowledgeCheck)),
        "submitted": len(unit.of_type(WorkplaceTask)),
    }
    for statement in statements:
        check_valid(statement)
        assert statement["actor"]["account"]["name"] == "demo-candidate"
        assert statement["context"]["contextActivities"]["grouping"][1]["definition"]["name"] == {
            "en-GB": "NPQSL demo cohort"
        }

    # The rest of the module: completed, in the LRS, and nothing left undelivered (the demo
    # gradebook's side is tests/test_demo_services.py's).
    for rest in module.units[1:]:
        casey.visit(rest.key)
        do_unit(casey, module, rest)
    assert "You completed this module" in casey.get("").text
    deliver(server)
    [completed] = [
        s
        for s in read_all(server, create_key(server.db, "read"))
        if s["verb"]["id"] == vocabulary.VERBS["completed"].iri
    ]
    assert completed["object"]["id"] == vocab.plugin_activity("modules", COMPLETED)
    assert completed["result"]["score"]["raw"] == 100 and completed["result"]["success"] is True
    # The candidate's programme dashboard, reached from a demo launch, shows it done.
    landing = follow_demo(browser, server, role="candidate", action="launch")
    link = re.search(r'<a href="([^"]+)" data-programme-link>', landing.text)
    assert link, landing.text[:2000]
    dashboard = browser.get(server.base_url + html.unescape(link.group(1)))
    assert f'data-module="{COMPLETED}" data-state="completed"' in dashboard.text
