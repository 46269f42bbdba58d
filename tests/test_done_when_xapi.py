"""Issue 5, "Done when": the same learning events through the embedded LRS, forwarding and export.

The example plugin is launched from the test platform over HTTP and its events (one of every
kind, the launch and the score from its own views included) go through the outbox worker.
Each becomes one valid, profile-tagged statement in the embedded LRS; each reaches a second
LRS (another tool instance on another port) although that LRS is down while most of them are
made; and each is in the exports `npqsl-lti xapi export --format jsonl|csv` writes from the
tool's database. The piece-by-piece behaviour is tested in test_xapi_statements.py,
test_xapi_forwarding.py and test_xapi_export.py; this test holds them together on one set of
events, on SQLite and (marked ``postgres``) on PostgreSQL.
"""

from __future__ import annotations

import csv
import io
import json
import time

from sqlalchemy import select

from lti_tool.events import EVENT_KINDS
from lti_tool.models import LearningEventRow
from lti_tool.worker import Worker
from xapi import vocabulary
from xapi.export import CSV_COLUMNS
from xapi.lrs.auth import create_key
from xapi.lrs.store import comparable

from .test_done_when_programme import cli
from .test_xapi_forwarding import (
    FAST,
    QUIZ,
    ExternalLrs,
    deliver_all,
    forward_to,
    rows,
    site,  # noqa: F401 - the fixture: the example plugin, a test platform
)
from .test_xapi_statements import PLUGIN, Candidate, check_valid, every_kind, read_all


def test_every_event_of_the_test_plugin_is_stored_forwarded_across_an_outage_and_exported(
    make_tool,
    site,  # noqa: F811 - the fixture imported above
    database_url,
):
    platform = site
    external = ExternalLrs(make_tool())
    server = make_tool(database_url, xapi=forward_to(external))
    server.register(platform)

    # Before the outage: a launch and a score, through the plugin's own pages.
    alex = Candidate(server, platform, QUIZ, sub="alex")
    alex.score(7)
    deliver_all(server)
    before = {s["id"] for s in external.statements()}
    assert len(before) == 2

    # The external LRS goes away; the candidates carry on, with an event of every kind.
    external.down()
    made_during = every_kind(alex)
    sam = Candidate(server, platform, QUIZ, sub="sam")
    sam.score(9)
    for _ in range(FAST.max_attempts + 2):
        Worker(server.app, policy=FAST).drain()
        time.sleep(0.01)
    waiting = [r for r in rows(server, "ext") if r.status == "pending"]
    assert len(waiting) == len(made_during) + 2  # and sam's launch and score
    tried = [r for r in waiting if r.attempts]
    assert tried and all("ConnectionError" in r.last_error for r in tried)
    assert {r.status for r in rows(server, "lrs")} == {"delivered"}  # the embedded LRS did not wait

    external.up()
    deliver_all(server)
    assert {r.status for r in rows(server, "ext")} == {"delivered"}

    with server.db.sessions() as session:
        events = list(session.scalars(select(LearningEventRow).order_by(LearningEventRow.recorded_at)))
    assert {e.plugin_key for e in events} == {PLUGIN}
    assert {e.kind for e in events} == set(EVENT_KINDS)
    expected = {vocabulary.statement_id(e.id): e for e in events}
    assert before < set(expected)

    # 1. The embedded LRS, read through its Statements API with a read key.
    vocab = vocabulary.Vocabulary.from_settings(server.settings)
    embedded = {s["id"]: s for s in read_all(server, create_key(server.db, "read"))}
    assert set(embedded) == set(expected)
    for statement_id, event in expected.items():
        statement = embedded[statement_id]
        check_valid(statement)
        assert statement["verb"]["id"] == vocabulary.VERBS[event.kind].iri
        assert [a["id"] for a in statement["context"]["contextActivities"]["category"]] == [vocab.profile_version]
        assert statement["object"]["id"] == vocab.plugin_activity(PLUGIN, event.activity)

    # 2. The external LRS: the same statements, once each, apart from what each LRS adds.
    forwarded = external.statements()
    assert sorted(s["id"] for s in forwarded) == sorted(expected)
    for statement in forwarded:
        check_valid(statement)
        assert comparable(statement) == comparable(embedded[statement["id"]])

    # 3. The exports, written by the command from the tool's database.
    exported = [json.loads(line) for line in cli(server, "xapi", "export", "--format", "jsonl").splitlines()]
    assert sorted(s["id"] for s in exported) == sorted(expected)
    assert all(s == embedded[s["id"]] for s in exported)  # exactly as the LRS keeps them
    table = list(csv.DictReader(io.StringIO(cli(server, "xapi", "export", "--format", "csv"))))
    assert list(table[0]) == list(CSV_COLUMNS)
    assert sorted(row["statement_id"] for row in table) == sorted(expected)
    for row in table:
        statement = embedded[row["statement_id"]]
        assert row["verb"] == statement["verb"]["id"] and row["object"] == statement["object"]["id"]
        assert row["actor"] == f"account:{platform.issuer}|{statement['actor']['account']['name']}"
        assert row["registration"] == statement["context"]["registration"]
        assert row["lti_context_id"] == "course-1"
