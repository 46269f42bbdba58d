"""Learning events become xAPI statements in the embedded LRS: valid, profile-tagged, idempotent.

The example plugin is placed by deep linking and launched through the test platform over HTTP;
its events go through the outbox worker into the embedded LRS, and the statements are read back
through the LRS's Statements API with a key, as an analytics team would. Every statement is
checked by the tool's own schemas and, independently, by Ralph's pydantic xAPI models.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
import requests
from ralph.models.xapi.base.statements import BaseXapiStatement
from sqlalchemy import select

from lti_tool.events import EVENT_KINDS, LearningEvent, Result
from lti_tool.models import LearningEventRow, OutboxMessage
from lti_tool.outbox import Policy
from lti_tool.worker import Worker
from xapi import vocabulary
from xapi.lrs.auth import create_key
from xapi.schemas import validate_statement
from xapi.statements import iso_duration, timestamp

from . import plugin_install
from . import test_grades as grades
from .browser import Browser, auto_post_form
from .platform_emulator import INSTRUCTOR, LaunchSpec
from .registration_platform import RegisteringPlatform

PLUGIN = "example-reflection"
FAST = Policy(backoff_base_seconds=0.001, backoff_max_seconds=0.005, max_attempts=2, lease_seconds=30)
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@pytest.fixture
def placed(make_tool, tmp_path):
    """The example plugin installed, its quiz placed in a course by deep linking."""
    plugin_install.install(tmp_path / "site", {PLUGIN: "npqsl_example_plugin:plugin"})
    platform = RegisteringPlatform().start()
    server = make_tool()
    server.register(platform)
    browser = Browser()
    designer = LaunchSpec(sub="designer", roles=[INSTRUCTOR], message_type="LtiDeepLinkingRequest")
    page = browser.launch(server, platform, designer)
    form = auto_post_form(page.text, server.base_url)
    returned = browser.post(
        server.base_url + "/lti/deep-link", data={"launch": form.fields["launch"], "item": [f"{PLUGIN}:quiz"]}
    )
    form = auto_post_form(returned.text, server.base_url)
    assert browser.post(form.action, data=form.fields).status_code == 200
    yield server, platform, platform.placed_items[-1]
    platform.stop()
    plugin_install.uninstall(tmp_path / "site")


class Candidate(grades.Candidate):
    """One person's browser, launched into the placed quiz (the gradebook tests' candidate)."""

    def __init__(self, server, platform, item, sub="cand-1", context=None):
        self.server = server
        self.sub = sub
        self.browser = Browser()
        spec = LaunchSpec(sub=sub, resource_link={"id": "rl-quiz", "title": item["title"]}, custom=item["custom"])
        if context is not None:
            spec.context = context
        page = self.browser.launch(server, platform, spec)
        assert page.status_code == 200, page.text
        self.token = re.search(r"data-launch>([^<]+)<", page.text).group(1)

    def emit(self, *events: LearningEvent) -> list[str]:
        with self.server.tool.events.record(self.context, PLUGIN) as rec:
            return [rec.emit(event) for event in events]


def deliver(server) -> Worker:
    worker = Worker(server.app, policy=FAST)
    worker.drain()
    return worker


def read_all(server, key: tuple[str, str], **params) -> list[dict]:
    """Every statement through GET /xapi/statements, following ``more``."""
    statements: list[dict] = []
    url = server.base_url + "/xapi/statements"
    headers = {"X-Experience-API-Version": "1.0.3"}
    while url:
        response = requests.get(url, params=params, auth=key, headers=headers, timeout=10)
        assert response.status_code == 200, response.text
        body = response.json()
        statements.extend(body["statements"])
        url, params = (server.base_url + body["more"]) if body.get("more") else None, None
    return statements


def events_of(server) -> list[LearningEventRow]:
    with server.db.sessions() as session:
        return list(session.scalars(select(LearningEventRow).order_by(LearningEventRow.recorded_at)))


def lrs_rows(server) -> list[OutboxMessage]:
    with server.db.sessions() as session:
        return list(
            session.scalars(
                select(OutboxMessage).where(OutboxMessage.receiver == "lrs").order_by(OutboxMessage.id)
            )
        )


def redeliver(server, receiver_name: str) -> list:
    """Hand every row of a receiver to it again, as a worker that died before recording would."""
    receiver = next(r for r in server.tool.events.receivers if r.name == receiver_name)
    with server.db.sessions() as session:
        messages = list(session.scalars(select(OutboxMessage).where(OutboxMessage.receiver == receiver_name)))
        events = {e.id: e for e in session.scalars(select(LearningEventRow))}
        session.expunge_all()
    with server.app.app_context():
        return receiver.deliver_many([(m, events[m.event_id]) for m in messages], server.tool)


def check_valid(statement: dict) -> None:
    """Valid for the tool's schemas (both versions) and for Ralph's models.

    What the tool emitted (without what the LRS added) must suit either version; the stored
    statement, with the ``version`` the LRS set, must suit that version. Ralph's models are
    1.0.3 models: they check what the tool emitted.
    """
    emitted = {k: v for k, v in statement.items() if k not in ("stored", "authority", "version")}
    for version in ("1.0.3", "2.0.0"):
        validate_statement(emitted, version)
    validate_statement(statement, "2.0.0" if statement.get("version", "").startswith("2.") else "1.0.3")
    BaseXapiStatement.model_validate(emitted)


def every_kind(candidate: Candidate) -> list[str]:
    """One event of every kind, some in a unit of a module (activity paths), with results."""
    start = datetime(2026, 11, 22, 10, 0, 0, 123000, tzinfo=UTC)
    at = iter(start + timedelta(seconds=i) for i in range(100))
    events = [
        LearningEvent("initialized", "quiz", occurred_at=next(at)),
        LearningEvent("experienced", "closing-the-gap/finding-gaps", occurred_at=next(at)),
        LearningEvent(
            "progressed", "closing-the-gap/finding-gaps", Result(score_raw=1, score_max=4), occurred_at=next(at)
        ),
        LearningEvent(
            "answered",
            "closing-the-gap/finding-gaps/whose-gap",
            Result(response="Disadvantaged boys in year 9"),
            occurred_at=next(at),
            extensions={"title": "Whose gap?", "word_count": 5},
        ),
        LearningEvent(
            "completed",
            "closing-the-gap/finding-gaps",
            Result(completion=True, duration_seconds=3723.456),
            occurred_at=next(at),
        ),
        LearningEvent("submitted", "journal", Result(response="My reflection"), occurred_at=next(at)),
        LearningEvent("scored", "quiz", Result(score_raw=7, score_max=10), occurred_at=next(at)),
        LearningEvent("passed", "quiz", Result(score_raw=8, score_max=10, success=True), occurred_at=next(at)),
        LearningEvent(
            "failed", "quiz", Result(score_raw=2, score_min=1, score_max=5, success=False), occurred_at=next(at)
        ),
        LearningEvent("attended", "coaching-session", occurred_at=next(at), extensions={"parent": "quiz"}),
        LearningEvent("commented", "journal", Result(response="Thanks, useful."), occurred_at=next(at)),
    ]
    return candidate.emit(*events)


# -- the end to end case ---------------------------------------------------------------------------


def test_every_event_of_the_plugin_is_a_valid_profile_tagged_statement_in_the_lrs(placed):
    server, platform, item = placed
    alex = Candidate(server, platform, item)  # launched
    alex.score(7)  # scored, through the plugin's own view
    every_kind(alex)
    events = events_of(server)
    assert {e.kind for e in events} == set(EVENT_KINDS)

    deliver(server)
    assert {r.status for r in lrs_rows(server)} == {"delivered"}
    key = create_key(server.db, "read")
    stored = {s["id"]: s for s in read_all(server, key)}

    vocab = vocabulary.Vocabulary.from_settings(server.settings)
    registration = vocabulary.registration(platform.issuer, "course-1", "cand-1")
    for event in events:
        statement = stored.pop(vocabulary.statement_id(event.id))
        check_valid(statement)
        assert statement["verb"]["id"] == vocabulary.VERBS[event.kind].iri
        assert statement["actor"] == {
            "objectType": "Agent",
            "account": {"homePage": platform.issuer, "name": "cand-1"},
        }
        context = statement["context"]
        assert context["registration"] == registration
        assert [a["id"] for a in context["contextActivities"]["category"]] == [vocab.profile_version]
        grouping = [a["id"] for a in context["contextActivities"]["grouping"]]
        assert grouping[:2] == [vocab.qualification, vocab.course(platform.issuer, "course-1")]
        assert context["extensions"][vocab.extension("lti_context_id")] == "course-1"
        assert context["extensions"][vocab.extension("lti_deployment_id")] == platform.deployment_id
        assert context["extensions"][vocab.extension("lti_resource_link_id")] == "rl-quiz"
        assert context["language"] == "en-GB" and "contextAgents" not in context
        assert statement["object"]["id"] == vocab.plugin_activity(PLUGIN, event.activity)
        assert TIMESTAMP.match(statement["timestamp"])
        assert statement["authority"]["account"]["name"] == vocabulary.TOOL_ACCOUNT_NAME
    assert stored == {}, "the LRS holds statements no event explains"


def test_results_parents_and_names_come_out_as_designed(placed):
    server, platform, item = placed
    alex = Candidate(server, platform, item)
    ids = every_kind(alex)
    deliver(server)
    key = create_key(server.db, "read")
    by_event = {e.id: e for e in events_of(server)}
    stored = {s["id"]: s for s in read_all(server, key)}
    statement = {by_event[i].kind: stored[vocabulary.statement_id(i)] for i in ids}
    vocab = vocabulary.Vocabulary.from_settings(server.settings)

    assert statement["initialized"]["object"]["definition"]["name"] == {"en-GB": "Example knowledge check"}
    assert statement["initialized"]["timestamp"] == "2026-11-22T10:00:00.123Z"
    assert statement["scored"]["result"]["score"] == {"scaled": 0.7, "raw": 7, "min": 0, "max": 10}
    assert statement["failed"]["result"] == {
        "score": {"scaled": 0.25, "raw": 2, "min": 1, "max": 5},
        "success": False,
    }
    assert statement["completed"]["result"] == {"completion": True, "duration": "PT1H2M3.46S"}
    answered = statement["answered"]
    assert answered["result"]["response"] == "Disadvantaged boys in year 9"
    assert answered["object"]["definition"]["name"] == {"en-GB": "Whose gap?"}
    # A unit's task: the unit is its parent, the module is grouped with the qualification and course.
    activities = answered["context"]["contextActivities"]
    assert [a["id"] for a in activities["parent"]] == [
        vocab.plugin_activity(PLUGIN, "closing-the-gap/finding-gaps")
    ]
    assert [a["id"] for a in activities["grouping"]][2:] == [vocab.plugin_activity(PLUGIN, "closing-the-gap")]
    assert answered["context"]["extensions"][vocab.extension("event_data")] == {"word_count": 5}
    # An explicit parent wins over the activity path.
    attended = statement["attended"]["context"]["contextActivities"]
    assert [a["id"] for a in attended["parent"]] == [vocab.plugin_activity(PLUGIN, "quiz")]
    assert attended["parent"][0]["definition"]["name"] == {"en-GB": "Example knowledge check"}
    assert "parent" not in statement["scored"]["context"]["contextActivities"]


def test_registration_is_one_per_person_and_course(placed):
    server, platform, item = placed
    alex = Candidate(server, platform, item, sub="alex")
    alex_elsewhere = Candidate(server, platform, item, sub="alex", context={"id": "course-2", "title": "Cohort B"})
    sam = Candidate(server, platform, item, sub="sam")
    alex.score(3)
    deliver(server)
    registrations = {}
    for statement in read_all(server, create_key(server.db, "read")):
        account = statement["actor"]["account"]["name"]
        course = statement["context"]["extensions"][
            vocabulary.Vocabulary.from_settings(server.settings).extension("lti_context_id")
        ]
        registrations.setdefault((account, course), set()).add(statement["context"]["registration"])
    assert all(len(found) == 1 for found in registrations.values()), registrations
    assert len({next(iter(found)) for found in registrations.values()}) == 3
    assert alex_elsewhere and sam


def test_a_redelivered_statement_is_stored_once(placed):
    server, platform, item = placed
    alex = Candidate(server, platform, item)
    alex.score(5)
    deliver(server)
    key = create_key(server.db, "read")
    before = read_all(server, key)

    # A worker that died after the store but before recording the answer delivers again.
    assert all(answer.is_delivered for answer in redeliver(server, "lrs"))
    assert sorted(s["id"] for s in read_all(server, key)) == sorted(s["id"] for s in before)


def test_names_and_emails_appear_only_when_configured(make_tool, tmp_path):
    plugin_install.install(tmp_path / "site", {PLUGIN: "npqsl_example_plugin:plugin"})
    platform = RegisteringPlatform().start()
    try:
        private = make_tool()
        shared = make_tool(xapi={"actor_names": True, "actor_emails": True}, privacy={"keep_emails": True})
        item = {"title": "Quiz", "custom": {"npqsl_plugin": PLUGIN, "npqsl_activity": "quiz"}}
        for server in (private, shared):
            server.register(platform)
            Candidate(server, platform, item)
            deliver(server)
        [quiet] = read_all(private, create_key(private.db, "read"))
        [open_] = read_all(shared, create_key(shared.db, "read"))
        vocab = vocabulary.Vocabulary.from_settings(shared.settings)
        assert "name" not in quiet["actor"]
        assert vocab.extension("actor_email") not in quiet["context"]["extensions"]
        assert open_["actor"]["name"] == "Alex Candidate"
        assert open_["actor"]["account"]["name"] == "cand-1"  # still the account: one identifier
        assert open_["context"]["extensions"][vocab.extension("actor_email")] == "mailto:alex@example.org"
        check_valid(open_)
    finally:
        platform.stop()
        plugin_install.uninstall(tmp_path / "site")


def test_an_event_that_cannot_become_a_statement_is_parked_dead_with_the_reason(placed):
    server, platform, item = placed
    alex = Candidate(server, platform, item)
    [bad] = alex.emit(LearningEvent("completed", "quiz", extensions={"activity_type": "not an iri"}))
    deliver(server)
    deliver(server)
    [row] = [r for r in lrs_rows(server) if r.event_id == bad]
    assert row.status == "dead" and "activity_type 'not an iri' is not an absolute IRI" in row.last_error
    assert all(r.status == "delivered" for r in lrs_rows(server) if r.event_id != bad)


# -- the profile -----------------------------------------------------------------------------------


def test_the_profile_is_served_at_its_iri_and_describes_every_statement(placed):
    server, platform, item = placed
    alex = Candidate(server, platform, item)
    every_kind(alex)
    deliver(server)
    statements = read_all(server, create_key(server.db, "read"))
    vocab = vocabulary.Vocabulary.from_settings(server.settings)

    response = requests.get(server.base_url + "/xapi/profile", timeout=10)
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("application/ld+json")
    profile = response.json()
    assert profile["id"] == vocab.profile and profile["type"] == "Profile"
    assert [v["id"] for v in profile["versions"]] == [vocab.profile_version]
    assert requests.get(server.base_url + "/xapi/profile/v1", timeout=10).json() == profile
    concepts = {c["id"]: c for c in profile["concepts"]}
    templates = {t["verb"]: t for t in profile["templates"]}
    assert set(templates) == {vocabulary.VERBS[kind].iri for kind in EVENT_KINDS}
    for entry in profile["concepts"] + profile["templates"] + profile["patterns"]:
        assert entry["inScheme"] == vocab.profile_version
    declared = {c["id"] for c in profile["concepts"] if c["type"] == "ContextExtension"}
    assert declared == {vocab.extension(key) for key in vocabulary.EXTENSION_PATHS}
    for statement in statements:
        template = templates[statement["verb"]["id"]]
        # The determining properties: the verb, the category and grouping activity types.
        context_activities = statement["context"]["contextActivities"]
        assert template["contextCategoryActivityType"] == [
            a["definition"]["type"] for a in context_activities["category"]
        ]
        grouping_types = {a.get("definition", {}).get("type") for a in context_activities["grouping"]}
        assert set(template["contextGroupingActivityType"]) <= grouping_types
        for key in statement["context"]["extensions"]:
            assert key in declared or not key.startswith(vocab.base), key
        assert statement["verb"]["id"] in concepts
    # A concept IRI resolves to the concept.
    extension = vocab.extension("lti_context_id")
    one = requests.get(server.base_url + extension.removeprefix(vocab.base), timeout=10)
    assert one.status_code == 200 and one.json()["id"] == extension
    assert requests.get(server.base_url + "/xapi/profile/no/such/thing", timeout=10).status_code == 404


def test_the_served_profile_follows_the_public_url(make_tool):
    server = make_tool(public_url="https://npqsl.school.example")
    profile = server.app.test_client().get("/xapi/profile").get_json()
    assert profile["id"] == "https://npqsl.school.example/xapi/profile"
    assert "npqsl-lti.invalid" not in server.app.test_client().get("/xapi/profile").get_data(as_text=True)


# -- formats ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "PT0S"), (0.004, "PT0S"), (1.5, "PT1.5S"), (60, "PT1M"), (3723.456, "PT1H2M3.46S"), (7200.0, "PT2H")],
)
def test_durations_are_iso_8601_to_the_hundredth(seconds, text):
    assert iso_duration(seconds) == text


def test_timestamps_are_utc_with_milliseconds():
    from datetime import timezone

    moment = datetime(2026, 11, 22, 11, 0, 0, 123456, tzinfo=timezone(timedelta(hours=1)))
    assert timestamp(moment) == "2026-11-22T10:00:00.123Z"


def test_without_the_embedded_lrs_no_statements_are_owed_to_it(make_tool):
    server = make_tool(xapi={"lrs_enabled": False})
    assert "lrs" not in {receiver.name for receiver in server.tool.events.receivers}
    assert server.app.test_client().get("/xapi/profile").status_code == 200
