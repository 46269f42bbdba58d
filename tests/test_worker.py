"""The outbox worker against a real database and a receiver over real HTTP.

Every test runs on SQLite and, marked ``postgres``, on PostgreSQL (``make test-postgres``).
"""

from __future__ import annotations

import random
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta

import pytest

from lti_tool import outbox
from lti_tool.events import LearningEvent
from lti_tool.models import utcnow
from lti_tool.outbox import Delivery, Policy, backoff_delay
from lti_tool.settings import load_settings
from lti_tool.worker import Worker, WorkerThreads

from .delivery_sink import Sink, SinkReceiver, emit, launch_context, rows, wait_for
from .platform_emulator import TestPlatform

# Quick retries so tests see several attempts in well under a second.
FAST = {
    "poll_interval_seconds": 0.02,
    "backoff_base_seconds": 0.02,
    "backoff_max_seconds": 0.1,
    "max_attempts": 3,
    "lease_seconds": 30,
    "batch_size": 50,
}


@dataclass
class Setup:
    server: object
    platform: TestPlatform
    sink: Sink
    context: object
    started: list

    def emit(self, activities: list[str], **kwargs) -> list[int]:
        return emit(self.server, self.context, activities, **kwargs)

    def worker(self, **kwargs) -> Worker:
        return Worker(self.server.app, **kwargs)

    def threads(self, count: int = 1, **kwargs) -> WorkerThreads:
        workers = WorkerThreads(self.server.app, count, **kwargs).start()
        self.started.append(workers)
        return workers

    def rows(self, ids=None):
        return rows(self.server, ids)


@pytest.fixture
def sink():
    server = Sink().start()
    yield server
    server.stop()


@pytest.fixture
def setup(make_tool, database_url, sink):
    platform = TestPlatform().start()
    server = make_tool(database_url, outbox=FAST)
    server.register(platform)
    server.tool.events.receivers[:] = [SinkReceiver(sink.url)]
    context, _ = launch_context(server, platform)
    state = Setup(server, platform, sink, context, [])
    yield state
    for workers in state.started:
        workers.stop()
    platform.stop()


def test_due_rows_are_delivered_once_and_marked_delivered(setup):
    ids = setup.emit(["quiz", "journal", "quiz"])
    before = utcnow()
    assert setup.worker().drain() == 3
    assert setup.sink.accepted_ids() == {i: 1 for i in ids}
    for row in setup.rows(ids).values():
        assert row.status == "delivered" and row.attempts == 1 and row.last_status == 200
        assert row.delivered_at >= before and row.lease_owner is None and row.last_error is None
    assert setup.worker().drain() == 0


@pytest.mark.parametrize("outage", ["503", "refused"])
def test_transient_failures_are_retried_with_backoff_until_the_receiver_is_back(setup, outage):
    [row_id] = setup.emit(["quiz"])
    if outage == "503":
        setup.sink.available = False
    else:
        setup.sink.close()
    setup.threads()
    row = wait_for(lambda: (r := setup.rows([row_id])[row_id]).attempts >= 3 and r, what="three failed attempts")
    assert row.status == "pending" and row.delivered_at is None
    if outage == "503":
        assert row.last_status == 503 and "sink down for maintenance" in row.last_error
    else:
        assert row.last_status is None and "ConnectionError" in row.last_error
    wait_for(lambda: setup.rows([row_id])[row_id].attempts >= FAST["max_attempts"] + 2, what="more attempts")
    assert setup.rows([row_id])[row_id].status == "pending"
    if outage == "503":
        setup.sink.available = True
    else:
        setup.sink.reopen()
    row = wait_for(lambda: (r := setup.rows([row_id])[row_id]).status == "delivered" and r, what="delivery")
    assert row.last_status == 200 and row.last_error is None
    assert setup.sink.accepted_ids() == {row_id: 1}


def test_permanent_refusals_park_the_row_as_dead_after_max_attempts_with_the_answer_kept(setup):
    [row_id] = setup.emit(["quiz"])
    setup.sink.answer = lambda body: (400, '{"error": "scoreGiven must not exceed scoreMaximum"}', {})
    setup.threads()
    row = wait_for(lambda: (r := setup.rows([row_id])[row_id]).status == "dead" and r, what="dead row")
    assert row.attempts == FAST["max_attempts"]
    assert row.last_status == 400
    assert "400 BAD REQUEST" in row.last_error and "scoreGiven must not exceed scoreMaximum" in row.last_error
    time.sleep(0.3)  # a dead row is not tried again
    assert setup.sink.attempts_of(row_id) == [400] * FAST["max_attempts"]


def test_a_failing_row_holds_back_later_rows_of_its_key_but_not_other_keys(setup):
    a1, b1, a2, b2, a3 = setup.emit(["a", "b", "a", "b", "a"])
    setup.sink.answer = lambda body: 503 if body["message"] == a1 else 200
    setup.threads()
    wait_for(lambda: setup.sink.accepted_ids().keys() == {b1, b2}, what="key b delivered")
    wait_for(lambda: setup.rows([a1])[a1].attempts >= 3, what="a1 retried")
    held = setup.rows([a2, a3])
    assert all(r.status == "pending" and r.attempts == 0 for r in held.values())
    assert setup.sink.attempts_of(a2) == setup.sink.attempts_of(a3) == []

    setup.sink.answer = lambda body: 200
    wait_for(lambda: len(setup.sink.accepted()) == 5, what="everything delivered")
    assert [r["message"] for r in setup.sink.accepted() if r["message"] in (a1, a2, a3)] == [a1, a2, a3]


def test_a_dead_row_no_longer_holds_back_its_key(setup):
    a1, a2, a3 = setup.emit(["a", "a", "a"])
    setup.sink.answer = lambda body: 422 if body["message"] == a1 else 200
    setup.threads()
    wait_for(lambda: setup.sink.accepted_ids().keys() == {a2, a3}, what="a2, a3 after a1 died")
    assert setup.rows([a1])[a1].status == "dead"
    assert [r["message"] for r in setup.sink.accepted()] == [a2, a3]


def test_retry_after_is_honoured_when_longer_than_the_backoff(setup):
    [row_id] = setup.emit(["quiz"])
    setup.sink.answer = lambda body: (429, "slow down", {"Retry-After": "120"})
    worker = setup.worker(policy=Policy(backoff_base_seconds=0.01, backoff_max_seconds=300, max_attempts=3))
    worker.drain()
    row = setup.rows([row_id])[row_id]
    assert row.status == "pending" and row.last_status == 429
    assert timedelta(seconds=110) < row.next_attempt_at - utcnow() <= timedelta(seconds=121)


@pytest.mark.parametrize("workers", [2, 4])
def test_concurrent_workers_deliver_every_row_exactly_once_and_in_order_per_key(setup, workers):
    keys = [f"activity-{k}" for k in range(50)]
    activities = [keys[i % len(keys)] for i in range(500)]
    ids = setup.emit(activities)
    assert len(ids) == 500
    setup.sink.delay = 0.001
    pool = setup.threads(workers, batch_size=20)
    wait_for(lambda: len(setup.sink.accepted()) >= 500, timeout=120, what="500 deliveries")
    pool.stop()

    delivered = setup.sink.accepted_ids()
    assert set(delivered) == set(ids), "lost deliveries"
    assert max(delivered.values()) == 1, f"delivered twice: {[i for i, n in delivered.items() if n > 1]}"
    assert all(row.status == "delivered" and row.attempts == 1 for row in setup.rows(ids).values())
    by_key = defaultdict(list)
    for body in setup.sink.accepted():
        by_key[body["key"]].append(body["message"])
    assert all(sent == sorted(sent) for sent in by_key.values()), "a key's deliveries went out of order"
    assert sum(w.outcomes["delivered"] for w in pool.workers) == 500
    assert sum(1 for w in pool.workers if w.outcomes["delivered"]) >= 2, "the work was never shared"


def test_a_crashed_workers_rows_are_taken_over_once_its_lease_expires(setup):
    ids = setup.emit(["a", "b", "c"])
    crashed = outbox.claim(setup.server.db, "crashed-worker", limit=10, lease_seconds=2)
    assert crashed == ids
    assert setup.worker().drain() == 0, "leased rows must not be claimed by another worker"
    lease_until = max(row.lease_until for row in setup.rows(ids).values())
    time.sleep(max(0.0, (lease_until - utcnow()).total_seconds()) + 0.05)
    assert setup.worker().drain() == 3
    assert setup.sink.accepted_ids() == {i: 1 for i in ids}
    # The crashed worker wakes up late: its answer must not overwrite the new owner's.
    message = setup.rows([ids[0]])[ids[0]]
    late = outbox.record_answer(setup.server.db, message, "crashed-worker", Delivery.retry("late"), Policy())
    assert not late.held
    assert setup.rows([ids[0]])[ids[0]].status == "delivered"


def test_a_worker_renews_its_lease_while_a_long_batch_is_delivered(setup):
    ids = setup.emit([f"activity-{n}" for n in range(8)])
    setup.sink.delay = 0.5  # eight deliveries take 4s, the lease is 3s
    slow = setup.worker(policy=Policy(lease_seconds=3, backoff_base_seconds=0.02, backoff_max_seconds=0.1))
    other = setup.worker(policy=Policy(lease_seconds=3))
    stop = threading.Event()
    batch = threading.Thread(target=slow.run_once)
    batch.start()
    wait_for(lambda: any(r.lease_owner == slow.name for r in setup.rows(ids).values()), what="the slow claim")
    rival = threading.Thread(target=other.run, args=(stop,))
    rival.start()
    batch.join()
    stop.set()
    rival.join()
    assert slow.outcomes["delivered"] == 8 and other.outcomes["delivered"] == 0
    assert setup.sink.accepted_ids() == {i: 1 for i in ids}


class ExplodingReceiver(SinkReceiver):
    def deliver(self, message, event, tool):
        if event.activity == "bad":
            raise ValueError(f"cannot turn event {event.id} into a statement")
        return super().deliver(message, event, tool)


def test_an_exception_in_deliver_is_a_transient_failure_with_its_traceback_summary(setup):
    setup.server.tool.events.receivers[:] = [ExplodingReceiver(setup.sink.url)]
    good1, bad, good2 = setup.emit(["good-1", "bad", "good-2"])
    setup.worker().drain()
    assert setup.sink.accepted_ids() == {good1: 1, good2: 1}
    row = setup.rows([bad])[bad]
    assert row.status == "pending" and row.attempts == 1 and row.last_status is None
    assert row.last_error.startswith("ValueError: cannot turn event")
    assert "test_worker.py" in row.last_error and "in deliver" in row.last_error


def test_a_row_for_a_receiver_this_worker_lacks_waits_with_the_reason(setup):
    gradebook = SinkReceiver(setup.sink.url, name="ags")
    setup.server.tool.events.receivers.append(gradebook)
    sink_row, ags_row = setup.emit(["quiz"])
    setup.server.tool.events.receivers.remove(gradebook)
    setup.worker().drain()
    assert setup.sink.accepted_ids() == {sink_row: 1}
    row = setup.rows([ags_row])[ags_row]
    assert row.status == "pending" and "no receiver named 'ags'" in row.last_error


def test_a_receiver_that_is_down_is_not_tried_again_for_the_rest_of_the_batch(setup):
    ids = setup.emit([f"activity-{n}" for n in range(10)])
    setup.sink.available = False
    before = utcnow()
    setup.worker().run_once()
    assert len(setup.sink.received) == 1
    untried = [r for r in setup.rows(ids).values() if r.attempts == 0]
    assert len(untried) == 9 and all(r.lease_owner is None for r in untried)
    pause = timedelta(seconds=FAST["backoff_base_seconds"])
    assert all(before + pause <= r.next_attempt_at for r in untried)


def test_a_stopping_worker_gives_back_the_rows_it_did_not_attempt(setup):
    ids = setup.emit([f"activity-{n}" for n in range(6)])
    setup.sink.delay = 0.3
    stop = threading.Event()
    worker = setup.worker()
    batch = threading.Thread(target=worker.run_once, kwargs={"stop": stop})
    batch.start()
    wait_for(lambda: setup.sink.received, what="the first delivery")
    stop.set()
    batch.join()
    after = setup.rows(ids).values()
    assert 1 <= sum(r.status == "delivered" for r in after) < 6
    assert all(r.lease_owner is None for r in after)
    assert setup.worker().drain() == sum(r.status == "pending" for r in after)
    assert setup.sink.accepted_ids() == {i: 1 for i in ids}


def test_the_inline_worker_delivers_from_the_web_process_in_development(make_tool, database_url, sink):
    platform = TestPlatform().start()
    try:
        server = make_tool(database_url, outbox={**FAST, "inline_worker": True})
        assert server.tool.background_worker is not None and server.tool.background_worker.alive
        server.register(platform)
        server.tool.events.receivers[:] = [SinkReceiver(sink.url)]
        context, _ = launch_context(server, platform)
        with server.tool.events.record(context, "example-reflection") as rec:
            rec.emit(LearningEvent("completed", "quiz"))
        wait_for(lambda: len(sink.accepted()) == 1, what="the inline worker's delivery")
        server.tool.stop_worker()
        assert server.tool.background_worker is None
    finally:
        platform.stop()


def test_the_inline_worker_is_on_in_development_and_off_in_production_by_default(tmp_path):
    development = load_settings(environ={"NPQSL_ENV": "development", "NPQSL_INSTANCE_PATH": str(tmp_path)})
    assert development.outbox.inline_worker is True
    production = load_settings(
        environ={"NPQSL_ENV": "production", "NPQSL_SECRET_KEY": "s" * 40, "NPQSL_INSTANCE_PATH": str(tmp_path)}
    )
    assert production.outbox.inline_worker is False
    forced = load_settings(
        environ={
            "NPQSL_ENV": "production",
            "NPQSL_SECRET_KEY": "s" * 40,
            "NPQSL_INSTANCE_PATH": str(tmp_path),
            "NPQSL_OUTBOX_INLINE_WORKER": "true",
        }
    )
    assert forced.outbox.inline_worker is True
    assert (development.outbox.max_attempts, development.outbox.backoff_max_seconds) == (5, 900.0)


def test_backoff_is_exponential_with_full_jitter_and_capped():
    policy = Policy(backoff_base_seconds=2, backoff_max_seconds=900)
    rng = random.Random(4)
    for attempts in range(1, 15):
        ceiling = min(900, 2 * 2 ** (attempts - 1))
        delays = [backoff_delay(attempts, policy, rng) for _ in range(300)]
        assert all(0 <= d <= ceiling for d in delays)
        assert max(delays) > 0.9 * ceiling and min(delays) < 0.1 * ceiling  # spread over the whole range
    assert backoff_delay(10_000, policy, rng) <= 900


@pytest.mark.parametrize(
    ("status", "outcome"),
    [(200, "delivered"), (204, "delivered"), (400, "permanent"), (404, "permanent"), (409, "permanent")]
    + [(408, "retry"), (429, "retry"), (500, "retry"), (502, "retry"), (503, "retry")],
)
def test_http_answers_are_classified_as_delivered_retry_or_permanent(sink, status, outcome):
    sink.answer = lambda body: (status, "the answer", {})
    import requests

    delivery = Delivery.from_response(requests.post(sink.url, json={"message": 1}, timeout=5))
    assert delivery.outcome == outcome and delivery.status == status
    if outcome != "delivered":
        assert "the answer" in delivery.error


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"NPQSL_OUTBOX_INLINE_WORKER": "sometimes"}, "NPQSL_OUTBOX_INLINE_WORKER: Not a valid boolean"),
        ({"NPQSL_OUTBOX_MAX_ATTEMPTS": "0"}, "NPQSL_OUTBOX_MAX_ATTEMPTS:"),
        ({"NPQSL_OUTBOX_BACKOFF_MAX_SECONDS": "1"}, "NPQSL_OUTBOX_BACKOFF_MAX_SECONDS: must not be below"),
        ({"NPQSL_OUTBOX_LEASE_SECONDS": "15"}, "NPQSL_OUTBOX_LEASE_SECONDS: must be at least twice"),
    ],
    ids=["inline-worker", "max-attempts", "backoff-max", "lease"],
)
def test_bad_outbox_settings_are_refused_in_one_line_naming_them(tmp_path, env, words):
    from lti_tool.settings import SettingsError

    with pytest.raises(SettingsError, match=words):
        load_settings(environ={"NPQSL_ENV": "development", "NPQSL_INSTANCE_PATH": str(tmp_path), **env})
