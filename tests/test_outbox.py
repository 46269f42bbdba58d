"""Operating the outbox: the CLI (as real subprocesses) and the administrators' page.

The CLI's worker finds the test receiver the way an installed package would offer one: an
entry point in ``npqsl_lti.receivers``, written into a site folder on the subprocess's path.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import lxml.html
import pytest
from sqlalchemy import update

from lti_tool.models import OutboxMessage, utcnow
from lti_tool.worker import Worker

from .browser import Browser
from .delivery_sink import SINK_URL_ENV, Sink, SinkReceiver, emit, launch_context, rows, wait_for
from .platform_emulator import ADMIN, LaunchSpec, TestPlatform

CLI = Path(sys.executable).with_name("npqsl-lti")
REPO = Path(__file__).resolve().parents[1]
ADMIN_SPEC = LaunchSpec(sub="vle-admin", roles=[ADMIN])
FAST = {
    "poll_interval_seconds": 0.02,
    "backoff_base_seconds": 0.01,
    "backoff_max_seconds": 0.05,
    "max_attempts": 2,
    "lease_seconds": 30,
    "batch_size": 50,
}


@dataclass
class Outbox:
    server: object
    platform: TestPlatform
    sink: Sink
    context: object
    env: dict[str, str]

    def emit(self, activities: list[str]) -> list[int]:
        return emit(self.server, self.context, activities)

    def rows(self, ids=None):
        return rows(self.server, ids)

    def work_until(self, done, what: str) -> None:
        """Run an in-process worker until ``done()`` holds (retries need several passes)."""
        worker = Worker(self.server.app)

        def step():
            worker.drain()
            return done()

        wait_for(step, what=what)

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(CLI), *args], env=self.env, capture_output=True, text=True, timeout=120, check=False
        )

    def ok(self, *args: str) -> str:
        result = self.cli(*args)
        assert result.returncode == 0, f"npqsl-lti {' '.join(args)}: {result.stderr}"
        return result.stdout

    def popen(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen(
            [str(CLI), *args], env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )


def install_sink_receiver(site: Path) -> None:
    """A dist-info declaring the test receiver in group npqsl_lti.receivers (for subprocesses)."""
    dist = site / "npqsl_test_receivers-0.1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: npqsl-test-receivers\nVersion: 0.1.0\n")
    (dist / "entry_points.txt").write_text("[npqsl_lti.receivers]\nsink = tests.delivery_sink:receiver_from_env\n")


@pytest.fixture
def box(make_tool, database_url, tmp_path):
    assert CLI.exists(), f"{CLI} is missing: run `make test` (it installs the package)"
    sink = Sink().start()
    platform = TestPlatform().start()
    server = make_tool(database_url, outbox=FAST)
    server.register(platform)
    server.tool.events.receivers[:] = [SinkReceiver(sink.url)]
    context, _ = launch_context(server, platform)
    install_sink_receiver(tmp_path / "site")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "PYTHONPATH": f"{tmp_path / 'site'}{os.pathsep}{REPO}",
        "NPQSL_ENV": "development",
        "NPQSL_INSTANCE_PATH": str(server.settings.instance_path),
        "NPQSL_DATABASE_URL": database_url,
        "NPQSL_OUTBOX_INLINE_WORKER": "false",
        **{f"NPQSL_OUTBOX_{key.upper()}": str(value) for key, value in FAST.items()},
        SINK_URL_ENV: sink.url,
    }
    yield Outbox(server, platform, sink, context, env)
    platform.stop()
    sink.stop()


def mixed_rows(box: Outbox) -> dict[str, int]:
    """Two delivered rows, one dead (refused with 400), one pending (503) — by activity."""
    ids = dict(
        zip(["ok-1", "ok-2", "refused", "later"], box.emit(["ok-1", "ok-2", "refused", "later"]), strict=True)
    )
    answers = {"refused": (400, '{"error": "unknown lineitem"}', {}), "later": (503, "LRS restarting", {})}
    box.sink.answer = lambda body: answers.get(body["activity"], 200)
    box.work_until(lambda: box.rows([ids["refused"]])[ids["refused"]].status == "dead", "a dead row")
    return ids


# -- npqsl-lti worker -------------------------------------------------------------------------


def test_worker_once_delivers_what_is_due_through_an_installed_receiver_and_exits(box):
    ids = box.emit(["quiz", "journal", "quiz"])
    assert box.ok("worker", "--once").strip() == "delivered 3, to retry 0, refused 0, dead 0"
    assert box.sink.accepted_ids() == {i: 1 for i in ids}
    assert {row.status for row in box.rows(ids).values()} == {"delivered"}


def test_two_worker_processes_at_once_deliver_each_row_once(box):
    ids = box.emit([f"activity-{n % 30}" for n in range(300)])
    processes = [box.popen("worker", "--once", "--concurrency", "2") for _ in range(2)]
    outputs = [process.communicate(timeout=120) for process in processes]
    assert all(process.returncode == 0 for process in processes), outputs
    delivered = box.sink.accepted_ids()
    assert set(delivered) == set(ids) and max(delivered.values()) == 1
    assert sum(int(out.split()[1].rstrip(",")) for out, _ in outputs) == 300


def test_the_worker_runs_until_sigterm_then_stops_cleanly(box):
    process = box.popen("worker", "--concurrency", "2")
    try:
        ids = box.emit(["quiz", "journal"])
        wait_for(lambda: len(box.sink.accepted()) == 2, what="deliveries by the running worker")
        more = box.emit(["quiz"])
        wait_for(lambda: len(box.sink.accepted()) == 3, what="a later event delivered too")
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "npqsl-lti worker stopped: delivered 3" in err
    assert box.sink.accepted_ids() == {i: 1 for i in ids + more}


def test_the_worker_refuses_an_unmigrated_database_in_one_line(tmp_path):
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "NPQSL_ENV": "development",
        "NPQSL_INSTANCE_PATH": str(tmp_path),
        "NPQSL_DATABASE_URL": f"sqlite:///{tmp_path / 'empty.sqlite3'}",
    }
    result = subprocess.run([str(CLI), "worker", "--once"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "run `npqsl-lti db upgrade` first" in result.stderr


# -- npqsl-lti outbox status|retry|purge -------------------------------------------------------


def test_outbox_status_shows_counts_the_oldest_pending_row_and_dead_rows_with_their_answer(box):
    assert box.ok("outbox", "status").strip() == "the outbox is empty"
    ids = mixed_rows(box)
    text = box.ok("outbox", "status")
    assert text.splitlines()[1].split() == ["sink", "1", "2", "1"]
    assert "oldest pending: " in text and f"(#{ids['later']} sink, " in text
    assert "last answer: 503 SERVICE UNAVAILABLE: LRS restarting" in text
    assert f"dead #{ids['refused']} sink platform 1 " in text
    assert 'after 2 attempt(s): 400 BAD REQUEST: {"error": "unknown lineitem"}' in text

    state = json.loads(box.ok("outbox", "status", "--json"))
    assert state["counts"] == {"sink": {"pending": 1, "delivered": 2, "dead": 1}}
    assert state["oldest_pending"]["id"] == ids["later"] and state["oldest_pending_age_seconds"] >= 0
    [dead] = state["dead"]
    assert dead["id"] == ids["refused"] and dead["last_status"] == 400 and "unknown lineitem" in dead["last_error"]
    assert dead["attempts"] == FAST["max_attempts"]


def test_outbox_retry_puts_dead_rows_back_to_pending_with_attempts_reset(box):
    ids = mixed_rows(box)
    refused = ids["refused"]
    assert box.ok("outbox", "retry", "--id", str(refused)).strip() == f"1 dead row(s) back to pending: {refused}"
    row = box.rows([refused])[refused]
    assert (row.status, row.attempts, row.lease_owner) == ("pending", 0, None)

    box.sink.answer = lambda body: 200
    assert box.ok("worker", "--once").startswith("delivered 2,")  # the retried row and the 503 one
    assert box.rows([refused])[refused].status == "delivered"

    missing = box.cli("outbox", "retry", "--id", str(refused), "--id", "999999")
    assert missing.returncode == 1 and missing.stdout.strip() == "0 dead row(s) back to pending"
    assert f"not dead (or no such row): {refused}, 999999" in missing.stderr
    usage = box.cli("outbox", "retry")
    assert usage.returncode == 2 and "choose one of --id, --receiver or --all-dead" in usage.stderr
    both = box.cli("outbox", "retry", "--all-dead", "--receiver", "sink")
    assert both.returncode == 2


@pytest.mark.parametrize("how", [["--receiver", "sink"], ["--all-dead"]])
def test_outbox_retry_by_receiver_or_all_dead(box, how):
    first = box.emit(["a", "b"])
    box.sink.answer = lambda body: 400
    box.work_until(lambda: {r.status for r in box.rows(first).values()} == {"dead"}, "two dead rows")
    assert box.ok("outbox", "retry", *how).startswith("2 dead row(s) back to pending")
    assert box.ok("outbox", "retry", "--all-dead").strip() == "0 dead row(s) back to pending"
    assert {r.attempts for r in box.rows(first).values()} == {0}


def test_outbox_purge_deletes_only_delivered_rows_older_than_the_cutoff(box):
    ids = mixed_rows(box)
    with box.server.db.transaction() as session:
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == ids["ok-1"])
            .values(delivered_at=utcnow() - timedelta(days=10))
        )
    assert box.ok("outbox", "purge", "--delivered-older-than", "7").strip() == (
        "purged 1 delivered row(s) older than 7 day(s)"
    )
    assert set(box.rows()) == {ids["ok-2"], ids["refused"], ids["later"]}
    assert box.cli("outbox", "purge").returncode == 2  # the cutoff is required


# -- /admin/outbox ------------------------------------------------------------------------------


def page(response) -> lxml.html.HtmlElement:
    return lxml.html.fromstring(response.text)


def test_candidates_and_requests_without_a_launch_are_refused_the_admin_page(box):
    candidate, token = launch_context(box.server, box.platform, sub="cand-2")
    browser = Browser()
    refused = browser.get(box.server.base_url + "/admin/outbox", params={"launch": token})
    assert refused.status_code == 403 and "Your role in this course does not give access" in refused.text
    assert browser.get(box.server.base_url + "/admin/outbox").status_code == 401
    ids = mixed_rows(box)
    retried = browser.post(
        box.server.base_url + "/admin/outbox/retry", data={"launch": token, "id": ids["refused"]}
    )
    assert retried.status_code == 403
    forged = browser.post(box.server.base_url + "/admin/outbox/retry", data={"id": ids["refused"]})
    assert forged.status_code == 401
    assert box.rows([ids["refused"]])[ids["refused"]].status == "dead"


def test_an_administrator_sees_the_counts_and_dead_rows_and_can_retry_one(box):
    ids = mixed_rows(box)
    browser = Browser()
    landing = browser.launch(box.server, box.platform, ADMIN_SPEC)
    assert landing.status_code == 200
    [link] = page(landing).xpath("//a[@data-admin-outbox]")
    shown = browser.get(box.server.base_url + link.get("href"))
    assert shown.status_code == 200
    doc = page(shown)
    counts = {td.get("data-status"): td.text_content() for td in doc.xpath('//tr[@data-receiver="sink"]/td')}
    assert counts == {"pending": "1", "delivered": "2", "dead": "1"}
    assert f"#{ids['later']} to sink" in doc.xpath("//*[@data-oldest]")[0].text_content()
    [dead] = doc.xpath("//tr[@data-row]")
    assert dead.get("data-row") == str(ids["refused"])
    assert "400" in dead.xpath(".//*[@data-answer]")[0].text_content()
    assert "unknown lineitem" in dead.xpath(".//*[@data-answer]")[0].text_content()

    form = dead.xpath(".//form")[0]
    fields = {field.name: field.value for field in form.inputs if field.name}
    after = browser.post(box.server.base_url + form.get("action"), data=fields, allow_redirects=False)
    assert after.status_code == 303
    followed = browser.get(box.server.base_url + after.headers["Location"])
    assert f"Back in the queue: #{ids['refused']}" in followed.text
    assert page(followed).xpath("//*[@data-no-dead]")
    row = box.rows([ids["refused"]])[ids["refused"]]
    assert (row.status, row.attempts) == ("pending", 0)


def test_a_candidates_landing_page_has_no_admin_link(box):
    page_text = Browser().launch(box.server, box.platform).text
    assert "data-admin-outbox" not in page_text


def test_an_administrator_sees_and_retries_only_their_own_platforms_rows(box):
    other = TestPlatform(client_id="other-client").start()
    try:
        box.server.register(other)
        stranger, _ = launch_context(box.server, other, sub="elsewhere")
        [theirs] = emit(box.server, stranger, ["quiz"])
        box.sink.answer = lambda body: 400
        box.work_until(lambda: box.rows([theirs])[theirs].status == "dead", "the other platform's dead row")

        browser = Browser()
        landing = browser.launch(box.server, box.platform, ADMIN_SPEC)
        token = page(landing).xpath("//a[@data-admin-outbox]")[0].get("href").split("launch=")[1]
        shown = browser.get(box.server.base_url + "/admin/outbox", params={"launch": token})
        assert not page(shown).xpath("//tr[@data-row]")
        assert not page(shown).xpath("//table[@data-counts]")
        retried = browser.post(
            box.server.base_url + "/admin/outbox/retry", data={"launch": token, "id": theirs}, allow_redirects=True
        )
        assert (
            retried.status_code == 200
            and f"#{theirs}" in page(retried).xpath("//*[@data-not-dead]")[0].text_content()
        )
        assert box.rows([theirs])[theirs].status == "dead"
    finally:
        other.stop()
