"""Forwarding statements to an external LRS, across outages, in batches, with no loss or duplicate.

The "external" LRS is a second instance of the tool (its own database, its own LRS key) served
on another port; taking it down closes its socket, so the tool's POSTs are refused as they would
be by an LRS that is away, and bringing it back serves the same app on the same port again.
"""

from __future__ import annotations

import json
import threading
import time

import pytest
import requests
from sqlalchemy import select
from werkzeug.serving import make_server

from lti_tool.events import LearningEvent, Result
from lti_tool.models import LearningEventRow, OutboxMessage
from lti_tool.outbox import Policy
from lti_tool.worker import Worker
from xapi import vocabulary
from xapi.lrs.auth import create_key
from xapi.lrs.store import comparable

from . import plugin_install
from .platform_emulator import TestPlatform
from .test_xapi_statements import PLUGIN, Candidate, check_valid, read_all, redeliver

FAST = Policy(backoff_base_seconds=0.001, backoff_max_seconds=0.005, max_attempts=2, lease_seconds=30)
QUIZ = {"title": "Quiz", "custom": {"npqsl_plugin": PLUGIN, "npqsl_activity": "quiz"}}


class ExternalLrs:
    """A second tool instance acting as the external LRS; ``down()``/``up()`` keep its port."""

    def __init__(self, server):
        self.server = server
        self.port = server._server.server_port
        self.url = server.base_url + "/xapi"
        self.write_key = create_key(server.db, "write")
        self.read_key = create_key(server.db, "read")

    def down(self) -> None:
        self.server._server.shutdown()
        self.server._server.server_close()
        self.server._thread.join(5)

    def up(self) -> None:
        self.server._server = make_server("127.0.0.1", self.port, self.server.app, threaded=True)
        self.server._thread = threading.Thread(target=self.server._server.serve_forever, daemon=True)
        self.server._thread.start()

    def statements(self) -> list[dict]:
        return read_all(self.server, self.read_key)


def forward_to(external: ExternalLrs, name="ext", version="2.0.0", batch_size=10, password=None) -> dict:
    key, secret = external.write_key
    return {
        "forward": [
            {
                "name": name,
                "url": external.url,
                "username": key,
                "password": secret if password is None else password,
                "version": version,
                "batch_size": batch_size,
            }
        ]
    }


@pytest.fixture
def site(tmp_path):
    plugin_install.install(tmp_path / "site", {PLUGIN: "npqsl_example_plugin:plugin"})
    platform = TestPlatform().start()
    yield platform
    platform.stop()
    plugin_install.uninstall(tmp_path / "site")


def setup_forwarding(make_tool, platform, **forward):
    external = ExternalLrs(make_tool())
    server = make_tool(xapi=forward_to(external, **forward))
    server.register(platform)
    sent: list[tuple[str, int, int]] = []

    def note(response, *args, **kwargs):
        if not response.request.url.startswith(external.url):
            return  # the platform's key set, fetched at launch
        body = response.request.body or b"[]"
        batch = json.loads(body)
        sent.append((response.request.method, response.status_code, len(batch) if isinstance(batch, list) else 1))

    server.tool.http.hooks["response"].append(note)
    return server, external, sent


def rows(server, receiver: str) -> list[OutboxMessage]:
    with server.db.sessions() as session:
        return list(
            session.scalars(
                select(OutboxMessage).where(OutboxMessage.receiver == receiver).order_by(OutboxMessage.id)
            )
        )


def deliver_all(server, receiver: str = "ext", timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while any(r.status == "pending" for r in rows(server, receiver)):
        assert time.monotonic() < deadline, [(r.id, r.status, r.last_error) for r in rows(server, receiver)]
        Worker(server.app, policy=FAST).drain()
        time.sleep(0.01)


def expected_ids(server) -> set[str]:
    with server.db.sessions() as session:
        return {vocabulary.statement_id(e.id) for e in session.scalars(select(LearningEventRow))}


def busy_candidates(server, platform, subs, rounds: int) -> None:
    people = [Candidate(server, platform, QUIZ, sub=sub) for sub in subs]
    for round_ in range(rounds):
        for person in people:
            person.emit(
                LearningEvent(
                    "progressed", f"closing-the-gap/unit-{round_}", Result(score_raw=round_, score_max=9)
                ),
                LearningEvent("answered", f"closing-the-gap/unit-{round_}/check", Result(response=f"r{round_}")),
            )
            person.score(round_ % 10)


def test_every_statement_reaches_the_external_lrs_exactly_once_across_an_outage(make_tool, site):
    server, external, sent = setup_forwarding(make_tool, site)
    busy_candidates(server, site, ["alex", "sam", "kim"], rounds=1)
    deliver_all(server)
    assert {s["id"] for s in external.statements()} == expected_ids(server)

    external.down()
    busy_candidates(server, site, ["alex", "sam", "kim", "jo"], rounds=3)
    for _ in range(FAST.max_attempts + 3):
        Worker(server.app, policy=FAST).drain()
        time.sleep(0.01)
    waiting = [r for r in rows(server, "ext") if r.status == "pending"]
    assert len(waiting) > 20
    # Refused connections are transient: retried past max_attempts, never parked as dead.
    assert max(r.attempts for r in waiting) > FAST.max_attempts
    assert all("ConnectionError" in r.last_error for r in waiting if r.attempts)
    # The embedded LRS is another receiver: the outage does not hold it back.
    deliver_all(server, "lrs")

    external.up()
    deliver_all(server)

    forwarded = external.statements()
    ids = [s["id"] for s in forwarded]
    assert len(ids) == len(set(ids)) and set(ids) == expected_ids(server)
    assert {r.status for r in rows(server, "ext")} == {"delivered"}
    # The same statements as in the embedded LRS, apart from what each LRS adds.
    embedded = {s["id"]: s for s in read_all(server, create_key(server.db, "read"))}
    for statement in forwarded:
        check_valid(statement)
        assert comparable(statement) == comparable(embedded[statement["id"]])
    # Arrays of statements, not one POST each.
    posts = [size for method, status, size in sent if method == "POST" and status == 200]
    assert max(posts) > 1 and sum(posts) == len(ids)


def test_a_statement_the_lrs_already_holds_counts_as_delivered_and_holds_nothing_back(make_tool, site):
    server, external, sent = setup_forwarding(make_tool, site, version="1.0.3")
    alex = Candidate(server, site, QUIZ, sub="alex")
    ids = alex.emit(*(LearningEvent("experienced", f"closing-the-gap/unit-{i}") for i in range(4)))
    alex.score(6)
    # The external LRS has one of the ids already, with other content (another tool sent it).
    taken = vocabulary.statement_id(ids[1])
    squatter = {
        "id": taken,
        "actor": {"objectType": "Agent", "account": {"homePage": "https://elsewhere.example", "name": "x"}},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/experienced"},
        "object": {"objectType": "Activity", "id": "https://elsewhere.example/activity"},
    }
    put = requests.put(
        external.url + "/statements",
        params={"statementId": taken},
        json=squatter,
        auth=external.write_key,
        headers={"X-Experience-API-Version": "1.0.3"},
        timeout=10,
    )
    assert put.status_code == 204, put.text

    deliver_all(server)

    assert {r.status for r in rows(server, "ext")} == {"delivered"}
    held = {s["id"]: s for s in external.statements()}
    assert set(held) == expected_ids(server)
    assert held[taken]["actor"]["account"]["homePage"] == "https://elsewhere.example"
    statuses = [(method, status) for method, status, _ in sent]
    assert ("POST", 409) in statuses and ("PUT", 409) in statuses and ("PUT", 204) in statuses
    with server.db.sessions() as session:
        conflicted = session.scalars(
            select(OutboxMessage).where(OutboxMessage.receiver == "ext", OutboxMessage.event_id == ids[1])
        ).one()
    assert conflicted.last_status == 409


def test_a_re_sent_batch_is_not_stored_twice(make_tool, site):
    server, external, _ = setup_forwarding(make_tool, site)
    alex = Candidate(server, site, QUIZ, sub="alex")
    alex.score(4)
    deliver_all(server)
    before = external.statements()

    # As if a worker died after the LRS accepted the batch but before the answers were recorded.
    assert all(answer.is_delivered for answer in redeliver(server, "ext"))
    assert sorted(s["id"] for s in external.statements()) == sorted(s["id"] for s in before)


def test_wrong_credentials_are_refused_and_parked_with_the_lrs_answer(make_tool, site):
    server, external, sent = setup_forwarding(make_tool, site, password="not-the-secret")
    Candidate(server, site, QUIZ, sub="alex").score(3)
    deliver_all(server)
    dead = rows(server, "ext")
    assert dead and {r.status for r in dead} == {"dead"}
    assert {r.last_status for r in dead} == {401}
    # One POST per attempt: a refused key is not tried statement by statement.
    assert all(method == "POST" for method, _, _ in sent)
    assert external.statements() == []


def test_a_forward_named_like_another_receiver_stops_the_tool(make_tool, site):
    from lti_tool.settings import SettingsError

    external = ExternalLrs(make_tool())
    with pytest.raises(SettingsError, match="'lrs' is taken"):
        make_tool(xapi=forward_to(external, name="lrs"))
