"""AGS grade sync over real HTTP: the example plugin's scores reach the test platform's gradebook.

The test platform follows Moodle's gradebook services (see ``platform_emulator``): it compares
timestamps in whole seconds, answers 409 to one at or before the stored time, nulls a grade for a
non-final score, and keeps created line items as separate manual columns. Scores go through the
outbox worker, as in production.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, select

from lti_tool import grades
from lti_tool import launch as launches
from lti_tool.events import LearningEvent, Result
from lti_tool.models import AgsEndpoint, AgsLineItem, AgsScoreState, Launch, OutboxMessage
from lti_tool.outbox import Policy
from lti_tool.worker import Worker, WorkerThreads

from . import plugin_install
from .browser import Browser
from .platform_emulator import (
    INSTRUCTOR,
    LEARNER,
    LINEITEM_READ_SCOPE,
    RESULT_READ_SCOPE,
    SCORE_SCOPE,
    LaunchSpec,
    TestPlatform,
)

PLUGIN = "example-reflection"
RESOURCE_ID = "example-reflection:quiz"
# Retries come at once in tests; a refused score is dead after its first attempt.
FAST = Policy(backoff_base_seconds=0.001, backoff_max_seconds=0.005, max_attempts=1, lease_seconds=30)


@pytest.fixture
def gradebook(make_tool, tmp_path):
    yield from _gradebook(make_tool, tmp_path)


@pytest.fixture
def gradebook_on(make_tool, tmp_path, database_url):
    """The same, on SQLite and (marked ``postgres``) on PostgreSQL."""
    yield from _gradebook(make_tool, tmp_path, database_url)


def _gradebook(make_tool, tmp_path, database_url=None):
    plugin_install.install(tmp_path / "site", {PLUGIN: "npqsl_example_plugin:plugin"})
    platform = TestPlatform().start()
    server = make_tool(database_url)
    server.register(platform)
    # Only the gradebook: other installed receivers (xAPI, ...) are not under test here.
    server.tool.events.receivers[:] = [r for r in server.tool.events.receivers if r.name == "ags"]
    yield server, platform
    platform.stop()
    plugin_install.uninstall(tmp_path / "site")


class Candidate:
    """One person's browser, launched into the example quiz."""

    def __init__(self, server, platform, sub="cand-1", link="rl-1", **spec):
        self.server = server
        self.sub = sub
        self.browser = Browser()
        spec.setdefault("roles", [LEARNER])
        launch_spec = LaunchSpec(
            sub=sub,
            resource_link={"id": link, "title": "Quiz: Closing the Gap"},
            custom={"npqsl_plugin": PLUGIN, "npqsl_activity": "quiz"},
            **spec,
        )
        page = self.browser.launch(server, platform, launch_spec)
        assert page.status_code == 200, page.text
        self.token = re.search(r"data-launch>([^<]+)<", page.text).group(1)

    @property
    def context(self):
        return launches.load(self.server.db, self.server.tool.launch_tokens.read(self.token))

    def score(self, value: float) -> None:
        response = self.browser.post(
            self.server.base_url + f"/p/{PLUGIN}/score", data={"launch": self.token, "score": str(value)}
        )
        assert response.status_code == 200, response.text

    def emit(self, event: LearningEvent) -> None:
        with self.server.tool.events.record(self.context, PLUGIN) as rec:
            rec.emit(event)


def ags_rows(server) -> list[OutboxMessage]:
    with server.db.sessions() as session:
        return list(
            session.scalars(
                select(OutboxMessage).where(OutboxMessage.receiver == "ags").order_by(OutboxMessage.id)
            )
        )


def deliver(server, policy: Policy = FAST) -> Worker:
    """Run one worker over everything due, as `npqsl-lti worker` would."""
    worker = Worker(server.app, policy=policy)
    worker.drain()
    return worker


def deliver_all(server, timeout: float = 15.0, policy: Policy = FAST) -> None:
    """Keep draining (retries wait out their short backoff) until no AGS row is pending."""
    deadline = time.monotonic() + timeout
    while any(r.status == "pending" for r in ags_rows(server)):
        assert time.monotonic() < deadline, [
            (r.id, r.status, r.last_status, r.last_error) for r in ags_rows(server)
        ]
        deliver(server, policy)
        time.sleep(0.01)


def column(platform, **match) -> dict:
    items = [c for c in platform.gradebook() if all(c[k] == v for k, v in match.items())]
    assert len(items) == 1, platform.gradebook()
    return items[0]


def history(platform, sub: str, **match) -> list[dict]:
    return column(platform, **match)["grades"][sub]["history"]


def stamps(entries: list[dict]) -> list[datetime]:
    return [datetime.fromisoformat(h["timestamp"]) for h in entries]


def score_requests(platform) -> list[dict]:
    return [r for r in platform.ags_requests if r["method"] == "POST" and "/scores" in r["url"]]


# -- the way in ---------------------------------------------------------------------------------


def test_a_quiz_score_lands_in_the_activitys_own_grade_item(gradebook):
    server, platform = gradebook
    item = platform.add_grade_item("rl-1", "Example knowledge check", 10, resource_id=RESOURCE_ID, tag="example")
    alex = Candidate(server, platform)
    alex.score(7)
    [row] = ags_rows(server)
    assert row.status == "pending"  # nothing is sent inside the request

    deliver(server)

    assert [r.status for r in ags_rows(server)] == ["delivered"]
    grade = column(platform, id=platform.lineitem_url(item))["grades"]["cand-1"]
    assert (grade["score"], grade["maximum"], grade["gradingProgress"]) == (7.0, 10.0, "FullyGraded")
    [sent] = grade["history"]
    assert sent["userId"] == "cand-1" and sent["scoreGiven"] == 7 and sent["scoreMaximum"] == 10
    assert sent["activityProgress"] == "Completed"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", sent["timestamp"])
    # The claim named the line item: no container lookups, and a token for the score scope alone.
    assert [r["method"] for r in platform.ags_requests] == ["POST"]
    assert [t["scope"] for t in platform.token_requests] == [SCORE_SCOPE]


def test_without_a_line_item_claim_one_manual_column_is_created_and_reused(gradebook):
    server, platform = gradebook
    alex = Candidate(server, platform, sub="alex")
    sam = Candidate(server, platform, sub="sam")
    alex.score(4)
    sam.score(9)
    alex.score(6)

    deliver_all(server)

    created = column(platform, resourceId=RESOURCE_ID)
    assert created["manual"] and created["tag"] == "example" and created["resourceLinkId"] == "rl-1"
    assert created["label"] == "Quiz: Closing the Gap" and created["scoreMaximum"] == 10
    assert [h["scoreGiven"] for h in created["grades"]["alex"]["history"]] == [4, 6]
    assert created["grades"]["sam"]["score"] == 9
    posts = [
        r for r in platform.ags_requests if r["method"] == "POST" and r["url"].split("?")[0].endswith("/lineitems")
    ]
    lists = [r for r in platform.ags_requests if r["method"] == "GET" and "/lineitems?" in r["url"]]
    assert len(posts) == 1 and len(lists) == 1  # looked for once, created once, then cached
    with server.db.sessions() as session:
        [cached] = session.scalars(select(AgsLineItem)).all()
        assert (cached.source, cached.url, cached.lock_owner) == ("created", created["id"], None)


def test_a_line_item_made_earlier_is_found_not_made_again(gradebook):
    server, platform = gradebook
    alex = Candidate(server, platform)
    alex.score(3)
    deliver_all(server)
    # The tool loses what it knew (say the answer to its POST never arrived): it looks again.
    with server.db.transaction() as session:
        session.execute(delete(AgsLineItem))
    alex.score(5)
    deliver_all(server)

    assert len(platform.grade_items) == 1
    assert [h["scoreGiven"] for h in history(platform, "cand-1", resourceId=RESOURCE_ID)] == [3, 5]
    with server.db.sessions() as session:
        assert session.scalars(select(AgsLineItem.source)).all() == ["found"]


def test_a_created_column_deleted_in_the_gradebook_is_made_again(gradebook):
    server, platform = gradebook
    alex = Candidate(server, platform)
    alex.score(3)
    deliver_all(server)
    platform.delete_grade_item(platform.grade_items[0])  # a teacher tidies the gradebook
    alex.score(4)
    deliver(server)
    [_, row] = ags_rows(server)
    assert (row.status, row.last_status) == ("pending", 404)  # not dead: it is made again

    deliver_all(server)

    [item] = platform.grade_items
    assert item.id == 2 and item.grades["cand-1"].score == 4


def test_a_later_launch_carrying_the_created_item_as_its_lineitem_uses_it(gradebook):
    server, platform = gradebook
    Candidate(server, platform).score(3)
    deliver_all(server)
    # Moodle now names the created item in launches of the link: the claim and the cache agree.
    again = Candidate(server, platform)
    assert grades.Endpoint.from_claims(launch_claims(server, again)).lineitem == platform.lineitem_url(
        platform.grade_items[0]
    )
    again.score(8)
    deliver_all(server)
    assert len(platform.grade_items) == 1
    assert column(platform, resourceId=RESOURCE_ID)["grades"]["cand-1"]["score"] == 8


def launch_claims(server, candidate) -> dict:
    with server.db.sessions() as session:
        return session.get(Launch, candidate.context.launch_id).claims


def test_workers_racing_on_a_new_activity_create_one_column(gradebook_on):
    server, platform = gradebook_on
    people = [Candidate(server, platform, sub=f"p{i}") for i in range(6)]
    for i, person in enumerate(people):
        person.score(i + 1)
    platform.ags_delay = 0.05  # long enough for the workers to overlap
    deadline = time.monotonic() + 20
    while any(r.status == "pending" for r in ags_rows(server)):
        assert time.monotonic() < deadline
        WorkerThreads(server.app, 4, batch_size=1, policy=FAST).drain()

    assert len(platform.grade_items) == 1
    assert {sub: g["score"] for sub, g in platform.gradebook()[0]["grades"].items()} == {
        f"p{i}": float(i + 1) for i in range(6)
    }


# -- timestamps ---------------------------------------------------------------------------------


@pytest.mark.parametrize("precision", ["second", "millisecond"])
def test_fast_successive_scores_reach_the_gradebook_in_order_with_increasing_timestamps(gradebook, precision):
    server, platform = gradebook
    platform.timestamp_precision = precision
    platform.add_grade_item("rl-1", "Quiz", 10, resource_id=RESOURCE_ID)
    alex = Candidate(server, platform)
    for value in (1, 2, 3, 4, 5):
        alex.score(value)

    deliver_all(server)

    sent = history(platform, "cand-1", resourceId=RESOURCE_ID)
    assert [h["scoreGiven"] for h in sent] == [1, 2, 3, 4, 5]
    times = stamps(sent)
    assert all(a < b for a, b in zip(times, times[1:], strict=False))
    assert column(platform, resourceId=RESOURCE_ID)["grades"]["cand-1"]["score"] == 5
    conflicts = [r for r in score_requests(platform) if r["status"] == 409]
    if precision == "millisecond":
        assert conflicts == []  # 1 ms apart is enough for a platform that compares exactly
    else:
        assert len(conflicts) >= 1  # Moodle refuses a second it already holds; each was resent


def test_two_scores_at_the_same_instant_are_a_millisecond_apart(gradebook):
    server, platform = gradebook
    platform.timestamp_precision = "millisecond"
    platform.add_grade_item("rl-1", "Quiz", 10, resource_id=RESOURCE_ID)
    alex = Candidate(server, platform)
    at = datetime(2026, 11, 23, 9, 30, 0, 250_000, tzinfo=UTC)
    alex.emit(LearningEvent("scored", "quiz", Result(score_raw=2, score_max=10), occurred_at=at))
    alex.emit(LearningEvent("scored", "quiz", Result(score_raw=6, score_max=10), occurred_at=at))

    deliver_all(server)

    sent = history(platform, "cand-1", resourceId=RESOURCE_ID)
    assert [h["timestamp"] for h in sent] == ["2026-11-23T09:30:00.250+00:00", "2026-11-23T09:30:00.251+00:00"]
    assert [h["scoreGiven"] for h in sent] == [2, 6]


def test_a_409_moves_past_the_platforms_stored_time_and_the_score_lands(gradebook):
    server, platform = gradebook
    item = platform.add_grade_item("rl-1", "Quiz", 10, resource_id=RESOURCE_ID)
    alex = Candidate(server, platform)
    # A teacher edited the grade in the gradebook an hour from now (a clock ahead, say).
    edited = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
    platform.set_grade(item, "cand-1", 2, edited)
    alex.score(9)

    deliver_all(server)

    grade = column(platform, resourceId=RESOURCE_ID)["grades"]["cand-1"]
    assert grade["score"] == 9
    [sent] = grade["history"]
    assert datetime.fromisoformat(sent["timestamp"]) == edited + timedelta(seconds=1)
    assert [r["status"] for r in score_requests(platform)] == [409, 200]
    # Later scores keep moving forward from there.
    alex.score(10)
    deliver_all(server)
    assert stamps(history(platform, "cand-1", resourceId=RESOURCE_ID))[-1] > edited + timedelta(seconds=1)


def test_a_409_without_the_results_service_steps_a_second_at_a_time(gradebook):
    server, platform = gradebook
    platform.ags_scopes = [LINEITEM_READ_SCOPE, SCORE_SCOPE]
    item = platform.add_grade_item("rl-1", "Quiz", 10, resource_id=RESOURCE_ID)
    alex = Candidate(server, platform)
    platform.set_grade(item, "cand-1", 2, datetime.now(UTC) + timedelta(seconds=1))
    alex.score(6)

    deliver_all(server)

    assert column(platform, resourceId=RESOURCE_ID)["grades"]["cand-1"]["score"] == 6
    assert RESULT_READ_SCOPE not in " ".join(t["scope"] for t in platform.token_requests)


def test_a_score_whose_answer_timed_out_but_was_stored_is_not_refused_for_ever(make_tool, tmp_path):
    plugin_install.install(tmp_path / "site", {PLUGIN: "npqsl_example_plugin:plugin"})
    platform = TestPlatform().start()
    server = make_tool(http={"timeout_seconds": 0.3})
    server.register(platform)
    server.tool.events.receivers[:] = [r for r in server.tool.events.receivers if r.name == "ags"]
    try:
        platform.add_grade_item("rl-1", "Quiz", 10, resource_id=RESOURCE_ID)
        alex = Candidate(server, platform)
        Worker(server.app).drain()  # nothing yet; warms the worker's imports
        alex.score(8)
        platform.ags_delay = 0.6  # the platform stores the score after the tool stopped waiting
        deliver(server)
        [row] = ags_rows(server)
        assert row.status == "pending" and "Timeout" in row.last_error
        time.sleep(0.7)
        platform.ags_delay = 0.0

        deliver_all(server)

        grade = column(platform, resourceId=RESOURCE_ID)["grades"]["cand-1"]
        assert grade["score"] == 8 and len(grade["history"]) == 2  # stored, then resent past a 409
        assert [r["status"] for r in score_requests(platform)][-2:] == [409, 200]
    finally:
        platform.stop()
        plugin_install.uninstall(tmp_path / "site")


# -- tokens and faults --------------------------------------------------------------------------


def test_a_401_gets_a_new_token_once_and_the_score_lands(gradebook):
    server, platform = gradebook
    platform.timestamp_precision = "millisecond"  # no 409 (and results token) in between
    platform.add_grade_item("rl-1", "Quiz", 10, resource_id=RESOURCE_ID)
    alex = Candidate(server, platform)
    alex.score(3)
    deliver_all(server)
    assert len(platform.token_requests) == 1
    platform.revoke_tokens()  # the platform restarted and forgot every token
    alex.score(4)

    deliver_all(server)

    assert len(platform.token_requests) == 2
    assert [r["status"] for r in score_requests(platform)] == [200, 401, 200]
    assert column(platform, resourceId=RESOURCE_ID)["grades"]["cand-1"]["score"] == 4


def test_a_second_401_waits_for_a_later_attempt(gradebook):
    server, platform = gradebook
    platform.add_grade_item("rl-1", "Quiz", 10, resource_id=RESOURCE_ID)
    alex = Candidate(server, platform)
    alex.score(3)
    platform.ags_faults = [(401, "token refused"), (401, "token refused")]
    deliver(server)
    [row] = ags_rows(server)
    assert (row.status, row.last_status) == ("pending", 401)
    assert len(platform.token_requests) == 2  # the first token, and one fresh one: no more

    deliver_all(server)

    assert column(platform, resourceId=RESOURCE_ID)["grades"]["cand-1"]["score"] == 3


def test_an_outage_mid_run_loses_nothing_and_keeps_the_order(gradebook_on):
    server, platform = gradebook_on
    platform.add_grade_item("rl-1", "Quiz", 10, resource_id=RESOURCE_ID)
    alex = Candidate(server, platform, sub="alex")
    sam = Candidate(server, platform, sub="sam")
    alex.score(1)
    sam.score(2)
    deliver_all(server)

    platform.available = False  # every request answered 503
    for value in (3, 4, 5):
        alex.score(value)
        sam.score(value + 5)
    for _ in range(5):
        deliver(server)
        time.sleep(0.01)
    pending = [r for r in ags_rows(server) if r.status == "pending"]
    assert len(pending) == 6
    assert {r.last_status for r in pending if r.attempts} == {503}

    platform.available = True
    alex.score(6)
    deliver_all(server)

    assert [h["scoreGiven"] for h in history(platform, "alex", resourceId=RESOURCE_ID)] == [1, 3, 4, 5, 6]
    assert [h["scoreGiven"] for h in history(platform, "sam", resourceId=RESOURCE_ID)] == [2, 8, 9, 10]
    for sub in ("alex", "sam"):
        times = stamps(history(platform, sub, resourceId=RESOURCE_ID))
        assert all(a < b for a, b in zip(times, times[1:], strict=False))
    assert {r.status for r in ags_rows(server)} == {"delivered"}


def test_refused_connections_and_5xx_are_retried_until_the_platform_is_back(gradebook):
    server, platform = gradebook
    alex = Candidate(server, platform)
    platform.refuse_connections()
    alex.score(2)
    alex.score(3)
    deliver(server)
    first, second = ags_rows(server)
    assert first.status == "pending" and "ConnectionError" in first.last_error
    assert second.attempts == 0  # held back behind the first: same person and activity

    platform.accept_connections()
    platform.ags_faults = [(500, "database is restarting")]
    deliver(server)
    first, _ = ags_rows(server)
    assert (first.status, first.last_status) == ("pending", 500)
    assert "database is restarting" in first.last_error

    deliver_all(server)
    assert [h["scoreGiven"] for h in history(platform, "cand-1", resourceId=RESOURCE_ID)] == [2, 3]


def test_a_refused_score_is_dead_with_the_platforms_answer_kept(gradebook):
    server, platform = gradebook
    platform.add_grade_item("rl-1", "Quiz", 10, resource_id=RESOURCE_ID)
    # Moodle grades only enrolled learners: one unenrolled after launching is refused with a 400.
    leaver = Candidate(server, platform, sub="leaver-1")
    platform.gradable = {entry for entry in platform.gradable if entry[1] != "leaver-1"}
    leaver.score(5)

    worker = deliver(server)

    [row] = ags_rows(server)
    assert (row.status, row.last_status) == ("dead", 400)
    assert "Incorrect score received" in row.last_error
    assert worker.outcomes["dead"] == 1
    assert "leaver-1" not in column(platform, resourceId=RESOURCE_ID)["grades"]


def test_a_coach_trying_the_activity_out_sends_no_score(gradebook):
    server, platform = gradebook
    platform.add_grade_item("rl-1", "Quiz", 10, resource_id=RESOURCE_ID)
    Candidate(server, platform, sub="coach-1", roles=[INSTRUCTOR]).score(5)
    assert ags_rows(server) == []


def test_a_platform_without_ags_owes_no_scores(gradebook):
    server, platform = gradebook
    platform.ags_enabled = False
    Candidate(server, platform, sub="alex").score(5)
    platform.ags_enabled = True
    Candidate(server, platform, sub="sam", ags=False).score(6)  # this launch did not carry the claim
    assert ags_rows(server) == []
    with server.db.sessions() as session:
        assert session.scalars(select(AgsEndpoint)).all() == []


def test_a_launch_without_the_score_scope_owes_no_scores(gradebook):
    server, platform = gradebook
    platform.ags_scopes = [LINEITEM_READ_SCOPE, RESULT_READ_SCOPE]
    Candidate(server, platform).score(5)
    assert ags_rows(server) == []


def test_a_score_held_back_past_its_launchs_purge_still_lands(gradebook):
    server, platform = gradebook
    platform.add_grade_item("rl-1", "Quiz", 10, resource_id=RESOURCE_ID)
    alex = Candidate(server, platform)
    alex.score(7)
    with server.db.transaction() as session:
        session.execute(delete(Launch))  # `npqsl-lti db purge` after a long outage

    deliver_all(server)

    assert column(platform, resourceId=RESOURCE_ID)["grades"]["cand-1"]["score"] == 7


# -- what a kind of event means for the grade -------------------------------------------------


def test_an_interim_score_never_nulls_a_final_grade_but_a_new_attempt_may(gradebook):
    server, platform = gradebook
    platform.add_grade_item("rl-1", "Quiz", 10, resource_id=RESOURCE_ID)
    alex = Candidate(server, platform)
    alex.score(8)
    alex.emit(LearningEvent("progressed", "quiz", Result(score_raw=2, score_max=10)))
    deliver_all(server)
    grade = column(platform, resourceId=RESOURCE_ID)["grades"]["cand-1"]
    assert grade["score"] == 8 and len(grade["history"]) == 1  # the interim score was not sent
    assert [r.status for r in ags_rows(server)] == ["delivered", "delivered"]

    alex.emit(LearningEvent("initialized", "quiz", Result(score_raw=0, score_max=10)))
    alex.emit(LearningEvent("progressed", "quiz", Result(score_raw=3, score_max=10)))
    deliver_all(server)
    grade = column(platform, resourceId=RESOURCE_ID)["grades"]["cand-1"]
    assert [(h["activityProgress"], h["gradingProgress"]) for h in grade["history"][1:]] == [
        ("Initialized", "NotReady"),
        ("InProgress", "Pending"),
    ]
    assert grade["score"] is None  # a new attempt under way: Moodle shows no grade

    alex.score(9)
    deliver_all(server)
    assert column(platform, resourceId=RESOURCE_ID)["grades"]["cand-1"]["score"] == 9


def test_a_score_with_a_minimum_is_sent_from_zero(gradebook):
    server, platform = gradebook
    platform.add_grade_item("rl-1", "Quiz", 10, resource_id=RESOURCE_ID)
    alex = Candidate(server, platform)
    alex.emit(LearningEvent("passed", "quiz", Result(score_raw=3, score_min=1, score_max=5)))
    deliver_all(server)
    [sent] = history(platform, "cand-1", resourceId=RESOURCE_ID)
    assert (sent["scoreGiven"], sent["scoreMaximum"]) == (2, 4)
    assert column(platform, resourceId=RESOURCE_ID)["grades"]["cand-1"]["score"] == 5.0  # rescaled to 10


def test_a_redelivered_row_is_not_sent_twice(gradebook_on):
    server, platform = gradebook_on
    platform.add_grade_item("rl-1", "Quiz", 10, resource_id=RESOURCE_ID)
    alex = Candidate(server, platform)
    alex.score(6)
    deliver_all(server)
    [row] = ags_rows(server)
    with server.db.sessions() as session:
        event = session.get(OutboxMessage, row.id).event_id
        from lti_tool.models import LearningEventRow

        event_row = session.get(LearningEventRow, event)
        session.expunge(event_row)
    # A worker that died after the platform accepted, before it recorded the answer, tries again.
    with server.app.app_context():
        outcome = grades.sync_score(server.tool, event_row, outbox_id=row.id)
    assert outcome.result == grades.DELIVERED and "already accepted" in outcome.detail
    assert len(history(platform, "cand-1", resourceId=RESOURCE_ID)) == 1
    with server.db.sessions() as session:
        [state] = session.scalars(select(AgsScoreState)).all()
        assert state.last_outbox_id == row.id and state.final


# -- small pieces -------------------------------------------------------------------------------


def test_urls_keep_moodles_type_id_query():
    lineitem = "https://moodle.example/mod/lti/services.php/2/lineitems/7/lineitem?type_id=3"
    assert grades.sub_resource(lineitem, "scores") == (
        "https://moodle.example/mod/lti/services.php/2/lineitems/7/lineitem/scores?type_id=3"
    )
    container = "https://moodle.example/mod/lti/services.php/2/lineitems?type_id=3"
    assert grades.with_query(container, resource_id="p:a b", tag=None) == (
        "https://moodle.example/mod/lti/services.php/2/lineitems?type_id=3&resource_id=p%3Aa+b"
    )


def test_timestamps_are_utc_with_milliseconds():
    moment = datetime(2026, 11, 23, 10, 0, 0, 123_456, tzinfo=UTC)
    assert grades.iso_ms(grades.to_ms(moment)) == "2026-11-23T10:00:00.123+00:00"
    assert grades.iso_ms(grades.next_whole_second(grades.to_ms(moment))) == "2026-11-23T10:00:01.000+00:00"
