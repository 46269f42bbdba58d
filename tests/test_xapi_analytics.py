"""The flat projection of stored statements, and the administrators' analytics page.

The projection tests store statements through the embedded LRS's real store on a real database
(SQLite, and PostgreSQL when marked), then read the flat table back with SQL as an analyst would.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import lxml.etree
import lxml.html
import pytest
import requests
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate as validate_openapi
from sqlalchemy import select, text

from lti_tool.db import Database
from lti_tool.platforms import add_platform
from xapi import analytics, charts
from xapi.analytics import PASSED_VERBS, SCORE_BANDS
from xapi.lrs import statement_store
from xapi.lrs.auth import create_key
from xapi.lrs.statements import QUERY_PARAMS, SINGLE_PARAMS
from xapi.lrs.store import StatementConflict, StatementStore
from xapi.projection import Extensions, FlatStatement, duration_seconds, projector
from xapi.vocabulary import COURSE_TYPE, VERBS, VOIDED, Vocabulary

from .browser import Browser
from .delivery_sink import launch_context
from .platform_emulator import ADMIN, LaunchSpec

VOCABULARY = Vocabulary("https://tool.example")
EXTENSIONS = Extensions.of(VOCABULARY)
ISSUER = "https://moodle.school-a.example"
AUTHORITY = {"objectType": "Agent", "account": {"homePage": "https://tool.example", "name": "npqsl-lti"}}


def statement(
    kind: str = "completed",
    *,
    sub: str = "learner-1",
    activity: str = "modules/closing-the-gap/unit-1",
    name: str = "Unit 1: Diagnosing the gap",
    issuer: str = ISSUER,
    result: dict | None = None,
    timestamp: datetime | None = None,
    **extra,
) -> dict:
    """A statement shaped like the ones the tool emits for a learning event."""
    return {
        "id": str(uuid.uuid4()),
        "actor": {"objectType": "Agent", "account": {"homePage": issuer, "name": sub}},
        "verb": {"id": VERBS[kind].iri, "display": {"en-GB": VERBS[kind].display}},
        "object": {
            "objectType": "Activity",
            "id": VOCABULARY.plugin_activity("modules", activity),
            "definition": {"type": "http://adlnet.gov/expapi/activities/lesson", "name": {"en-GB": name}},
        },
        "context": {
            "registration": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{issuer}|course-1|{sub}")),
            "contextActivities": {
                "parent": [{"id": VOCABULARY.plugin_activity("modules", "modules/closing-the-gap")}],
                "grouping": [
                    {"id": VOCABULARY.qualification},
                    {"id": VOCABULARY.course(issuer, "course-1"), "definition": {"type": COURSE_TYPE}},
                ],
                "category": [{"id": VOCABULARY.profile_version}],
            },
            "platform": "Moodle",
            "language": "en-GB",
            "extensions": {
                EXTENSIONS.context_id: "course-1",
                EXTENSIONS.deployment_id: "deploy-1",
                EXTENSIONS.resource_link_id: "rl-1",
                EXTENSIONS.plugin: "modules",
                EXTENSIONS.event_data: {"unit": "unit-1", "score_percent": 80.0},
            },
        },
        **({"result": result} if result is not None else {}),
        "timestamp": (timestamp or datetime.now(UTC)).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        **extra,
    }


def voiding(target_id: str) -> dict:
    return {
        "actor": AUTHORITY,
        "verb": {"id": VOIDED.iri, "display": {"en-GB": "voided"}},
        "object": {"objectType": "StatementRef", "id": target_id},
    }


@pytest.fixture
def store(database):
    lrs = StatementStore(database)
    lrs.after_store.append(projector(EXTENSIONS))
    return lrs


def register(database):
    """The school's VLE, registered with the tool."""
    return add_platform(
        database,
        issuer=ISSUER,
        client_id="client-a",
        deployment_ids=["deploy-1"],
        auth_login_url=f"{ISSUER}/auth",
        auth_token_url=f"{ISSUER}/token",
        key_set_url=f"{ISSUER}/certs",
    )


def flat_rows(database) -> dict[str, FlatStatement]:
    with database.sessions() as session:
        return {row.statement_id: row for row in session.scalars(select(FlatStatement))}


# -- the projection ---------------------------------------------------------------------------------


def test_each_stored_statement_becomes_one_flat_row_with_its_fields(database, store):
    scored = statement(
        "passed",
        result={
            "score": {"scaled": 0.8, "raw": 8, "min": 0, "max": 10},
            "success": True,
            "completion": True,
            "duration": "PT1H2M3.5S",
        },
        timestamp=datetime(2026, 3, 4, 10, 30, 0, 123000, tzinfo=UTC),
    )
    [statement_id] = store.store([scored], authority=AUTHORITY)

    row = flat_rows(database)[statement_id]
    assert row.stored.tzinfo is not None and abs(row.stored - datetime.now(UTC)) < timedelta(minutes=1)
    assert row.timestamp == datetime(2026, 3, 4, 10, 30, 0, 123000, tzinfo=UTC)
    assert (row.verb_id, row.verb_display) == (VERBS["passed"].iri, "passed")
    assert (row.actor_account_homepage, row.actor_account_name) == (ISSUER, "learner-1")
    assert row.actor_ifi == f"account:{ISSUER}|learner-1"
    assert (row.actor_mbox, row.actor_name) == (None, None)
    assert row.object_id == scored["object"]["id"]
    assert (row.object_type, row.object_name) == ("Activity", "Unit 1: Diagnosing the gap")
    assert row.object_definition_type == "http://adlnet.gov/expapi/activities/lesson"
    assert row.registration == scored["context"]["registration"]
    assert row.parent_activity_id == VOCABULARY.plugin_activity("modules", "modules/closing-the-gap")
    assert row.course_activity_id == VOCABULARY.course(ISSUER, "course-1")
    assert (row.lti_context_id, row.lti_deployment_id, row.lti_resource_link_id) == (
        "course-1",
        "deploy-1",
        "rl-1",
    )
    assert (row.score_raw, row.score_scaled, row.score_min, row.score_max) == (8, 0.8, 0, 10)
    assert (row.success, row.completion) == (True, True)
    assert (row.duration, row.duration_seconds) == ("PT1H2M3.5S", 3723.5)
    assert (row.voided, row.voided_by, row.platform_id) == (False, None, None)


def test_statements_without_result_or_context_and_other_actor_kinds_still_project(database, store):
    bare = {
        "actor": {"mbox": "mailto:analyst@example.org", "name": "Analyst"},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/experienced"},
        "object": {"id": "https://elsewhere.example/activity/1"},
    }
    about_agent = {
        "actor": {"objectType": "Group", "name": "Cohort", "member": [{"mbox": "mailto:a@example.org"}]},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/attended"},
        "object": {"objectType": "Agent", "mbox_sha1sum": "a" * 40},
    }
    ids = store.store([bare, about_agent], authority=AUTHORITY)
    rows = flat_rows(database)
    first, second = rows[ids[0]], rows[ids[1]]
    assert first.actor_ifi == "mbox:mailto:analyst@example.org"
    assert (first.actor_mbox, first.actor_name) == ("mailto:analyst@example.org", "Analyst")
    assert first.timestamp == first.stored  # the LRS sets a missing timestamp to stored
    assert (first.object_type, first.registration, first.score_scaled, first.success) == (
        "Activity",
        None,
        None,
        None,
    )
    assert (first.course_activity_id, first.lti_context_id, first.duration_seconds) == (None, None, None)
    with database.sessions() as session:  # SQL NULL, not JSON null: "event_data IS NULL" finds it
        assert session.scalar(text("SELECT count(*) FROM xapi_flat_statements WHERE event_data IS NULL")) == 2
    # An anonymous Group has no identifier of its own: it is counted as one actor per statement.
    assert second.actor_ifi == f"group:{ids[1]}" and second.actor_object_type == "Group"
    assert (second.object_type, second.object_id) == ("Agent", "mbox_sha1sum:" + "a" * 40)


def test_any_valid_statement_projects_however_long_its_texts(database, store):
    """A client's statement the LRS accepts is never refused for the flat table's sake."""
    long = statement(result={"duration": "PT" + "1" * 80 + "S"})
    long["context"]["extensions"][EXTENSIONS.plugin] = "p" * 300
    long["object"]["id"] = "https://elsewhere.example/" + secrets.token_hex(1500)
    [statement_id] = store.store([long], authority=AUTHORITY)
    row = flat_rows(database)[statement_id]
    assert (len(row.plugin), len(row.duration)) == (300, 83)
    # Too long for an index key: kept as its SHA-256, which still identifies it exactly.
    assert row.object_id == "sha256:" + hashlib.sha256(long["object"]["id"].encode()).hexdigest()
    assert row.actor_ifi == f"account:{ISSUER}|learner-1"  # ordinary lengths stay as they are
    if database.engine.dialect.name == "postgresql":  # as the README tells analysts to look it up
        with database.sessions() as session:
            found = session.scalar(
                text(
                    "SELECT statement_id FROM xapi_flat_statements "
                    "WHERE object_id = 'sha256:' || encode(sha256(convert_to(:iri, 'UTF8')), 'hex')"
                ),
                {"iri": long["object"]["id"]},
            )
        assert found == statement_id


def test_a_resent_statement_adds_no_second_row_and_a_refused_batch_adds_none(database, store):
    original = statement()
    store.store([original], authority=AUTHORITY)
    store.store([original], authority=AUTHORITY)
    assert list(flat_rows(database)) == [original["id"]]

    changed = {**original, "verb": {"id": VERBS["failed"].iri}}
    with pytest.raises(StatementConflict):
        store.store([statement(), changed], authority=AUTHORITY)
    assert list(flat_rows(database)) == [original["id"]]


def test_voiding_flags_the_target_in_a_later_batch_and_in_the_same_batch(database, store):
    earlier, later = statement("scored"), statement("answered")
    store.store([earlier], authority=AUTHORITY)
    [voider] = store.store([voiding(earlier["id"])], authority=AUTHORITY)
    together = store.store([later, voiding(later["id"])], authority=AUTHORITY)

    rows = flat_rows(database)
    assert (rows[earlier["id"]].voided, rows[earlier["id"]].voided_by) == (True, voider)
    assert (rows[later["id"]].voided, rows[later["id"]].voided_by) == (True, together[1])
    # The voiding statements are rows too (verb voided, object the target), never voided themselves.
    assert (rows[voider].verb_id, rows[voider].object_type, rows[voider].object_id) == (
        VOIDED.iri,
        "StatementRef",
        earlier["id"],
    )
    assert not rows[voider].voided
    with database.sessions() as session:
        assert session.scalar(text("SELECT count(*) FROM lrs_statements WHERE voided")) == 2


def test_rows_carry_the_platform_and_go_with_it(database, store):
    platform = register(database)
    [ours] = store.store([statement()], authority=AUTHORITY, platform_id=platform.id)
    [keyed] = store.store([statement(issuer="https://other.example")], authority=AUTHORITY)
    rows = flat_rows(database)
    assert (rows[ours].platform_id, rows[keyed].platform_id) == (platform.id, None)
    with database.transaction() as session:
        session.execute(text("DELETE FROM platforms WHERE id = :id"), {"id": platform.id})
    assert list(flat_rows(database)) == [keyed]


def test_analysts_filter_with_sql_on_indexed_columns(database, store):
    store.store(
        [
            statement("completed", sub="a"),
            statement("completed", sub="b"),
            statement("experienced", sub="c"),
            statement("completed", sub="c", activity="modules/closing-the-gap/unit-2", name="Unit 2"),
        ],
        authority=AUTHORITY,
    )
    with database.sessions() as session:
        per_activity = session.execute(
            text(
                "SELECT object_name, count(DISTINCT actor_ifi) FROM xapi_flat_statements "
                "WHERE verb_id = :verb AND NOT voided GROUP BY object_name ORDER BY object_name"
            ),
            {"verb": VERBS["completed"].iri},
        ).all()
    assert per_activity == [("Unit 1: Diagnosing the gap", 2), ("Unit 2", 1)]


@pytest.mark.parametrize(
    ("iso", "seconds"),
    [
        ("PT15M", 900.0),
        ("PT0.25S", 0.25),
        ("P1DT1H", 90000.0),
        ("P2W", 1209600.0),
        ("PT1,5S", 1.5),
        ("P1M", None),  # a month has no fixed length
        ("P1Y2D", None),
        ("PT", None),
        ("1H", None),
        ("", None),
        (None, None),
    ],
)
def test_durations_become_seconds_where_they_have_a_fixed_length(iso, seconds):
    assert duration_seconds(iso) == seconds


# -- the analytics page -------------------------------------------------------------------------

ADMIN_SPEC = LaunchSpec(sub="vle-admin", roles=[ADMIN])


@pytest.fixture
def analytics_tool(make_tool, platform):
    server = make_tool()
    registered = server.register(platform)
    return server, registered


def admin_page(server, platform, **params):
    browser = Browser()
    landing = browser.launch(server, platform, ADMIN_SPEC)
    assert landing.status_code == 200
    [link] = lxml.html.fromstring(landing.text).xpath("//a[@data-admin-analytics]")
    page = browser.get(server.base_url + link.get("href"), params=params)
    return browser, page


def seed(server, platform_id: int) -> dict[str, str]:
    """Three people in two activities over three days, with scores; one statement voided."""
    lrs = statement_store(server.tool)  # the tool's own store: the projection is installed on it
    today = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    unit, survey = "modules/closing-the-gap/unit-1", "diagnostics/gap-analysis"
    batch = [
        statement("launched", sub="a", timestamp=today - timedelta(days=2)),
        statement("launched", sub="b", timestamp=today - timedelta(days=2)),
        statement("launched", sub="c", timestamp=today - timedelta(days=1)),
        statement("completed", sub="a", result={"completion": True}, timestamp=today - timedelta(days=1)),
        statement("passed", sub="a", result={"score": {"scaled": 0.85}, "success": True}, timestamp=today),
        statement("completed", sub="b", result={"completion": True}, timestamp=today),
        statement("scored", sub="b", result={"score": {"scaled": 0.42}}, timestamp=today),
        statement("experienced", sub="a", activity=survey, name="Gap analysis", timestamp=today),
        statement("scored", sub="a", activity=survey, name="Gap analysis", result={"score": {"scaled": 1.0}}),
    ]
    wrong = statement("passed", sub="c", result={"score": {"scaled": 0.05}, "success": True}, timestamp=today)
    lrs.store([*batch, wrong], authority=AUTHORITY, platform_id=platform_id)
    lrs.store([voiding(wrong["id"])], authority=AUTHORITY, platform_id=platform_id)
    # Another school's statements never show on this platform's page.
    lrs.store([statement("completed", sub="z", issuer="https://other.example")], authority=AUTHORITY)
    return {
        "unit": VOCABULARY.plugin_activity("modules", unit),
        "survey": VOCABULARY.plugin_activity("modules", survey),
    }


def test_an_administrator_sees_statements_per_day_the_funnel_and_scores(analytics_tool, platform):
    server, registered = analytics_tool
    activities = seed(server, registered.id)
    _, page = admin_page(server, platform, days=7)
    assert page.status_code == 200
    doc = lxml.html.fromstring(page.text)

    # 10 statements recorded, 1 voided, the voiding one left out: 9, by 3 people.
    assert doc.xpath("string(//*[@data-statements])") == "9"
    assert doc.xpath("string(//*[@data-people])") == "3"
    per_day = [int(td.text) for td in doc.xpath("//table[@data-per-day]//td")]
    assert len(per_day) == 7 and per_day[-3:] == [2, 2, 5]

    funnel = {
        tr.get("data-activity"): [
            int(tr.xpath(f"string(td[@data-{step}])")) for step in ("started", "completed", "passed")
        ]
        for tr in doc.xpath("//table[@data-funnel]//tr[@data-activity]")
    }
    assert funnel == {activities["unit"]: [3, 2, 1], activities["survey"]: [1, 0, 0]}

    bands = {th.text: int(th.getnext().text) for th in doc.xpath("//table[@data-scores]//th[@scope='row']")}
    assert list(bands) == list(SCORE_BANDS)
    assert (bands["0.4–0.5"], bands["0.8–0.9"], bands["0.9–1.0"], bands["0.0–0.1"]) == (1, 1, 1, 0)

    # Each chart is an accessible SVG image: labelled by its own title and description.
    charts = doc.xpath("//svg[@role='img']")
    assert len(charts) == 3
    for chart in charts:
        title_id, desc_id = chart.get("aria-labelledby").split()
        assert doc.xpath(f"string(//*[@id='{title_id}'])") and doc.xpath(f"string(//*[@id='{desc_id}'])")
    assert "<script" not in page.text
    assert "frame-ancestors" in page.headers["Content-Security-Policy"]
    assert PASSED_VERBS[0] not in page.text  # IRIs stay out of a person's view: names are shown


def test_scores_can_be_narrowed_to_one_activity(analytics_tool, platform):
    server, registered = analytics_tool
    activities = seed(server, registered.id)
    _, page = admin_page(server, platform, activity=activities["survey"])
    doc = lxml.html.fromstring(page.text)
    bands = {th.text: int(th.getnext().text) for th in doc.xpath("//table[@data-scores]//th[@scope='row']")}
    assert sum(bands.values()) == 1 and bands["0.9–1.0"] == 1
    assert doc.xpath("string(//select[@id='activity']/option[@selected])") == "Gap analysis"


def test_candidates_and_requests_without_a_launch_are_refused_the_analytics_page(analytics_tool, platform):
    server, _ = analytics_tool
    assert "data-admin-analytics" not in Browser().launch(server, platform).text
    _, token = launch_context(server, platform, sub="cand-2")
    refused = Browser().get(server.base_url + "/admin/analytics", params={"launch": token})
    assert refused.status_code == 403 and "Your role in this course does not give access" in refused.text
    assert Browser().get(server.base_url + "/admin/analytics").status_code == 401


def test_an_empty_period_says_so(analytics_tool, platform):
    server, _ = analytics_tool
    _, page = admin_page(server, platform, days=9999)  # an unknown period falls back to 30 days
    doc = lxml.html.fromstring(page.text)
    assert doc.xpath("string(//*[@data-statements])") == "0"
    assert doc.xpath("//*[@data-no-funnel]") and doc.xpath("//*[@data-no-scores]")
    assert len(doc.xpath("//table[@data-per-day]//td")) == 30


def test_the_analytics_queries_count_utc_days_funnels_and_bands_on_each_backend(database, store):
    platform = register(database)
    today = datetime.now(UTC).date()
    midnight = datetime.combine(today, datetime.min.time(), tzinfo=UTC)
    # 23:59:59.999 yesterday (UTC) and 00:00 today: the day boundary is UTC's whatever the offset.
    late = (midnight - timedelta(milliseconds=1)).astimezone(timezone(timedelta(hours=-5)))
    store.store(
        [
            statement("launched", sub="a", timestamp=late),
            statement(
                "completed", sub="a", result={"completion": True, "score": {"scaled": -0.5}}, timestamp=midnight
            ),
            statement("passed", sub="b", result={"success": True, "score": {"scaled": 0.1}}, timestamp=midnight),
        ],
        authority=AUTHORITY,
        platform_id=platform.id,
    )
    since = analytics.period_start(2, today)
    with database.sessions() as session:
        assert analytics.statements_per_day(session, platform.id, 2, today) == [
            (today - timedelta(days=1), 1),
            (today, 2),
        ]
        [step] = analytics.completion_funnel(session, platform.id, since)
        assert (step.started, step.completed, step.passed) == (2, 2, 1)
        bands = dict(analytics.score_distribution(session, platform.id, since))
        assert (bands["below 0"], bands["0.1–0.2"], sum(bands.values())) == (1, 1, 2)
        assert analytics.overview(session, platform.id, since) == analytics.Overview(3, 2, 2)
        assert analytics.statements_per_day(session, platform.id + 1, 2, today)[-1] == (today, 0)


# -- the OpenAPI document of the query side -----------------------------------------------------------


@pytest.fixture
def lrs_server(make_tool):
    server = make_tool()
    key, secret = create_key(server.db, "all", "analytics team")
    return server, (key, secret)


def documented(doc: dict, name: str) -> Draft202012Validator:
    """A validator for one of the document's schemas, its $refs resolved within the document."""
    return Draft202012Validator({**doc, "$ref": f"#/components/schemas/{name}"})


def test_the_openapi_document_is_valid_openapi_3_1_and_names_every_query_parameter(lrs_server):
    server, _ = lrs_server
    response = requests.get(server.base_url + "/xapi/openapi.json", timeout=10)
    assert response.status_code == 200 and response.headers["Content-Type"] == "application/json"
    doc = response.json()
    validate_openapi(doc)  # raises on any departure from the OpenAPI 3.1 schema
    assert doc["openapi"] == "3.1.0"
    get = doc["paths"]["/statements"]["get"]
    names = {p["name"] for p in get["parameters"] if p["in"] == "query"}
    assert names == QUERY_PARAMS | SINGLE_PARAMS
    assert {"200", "400", "401", "403", "404"} <= set(get["responses"])
    assert doc["components"]["securitySchemes"]["lrsKey"] == {
        "type": "http",
        "scheme": "basic",
        "description": doc["components"]["securitySchemes"]["lrsKey"]["description"],
    }


def test_the_lrs_answers_as_the_openapi_document_says(lrs_server):
    server, credentials = lrs_server
    doc = requests.get(server.base_url + "/xapi/openapi.json", timeout=10).json()
    headers = {"X-Experience-API-Version": "2.0.0"}
    url = server.base_url + "/xapi/statements"
    sent = [statement(sub=f"p{n}") for n in range(3)]
    posted = requests.post(url, json=sent, headers=headers, auth=credentials, timeout=10)
    assert posted.status_code == 200, posted.text

    page = requests.get(
        url, params={"limit": 2, "verb": VERBS["completed"].iri}, headers=headers, auth=credentials, timeout=10
    )
    assert page.status_code == 200
    documented(doc, "StatementResult").validate(page.json())
    for header in doc["paths"]["/statements"]["get"]["responses"]["200"]["headers"]:
        assert header in page.headers, header
    assert len(page.json()["statements"]) == 2 and page.json()["more"]
    rest = requests.get(server.base_url + page.json()["more"], headers=headers, auth=credentials, timeout=10)
    assert [s["id"] for s in rest.json()["statements"]] == [sent[0]["id"]]

    one = requests.get(url, params={"statementId": sent[1]["id"]}, headers=headers, auth=credentials, timeout=10)
    documented(doc, "Statement").validate(one.json())

    refusals = {
        401: requests.get(url, headers=headers, timeout=10),
        400: requests.get(url, params={"since": "2026-13-01"}, headers=headers, auth=credentials, timeout=10),
        404: requests.get(
            url, params={"statementId": str(uuid.uuid4())}, headers=headers, auth=credentials, timeout=10
        ),
    }
    for status, answer in refusals.items():
        assert answer.status_code == status, answer.text
        documented(doc, "Error").validate(answer.json())
        assert answer.json()["error"]["code"] == status
    assert refusals[400].json()["error"]["message"].startswith("since:")


# -- the README's example queries -----------------------------------------------------------------


def readme_queries() -> dict[str, str]:
    """The README's example SQL of the Analytics section, by their first comment line."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("\n## Analytics\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sql\n(.*?)```", section, flags=re.S)
    return {block.splitlines()[0].removeprefix("-- "): block for block in blocks if block.startswith("-- ")}


def tool_statement(kind: str, sub: str, plugin: str, activity: str, *, course: str = "course-1", **data) -> dict:
    made = statement(
        kind, sub=sub, activity=activity, name=activity.replace("-", " ").capitalize(), **data.pop("extra", {})
    )
    made["object"]["id"] = VOCABULARY.plugin_activity(plugin, activity)
    extensions = made["context"]["extensions"]
    extensions[EXTENSIONS.plugin] = plugin
    extensions[EXTENSIONS.context_id] = course
    extensions[EXTENSIONS.event_data] = data
    return made


@pytest.mark.postgres
def test_the_readme_example_queries_answer_what_they_say(postgres_schema_url):
    database = Database(postgres_schema_url)
    database.upgrade()
    try:
        lrs = StatementStore(database)
        lrs.after_store.append(projector(EXTENSIONS))
        ctg, quality = "closing-the-gap", "improving-the-quality-of-teaching"
        passed = {"result": {"success": True, "completion": True}}
        failed = {"result": {"success": False, "completion": True}}
        wrong = tool_statement("completed", "c", "modules", ctg)
        lrs.store(
            [
                *(tool_statement("launched", sub, "modules", ctg) for sub in ("a", "b", "c")),
                tool_statement("launched", "d", "modules", ctg, course="course-2"),
                tool_statement("launched", "a", "modules", quality),
                tool_statement("completed", "a", "modules", ctg),
                tool_statement("completed", "b", "modules", ctg),
                wrong,
                tool_statement("experienced", "a", "gap-analyser", "analysis"),
                tool_statement("experienced", "d", "gap-analyser", "analysis", course="course-2"),
                tool_statement(
                    "answered", "a", "modules", ctg, unit="u1", check="c1", score_percent=80, extra=passed
                ),
                tool_statement(
                    "answered", "b", "modules", ctg, unit="u1", check="c1", score_percent=40, extra=failed
                ),
                tool_statement(
                    "answered", "a", "modules", ctg, unit="u2", check="c2", score_percent=100, extra=passed
                ),
                tool_statement("answered", "b", "modules", ctg, unit="u2", reflection="r1"),
            ],
            authority=AUTHORITY,
        )
        lrs.store([voiding(wrong["id"])], authority=AUTHORITY)
        queries = readme_queries()
        assert set(queries) == {
            "Completion rate per module",
            "Gap-analysis uptake: of the candidates in Closing the Gap, per course, who used the gap analyser",
            "Knowledge-check scores per unit",
            "Active candidates per week (the last 12 weeks, weeks starting on Monday, UTC)",
            # Run by test_one_statement_is_found_by_id_as_the_readme_says.
            "One statement by its id (ids are stored in lower case)",
        }
        with database.sessions() as session:

            def run(title: str) -> list[tuple]:
                return [tuple(row) for row in session.execute(text(queries[title])).all()]

            assert run("Completion rate per module") == [
                ("Closing the gap", 4, 2, Decimal("50.0")),
                ("Improving the quality of teaching", 1, 0, Decimal("0.0")),
            ]
            assert run(next(q for q in queries if q.startswith("Gap-analysis uptake"))) == [
                ("course-1", 3, 1, Decimal("33.3")),
                ("course-2", 1, 1, Decimal("100.0")),
            ]
            assert run("Knowledge-check scores per unit") == [
                ("Closing the gap", "u1", 2, Decimal("60.0"), Decimal("50.0")),
                ("Closing the gap", "u2", 1, Decimal("100.0"), Decimal("100.0")),
            ]
            [(week, active)] = run(next(q for q in queries if q.startswith("Active candidates per week")))
            assert active == 4 and week == datetime.now(UTC).date() - timedelta(days=datetime.now(UTC).weekday())
    finally:
        database.dispose()


# -- the charts -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("highest", "top", "step"),
    [(0, 1, 1), (2, 2, 1), (5, 5, 1), (7, 8, 2), (11, 15, 5), (26, 30, 10), (101, 150, 50), (9999, 10000, 2000)],
)
def test_count_axes_have_whole_number_ticks_and_at_most_five_steps(highest, top, step):
    assert charts.axis(highest) == (top, step)


def test_chart_labels_from_statements_are_escaped():
    hostile = '<script>alert("x")</script>'
    drawn = str(charts.grouped_bars("f", hostile, "d", [hostile], [charts.Series("Started", [3])]))
    drawn += str(charts.column_chart("c", "t", hostile, [hostile], [1], unit="statements"))
    assert "<script>" not in drawn and "&lt;script&gt;" in drawn
    assert lxml.etree.fromstring(drawn.split("</svg>")[0] + "</svg>").get("role") == "img"


def test_one_statement_is_found_by_id_as_the_readme_says(database, store):
    first, second = statement("launched"), statement("completed")
    store.store([first, second], authority=AUTHORITY)
    query = readme_queries()["One statement by its id (ids are stored in lower case)"]
    with database.sessions() as session:
        [row] = session.execute(text(query.replace("2f4c8a8e-5d1b-4c57-9e0b-1f0a7c3d9e21", second["id"]))).all()
    assert (row.statement_id, row.verb_id) == (second["id"], VERBS["completed"].iri)
    assert row.seq == flat_rows(database)[first["id"]].seq + 1


def test_migration_0011_keys_the_existing_flat_rows_by_their_statements_seq(database_url):
    db = Database(database_url)
    try:
        db.upgrade("0010")
        flat_columns = "statement_id, stored, timestamp, verb_id, actor_ifi, actor_object_type, object_id, object_type, voided"
        with db.transaction() as session:
            for seq, statement_id in ((5, "a" * 36), (9, "b" * 36)):
                session.execute(
                    text(
                        "INSERT INTO lrs_statements (seq, id, stored_ms, voided, has_attachments, statement) "
                        "VALUES (:seq, :id, 0, false, false, '{}')"
                    ),
                    {"seq": seq, "id": statement_id},
                )
            # "c..." has no statement (as if deleted by hand): it cannot be keyed, so it goes.
            for statement_id, verb in (("b" * 36, "v-b"), ("a" * 36, "v-a"), ("c" * 36, "v-c")):
                session.execute(
                    text(
                        f"INSERT INTO xapi_flat_statements ({flat_columns}) VALUES "
                        "(:id, :t, :t, :verb, 'actor', 'Agent', 'object', 'Activity', false)"
                    ),
                    {"id": statement_id, "t": datetime(2026, 11, 22, tzinfo=UTC), "verb": verb},
                )
        db.upgrade()
        with db.sessions() as session:
            rows = session.execute(
                select(FlatStatement.seq, FlatStatement.statement_id, FlatStatement.verb_id).order_by(
                    FlatStatement.seq
                )
            ).all()
    finally:
        db.dispose()
    assert [tuple(row) for row in rows] == [(5, "a" * 36, "v-a"), (9, "b" * 36, "v-b")]
