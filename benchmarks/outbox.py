"""Outbox delivery of AGS scores: the worker against sending each score inline, one by one.

    python benchmarks/outbox.py [--scores 2000] [--workers 1,4] [--people 50] [--paced-rate 20]
                                [--paced-seconds 10] [--platform-latency-ms 0] [--skip-sync]
                                [--shared-people] [--timeout 1800]
                                [--database-url postgresql+psycopg2://user@127.0.0.1:5432/db]

Everything runs on 127.0.0.1. This process holds the test platform (``tests/platform_emulator.py``:
Moodle's gradebook services and its gradebook) and the tool (``tests/tool_server.py``, SQLite in a
temporary folder unless ``--database-url`` names a PostgreSQL database, where it works in a schema
of its own, dropped at the end). The example plugin is installed through its entry point; each
person launches for real (login, platform, id_token) into the example quiz, so the tool holds the
launch's AGS claim. Every row of the table has a course of its own on the platform, so its
gradebook columns can be checked on their own.

Rows:

- ``worker xW``: N scored learning events are recorded through the core API
  (``tool.events.record(context, plugin)`` + ``rec.emit(LearningEvent("scored", ...))``, one
  transaction per score, as a request records it), spread over people and two activities (the
  quiz, whose line item the launch names, and the journal, whose line item the tool creates), so
  the ordering keys vary; each row scores people of its own, so it starts with empty ordering keys
  (``--shared-people``: the same people in every row, with the earlier rows' history). Then W
  workers (``lti_tool.worker.WorkerThreads``, what ``npqsl-lti worker --concurrency W`` runs)
  start together in a process of their own (``--workers 4p``: 4 processes of one worker each) and
  deliver until no row is pending: scores/s is N over the time from their start to the last
  ``delivered_at``. A worker process imports and builds the app before it is told to start.
- ``inline, bare POSTs``: the baseline. The same scores sent in a process of its own, one by one, the
  way a request would send them instead of recording them: one POST per score to the line item's
  ``/scores`` with a cached bearer token over the tool's HTTP session, nothing stored, no outbox.
- ``inline, sync_score``: the tool's own AGS code (``lti_tool.grades.sync_score``: line item
  lookup, timestamps kept increasing, score state stored) called inline for the same scores, no
  outbox: what the outbox bookkeeping adds is the difference to ``worker x1``.

Then, with the workers still running and idle-polling at the configured interval, a steady stream
of scores (``--paced-rate`` per second for ``--paced-seconds``) measures the delay a person sees:
event recorded to ``delivered_at``. Last, each course's gradebook on the platform is compared with
what was recorded: received, lost, delivered more than once, and whether each person's scores for
an activity arrived in the order recorded. Figures only, no assertions; exits 1 if a phase fails.
"""

from __future__ import annotations

import argparse
import atexit
import json
import logging
import math
import os
import platform as host
import re
import secrets
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from urllib.parse import quote

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for _path in (str(ROOT), str(HERE)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

import procs  # noqa: E402

PLUGIN = "example-reflection"
PLUGIN_ENTRY_POINT = "npqsl_example_plugin:plugin"
# The quiz's line item comes with the launch (the link's own grade item); the journal's is one the
# tool finds or creates in the course's lineitems container (a manual column in Moodle).
ACTIVITIES = ("quiz", "journal")
SCORE_MAX = 10.0
READY_TIMEOUT = 120.0
POLL_SECONDS = 0.1


# -- child processes: the workers and the inline senders -----------------------------------------


def _say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _child_app(config: dict):
    from lti_tool.app import create_app
    from tests.tool_server import tool_settings

    settings = tool_settings(Path(config["instance"]), config["database_url"])
    return create_app(settings, start_worker=False)


def _child_worker(config: dict) -> None:
    """W workers in this process: what `npqsl-lti worker --concurrency W` runs, started on "go"."""
    from lti_tool.worker import WorkerThreads

    app = _child_app(config)
    workers = WorkerThreads(app, config["concurrency"], prefix="bench")
    _say("ready")
    if sys.stdin.readline().strip() != "go":
        return
    workers.start()
    sys.stdin.readline()  # "stop", or the end of input when the benchmark goes away
    workers.stop(timeout=60)
    _say(json.dumps({"outcomes": dict(workers.outcomes()), "alive": workers.alive}))


def _child_bare(config: dict) -> None:
    """The baseline: each score POSTed at once, one after the other, with a cached token."""
    import requests

    from lti_tool.grades import SCORE_MEDIA_TYPE, iso_ms
    from lti_tool.http import make_http_session

    http = make_http_session(config["http_timeout"])
    headers = {
        "Authorization": f"Bearer {config['token']}",
        "Accept": "application/json",
        "Content-Type": SCORE_MEDIA_TYPE,
    }
    items = config["items"]
    _say("ready")
    if sys.stdin.readline().strip() != "go":
        return
    answers: Counter[str] = Counter()
    last: dict[tuple[str, str], int] = {}
    cpu = time.process_time()
    started = time.perf_counter()
    for url, body in items:
        # A request sends "now", kept past the last time sent for the person and line item.
        key = (url, body["userId"])
        last[key] = max(time.time_ns() // 1_000_000, last.get(key, 0) + 1)
        body["timestamp"] = iso_ms(last[key])
        try:
            response = http.post(url, data=json.dumps(body), headers=headers)
            answers[str(response.status_code)] += 1
        except requests.RequestException as exc:
            answers[exc.__class__.__name__] += 1
    elapsed = time.perf_counter() - started
    _say(json.dumps({"elapsed": elapsed, "cpu": time.process_time() - cpu, "answers": answers}))


def _child_sync(config: dict) -> None:
    """The tool's own AGS code, called inline for each recorded event in order: no outbox."""
    from sqlalchemy import select

    from lti_tool import grades
    from lti_tool.models import LearningEventRow

    app = _child_app(config)
    tool = app.extensions["npqsl_lti"]
    ids = config["event_ids"]
    loaded: dict[str, LearningEventRow] = {}
    with tool.db.sessions() as session:
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            loaded.update(
                (e.id, e) for e in session.scalars(select(LearningEventRow).where(LearningEventRow.id.in_(chunk)))
            )
        session.expunge_all()
    events = [loaded[i] for i in ids]
    _say("ready")
    if sys.stdin.readline().strip() != "go":
        return
    answers: Counter[str] = Counter()
    cpu = time.process_time()
    started = time.perf_counter()
    with app.app_context():
        for event in events:
            outcome = grades.sync_score(tool, event)
            answers[f"{outcome.result} {outcome.status or ''}".strip()] += 1
    elapsed = time.perf_counter() - started
    _say(json.dumps({"elapsed": elapsed, "cpu": time.process_time() - cpu, "answers": answers}))


def child_main(config_path: str) -> int:
    config = json.loads(Path(config_path).read_text())
    for path in config.get("sys_path", []):
        if path not in sys.path:
            sys.path.insert(0, path)
    logging.basicConfig(stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    {"worker": _child_worker, "bare": _child_bare, "sync": _child_sync}[config["kind"]](config)
    return 0


class Child:
    """A child process of this script: a line protocol on stdin/stdout, its log in a file."""

    running: list[Child] = []

    def __init__(self, name: str, config: dict, tmp: Path):
        self.name = name
        self.log_path = tmp / f"{name}.log"
        config_path = tmp / f"{name}.json"
        config_path.write_text(json.dumps(config))
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, str(Path(__file__).resolve()), "--child", str(config_path)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                cwd=str(ROOT),
                text=True,
                start_new_session=True,
            )
        Child.running.append(self)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def read_line(self, timeout: float) -> str:
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else ""
        if not line:
            state = "exited" if self.proc.poll() is not None else f"said nothing for {timeout:.0f} s"
            raise RuntimeError(f"{self.name} {state}:\n{self.log_tail()}")
        return line.strip()

    def send(self, text: str) -> None:
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()

    def finish(self, timeout: float = 120.0) -> dict:
        """Ask it to stop; its last line is a JSON summary."""
        try:
            self.send("stop")
            self.proc.stdin.close()
        except (BrokenPipeError, OSError):
            pass
        summary = json.loads(self.read_line(timeout))
        self.proc.wait(timeout=30)
        Child.running.remove(self)
        return summary

    def log_tail(self, lines: int = 25) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def kill(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=10)

    @classmethod
    def kill_all(cls) -> None:
        while cls.running:
            cls.running.pop().kill()


# -- the set-up --------------------------------------------------------------------------------


@dataclass
class Mode:
    """One row: a way of delivering, with its own course on the platform."""

    label: str
    kind: str  # worker, bare, sync
    workers: int = 0
    processes: int = 0
    course: str = ""
    link: str = ""
    contexts: list = field(default_factory=list)
    # (sub, activity) -> the scores recorded for it, in order
    expected: dict[tuple[str, str], list[float]] = field(default_factory=lambda: defaultdict(list))
    seq: Counter = field(default_factory=Counter)
    event_ids: list[str] = field(default_factory=list)
    paced_ids: list[str] = field(default_factory=list)
    result: dict = field(default_factory=dict)
    # Who is scored: people of the row's own (so every row starts with empty ordering keys), or
    # the same people in every row (--shared-people).
    people_prefix: str = "cand"

    def sub(self, person: int) -> str:
        return f"{self.people_prefix}-{person + 1:03d}"


def parse_workers(text: str) -> list[tuple[int, bool]]:
    """``1,4,4p``: worker counts; ``p`` runs each worker in a process of its own."""
    out = []
    for item in (t.strip() for t in text.split(",") if t.strip()):
        processes = item.endswith("p")
        number = item[:-1] if processes else item
        if not number.isdigit() or not 1 <= int(number) <= 32:
            raise argparse.ArgumentTypeError("comma-separated worker counts 1..32, a 'p' suffix for processes")
        out.append((int(number), processes))
    if not out:
        raise argparse.ArgumentTypeError("at least one worker count")
    return out


def make_modes(workers: list[tuple[int, bool]], skip_sync: bool, shared_people: bool = False) -> list[Mode]:
    modes = []
    for count, processes in workers:
        if processes:
            label = f"worker x{count} ({count} processes)"
        else:
            label = f"worker x{count}" + (f" (1 process, {count} threads)" if count > 1 else "")
        modes.append(Mode(label, "worker", workers=count, processes=count if processes else 1))
    modes.append(Mode("inline, bare POSTs", "bare"))
    if not skip_sync:
        modes.append(Mode("inline, sync_score", "sync"))
    for index, mode in enumerate(modes):
        mode.course = f"bench-course-{index + 1}"
        mode.link = f"bench-rl-{index + 1}"
        mode.people_prefix = "cand" if shared_people else f"cand{index + 1}"
    return modes


def postgres_schema(url: str):
    """A fresh schema on the PostgreSQL database at ``url``: (schema URL, drop function)."""
    from sqlalchemy import create_engine, make_url, text

    schema = "npqsl_bench_" + secrets.token_hex(6)
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    schema_url = make_url(url).update_query_dict(
        {"options": f"-csearch_path={schema}", "application_name": schema}
    )

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = :name AND pid <> pg_backend_pid()"
                ),
                {"name": schema},
            )
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

    return schema_url.render_as_string(hide_password=False), drop


def launch_people(server, platform, mode: Mode, people: int) -> None:
    """Each person launches into the mode's quiz for real; keeps their LaunchContexts."""
    from lti_tool import launch as launches
    from tests.browser import Browser
    from tests.platform_emulator import LEARNER, LaunchSpec

    for person in range(people):
        spec = LaunchSpec(
            sub=mode.sub(person),
            roles=[LEARNER],
            context={"id": mode.course, "title": f"NPQSL benchmark cohort ({mode.label})"},
            resource_link={"id": mode.link, "title": "Example knowledge check"},
            name=f"Candidate {person + 1}",
            email=f"{mode.sub(person)}@example.org",
            custom={"npqsl_plugin": PLUGIN, "npqsl_activity": "quiz"},
        )
        page = Browser().launch(server, platform, spec)
        found = re.search(r"data-launch>([^<]+)<", page.text)
        if page.status_code != 200 or not found:
            raise RuntimeError(
                f"launch of {spec.sub} into {mode.course} failed: {page.status_code} {page.text[:300]}"
            )
        mode.contexts.append(launches.load(server.db, server.tool.launch_tokens.read(found.group(1))))


def score_plan(start: int, count: int, people: int) -> list[tuple[int, str]]:
    """(person, activity) for scores start..start+count: every person in turn, then the next activity."""
    return [(k % people, ACTIVITIES[(k // people) % len(ACTIVITIES)]) for k in range(start, start + count)]


def score_value(mode: Mode, sub: str, activity: str, step: float) -> float:
    """A score unique to its person and activity (the n-th one is n * step), so the gradebook tells
    every delivery apart whatever timestamps the platform was sent."""
    mode.seq[(sub, activity)] += 1
    return round(mode.seq[(sub, activity)] * step, 6)


def record_scores(server, mode: Mode, plan: list[tuple[int, str]], step: float, rate: float = 0.0) -> list[str]:
    """Record one scored event per plan entry, each in its own transaction (as a request would);
    at ``rate`` per second if given. Returns the event ids in order."""
    from lti_tool.events import LearningEvent, Result

    ids = []
    started = time.monotonic()
    for index, (person, activity) in enumerate(plan):
        if rate:
            wait = started + index / rate - time.monotonic()
            if wait > 0:
                time.sleep(wait)
        context = mode.contexts[person]
        score = score_value(mode, context.sub, activity, step)
        with server.tool.events.record(context, PLUGIN) as rec:
            ids.append(
                rec.emit(
                    LearningEvent(
                        "scored", activity, Result(score_raw=score, score_max=SCORE_MAX, completion=True)
                    )
                )
            )
        mode.expected[(context.sub, activity)].append(score)
    return ids


# -- measuring -----------------------------------------------------------------------------------


def pending_count(db) -> int:
    from sqlalchemy import func, select

    from lti_tool.models import OutboxMessage

    with db.sessions() as session:
        return session.scalar(
            select(func.count()).select_from(OutboxMessage).where(OutboxMessage.status == "pending")
        )


def mode_rows(db, mode: Mode) -> dict[str, dict]:
    """The mode's outbox rows by event id: status, attempts, created_at, delivered_at."""
    from sqlalchemy import select

    from lti_tool.models import LearningEventRow, OutboxMessage

    course_pk = mode.contexts[0].course_pk
    with db.sessions() as session:
        found = session.execute(
            select(
                OutboxMessage.event_id,
                OutboxMessage.status,
                OutboxMessage.attempts,
                OutboxMessage.created_at,
                OutboxMessage.delivered_at,
            )
            .join(LearningEventRow, LearningEventRow.id == OutboxMessage.event_id)
            .where(LearningEventRow.course_id == course_pk, OutboxMessage.receiver == "ags")
        )
        return {
            row.event_id: {
                "status": row.status,
                "attempts": row.attempts,
                "created_at": row.created_at,
                "delivered_at": row.delivered_at,
            }
            for row in found
        }


def wait_until_empty(db, deadline: float, children: list[Child]) -> None:
    """Until no outbox row is pending; fails if a worker exits or the deadline passes."""
    while pending_count(db):
        for child in children:
            if child.proc.poll() is not None:
                raise RuntimeError(f"{child.name} exited while delivering:\n{child.log_tail()}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"rows still pending after the timeout ({pending_count(db)} left)")
        time.sleep(POLL_SECONDS)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


def latencies_ms(rows: dict[str, dict], ids: list[str]) -> list[float]:
    return [
        (rows[i]["delivered_at"] - rows[i]["created_at"]).total_seconds() * 1000
        for i in ids
        if i in rows and rows[i]["delivered_at"] is not None
    ]


@dataclass
class Usage:
    """CPU seconds of this process, some children, and the whole machine, between two moments."""

    pids: list[int]
    wall: float = 0.0
    ours: float = 0.0
    theirs: float = 0.0
    machine: float = 0.0

    def start(self) -> Usage:
        self.wall = time.perf_counter()
        self.ours = procs.cpu_seconds(os.getpid())
        self.theirs = sum(procs.cpu_seconds(p) for p in self.pids)
        self.machine = procs.machine_busy_seconds()
        return self

    def stop(self) -> dict:
        wall = time.perf_counter() - self.wall
        ours = procs.cpu_seconds(os.getpid()) - self.ours
        theirs = sum(procs.cpu_seconds(p) for p in self.pids) - self.theirs
        machine = procs.machine_busy_seconds() - self.machine
        return {"wall": wall, "here": ours, "children": theirs, "others": max(0.0, machine - ours - theirs)}


def calibrate() -> float:
    """Milliseconds for a fixed pure-Python loop, the best of three: how fast the machine is now.

    The shared 2-CPU VM's speed drifts with other people's load (on the host as well as here), by
    up to twice; rows measured at different moments compare only as far as these agree."""
    best = math.inf
    for _ in range(3):
        started = time.perf_counter()
        total = 0
        for i in range(300_000):
            total += i * i % 7
        best = min(best, time.perf_counter() - started)
    return best * 1000


def run_worker_mode(server, mode: Mode, args, tmp: Path, config_base: dict, platform) -> None:
    per_process = mode.workers // mode.processes
    children = [
        Child(
            f"{mode.course}-worker-{n + 1}",
            {**config_base, "kind": "worker", "concurrency": per_process},
            tmp,
        )
        for n in range(mode.processes)
    ]
    try:
        for child in children:
            if child.read_line(READY_TIMEOUT) != "ready":
                raise RuntimeError(f"{child.name} did not say ready:\n{child.log_tail()}")
        mode.result["calibration"] = calibrate()
        platform.ags_delay = args.platform_latency_ms / 1000
        usage = Usage([c.pid for c in children]).start()
        started = datetime.now(UTC)
        for child in children:
            child.send("go")
        wait_until_empty(server.db, time.monotonic() + args.timeout, children)
        cpu = usage.stop()
        rows = mode_rows(server.db, mode)
        delivered = [rows[i]["delivered_at"] for i in mode.event_ids if rows.get(i, {}).get("delivered_at")]
        elapsed = (max(delivered) - started).total_seconds() if delivered else float("nan")
        mode.result.update(elapsed=elapsed, cpu=cpu, backlog_latency=latencies_ms(rows, mode.event_ids))

        if args.paced_rate and args.paced_seconds:
            count = max(1, int(args.paced_rate * args.paced_seconds))
            plan = score_plan(len(mode.event_ids), count, args.people)
            mode.paced_ids = record_scores(server, mode, plan, args.step, rate=args.paced_rate)
            wait_until_empty(server.db, time.monotonic() + args.timeout, children)
            rows = mode_rows(server.db, mode)
            mode.result["paced_latency"] = latencies_ms(rows, mode.paced_ids)
        platform.ags_delay = 0.0
        outcomes: Counter[str] = Counter()
        for child in children:
            outcomes.update(child.finish()["outcomes"])
        mode.result["outcomes"] = dict(outcomes)
        mode.result["rows"] = Counter((r["status"], r["attempts"]) for r in rows.values())
    finally:
        platform.ags_delay = 0.0
        for child in children:
            if child in Child.running:
                Child.running.remove(child)
                child.kill()


def run_inline_mode(child: Child, mode: Mode, args, platform) -> None:
    try:
        if child.read_line(READY_TIMEOUT) != "ready":
            raise RuntimeError(f"{child.name} did not say ready:\n{child.log_tail()}")
        mode.result["calibration"] = calibrate()
        platform.ags_delay = args.platform_latency_ms / 1000
        usage = Usage([child.pid]).start()
        child.send("go")
        summary = json.loads(child.read_line(args.timeout))
        cpu = usage.stop()
        cpu["children"] = summary["cpu"]
        mode.result.update(elapsed=summary["elapsed"], cpu=cpu, answers=summary["answers"])
        child.proc.stdin.close()
        child.proc.wait(timeout=30)
    finally:
        platform.ags_delay = 0.0
        if child in Child.running:
            Child.running.remove(child)
            child.kill()


def check_gradebook(platform, mode: Mode) -> dict:
    """The platform's gradebook for the mode's course against what was recorded."""
    prefix = f"/mod/lti/services.php/{quote(mode.course, safe='')}/lineitems/"
    columns = [c for c in platform.gradebook() if prefix in c["id"]]
    received: dict[tuple[str, str], list[float]] = defaultdict(list)
    per_activity = Counter()
    for column in columns:
        activity = (column["resourceId"] or "").rpartition(":")[2]
        per_activity[activity] += 1
        for sub, grade in column["grades"].items():
            received[(sub, activity)].extend(round(float(h["scoreGiven"]), 6) for h in grade["history"])
    expected_total = sum(len(v) for v in mode.expected.values())
    received_total = sum(len(v) for v in received.values())
    lost = duplicated = 0
    order_kept = True
    for key in set(mode.expected) | set(received):
        want = mode.expected.get(key, [])
        got = received.get(key, [])
        position = {score: index for index, score in enumerate(want)}
        lost += len(set(want) - set(got))
        duplicated += len(got) - len(set(got) & set(want))  # again, or not recorded at all
        firsts = [position[s] for s in dict.fromkeys(got) if s in position]
        order_kept &= firsts == sorted(firsts)
    conflicts = sum(
        1 for r in platform.ags_requests if r["status"] == 409 and prefix in r["url"] and "/scores" in r["url"]
    )
    return {
        "expected": expected_total,
        "received": received_total,
        "lost": lost,
        "duplicated": duplicated,
        "order_kept": order_kept,
        "conflicts": conflicts,
        "columns": dict(per_activity),
    }


# -- output ------------------------------------------------------------------------------------


def tree_state() -> str:
    try:
        head = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--", "lti_tool"], capture_output=True, text=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown commit"
    return f"commit {head}" + (" + uncommitted changes in lti_tool/" if dirty else "")


LEGEND = """\
scores/s  scores delivered / elapsed: workers, from their start to the last delivered_at (the outbox
          empty); inline, from the first send to the last answer
elapsed   seconds for all the row's scores
CPU       ms per score of the process(es) delivering (the workers, or the inline sender)
platform  ms per score of this process: the test platform answering, plus the tool's server (idle)
          and the benchmark's polling
others    CPU the rest of the machine used meanwhile, % of one core (PostgreSQL's server included)
backlog   p50/p95 ms from an event's recording to its delivered_at, for the backlog: every score
          was recorded before the workers started, so this is mostly waiting in line
steady    the same for the steady stream recorded while the workers ran (idle workers look for
          due rows every outbox.poll_interval_seconds)
calib     ms this process took for a fixed Python loop just before the row: the machine's speed at
          that moment (higher = slower); compare rows only as far as it agrees"""


def fmt(value: float, digits: int = 1) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def print_report(modes: list[Mode], args) -> None:
    print()
    print(
        f"{'':34}{'scores/s':>9}{'elapsed':>9}{'CPU':>7}{'platform':>9}{'others':>8}"
        f"{'backlog p50':>12}{'p95':>8}{'steady p50':>11}{'p95':>7}{'calib':>7}"
    )
    for mode in modes:
        r = mode.result
        n = args.scores
        rate = n / r["elapsed"] if r.get("elapsed") else float("nan")
        r["rate"] = rate
        cpu = r["cpu"]
        backlog = r.get("backlog_latency", [])
        steady = r.get("paced_latency", [])
        print(
            f"{mode.label:34}{fmt(rate):>9}{fmt(r['elapsed']):>9}{fmt(cpu['children'] * 1000 / n, 2):>7}"
            f"{fmt(cpu['here'] * 1000 / n, 2):>9}{fmt(cpu['others'] * 100 / cpu['wall'], 0) + '%':>8}"
            f"{fmt(percentile(backlog, 50) if backlog else None, 0):>12}"
            f"{fmt(percentile(backlog, 95) if backlog else None, 0):>8}"
            f"{fmt(percentile(steady, 50) if steady else None, 0):>11}"
            f"{fmt(percentile(steady, 95) if steady else None, 0):>7}"
            f"{fmt(r.get('calibration'), 0):>7}"
        )
    print()
    print(LEGEND)
    print()
    print("Answers: the workers' outcomes; the inline senders' answers from the platform")
    for mode in modes:
        r = mode.result
        if mode.kind == "worker":
            rows = r["rows"]
            retried = sum(c for (status, attempts), c in rows.items() if attempts > 1)
            states = Counter()
            for (status, _attempts), c in rows.items():
                states[status] += c
            shown = ", ".join(f"{k} {v}" for k, v in sorted(r["outcomes"].items()))
            print(
                f"  {mode.label:32} {shown}; rows {dict(sorted(states.items()))}, tried more than once {retried}"
            )
        else:
            shown = ", ".join(f"{k}: {v}" for k, v in sorted(r["answers"].items()))
            print(f"  {mode.label:32} {shown}")
    print()
    print("Gradebook on the platform, per row's course")
    print(
        f"  {'':32}{'expected':>9}{'received':>9}{'lost':>6}{'duplicated':>11}{'order kept':>11}{'409s':>6}  columns"
    )
    for mode in modes:
        g = mode.result["gradebook"]
        columns = ", ".join(f"{k} {v}" for k, v in sorted(g["columns"].items()))
        print(
            f"  {mode.label:32}{g['expected']:>9}{g['received']:>9}{g['lost']:>6}{g['duplicated']:>11}"
            f"{'yes' if g['order_kept'] else 'NO':>11}{g['conflicts']:>6}  {columns}"
        )
    print()
    bare = next((m for m in modes if m.kind == "bare"), None)
    sync = next((m for m in modes if m.kind == "sync"), None)
    for base in (b for b in (bare, sync) if b is not None):
        ratios = ", ".join(
            f"{m.label} {m.result['rate'] / base.result['rate']:.2f}x" for m in modes if m.kind == "worker"
        )
        print(f"worker/{base.label} scores/s: {ratios}")
    workers = [m for m in modes if m.kind == "worker"]
    recorded = [m.result["recorded_rate"] for m in workers if m.result.get("recorded_rate")]
    if recorded:
        inline = ", ".join(f"{b.label} {1000 / b.result['rate']:.1f} ms" for b in (bare, sync) if b is not None)
        print(
            f"In the request, per score: recording it with its outbox row {1000 * len(recorded) / sum(recorded):.1f} ms "
            f"(tool.events.record, one transaction); sending it inline instead: {inline}"
        )
    lost = sum(m.result["gradebook"]["lost"] for m in workers)
    duplicated = sum(m.result["gradebook"]["duplicated"] for m in workers)
    order = all(m.result["gradebook"]["order_kept"] for m in workers)
    print(
        f"Worker rows: lost {lost}, duplicated {duplicated} (must be 0), per-person order kept: "
        f"{'yes' if order else 'NO'}"
    )


# -- main --------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--scores", type=int, default=2000, help="scores per row (2000; the README has 10000)")
    parser.add_argument(
        "--workers",
        type=parse_workers,
        default=[(1, False), (4, False)],
        help="worker counts, comma-separated; a 'p' suffix runs each in its own process (1,4)",
    )
    parser.add_argument("--people", type=int, default=50, help="candidates, each scored on two activities (50)")
    parser.add_argument("--paced-rate", type=float, default=20.0, help="steady stream: scores per second (20)")
    parser.add_argument("--paced-seconds", type=float, default=10.0, help="steady stream: seconds; 0 skips (10)")
    parser.add_argument(
        "--platform-latency-ms", type=float, default=0.0, help="delay on every AGS answer while timed (0)"
    )
    parser.add_argument("--skip-sync", action="store_true", help="leave out the inline sync_score row")
    parser.add_argument(
        "--shared-people",
        action="store_true",
        help="score the same people in every row: later rows then find the earlier rows' delivered "
        "outbox rows in their ordering keys (a person's history), instead of starting empty",
    )
    parser.add_argument("--timeout", type=float, default=1800.0, help="most seconds any phase may take (1800)")
    parser.add_argument(
        "--database-url",
        help="PostgreSQL to run on (postgresql+psycopg2://user@127.0.0.1:5432/db): a schema of its own, "
        "dropped at the end; SQLite in a temporary folder otherwise",
    )
    args = parser.parse_args(argv)
    if args.child:
        return child_main(args.child)
    if not 1 <= args.scores <= 1_000_000 or not 1 <= args.people <= 10_000:
        parser.error("--scores must be 1..1000000 and --people 1..10000")
    if args.paced_rate < 0 or args.paced_seconds < 0 or not 0 <= args.platform_latency_ms <= 5000:
        parser.error("--paced-rate, --paced-seconds must not be negative; --platform-latency-ms 0..5000")
    if args.database_url and not args.database_url.startswith("postgresql"):
        parser.error("--database-url must be a postgresql URL")
    return run(args)


def run(args) -> int:
    from lti_tool.grades import SCORE_SCOPE
    from lti_tool.platforms import get_platform
    from tests import plugin_install
    from tests.platform_emulator import TestPlatform
    from tests.tool_server import ToolServer

    atexit.register(Child.kill_all)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, lambda s, _f: sys.exit(128 + s))
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)

    modes = make_modes(args.workers, args.skip_sync, args.shared_people)
    paced = int(args.paced_rate * args.paced_seconds) if args.paced_rate and args.paced_seconds else 0
    # Scores per person and activity at most, so each one's value (n * step) stays within 0..10.
    per_key = math.ceil((args.scores + paced) / (args.people * len(ACTIVITIES))) + 1
    args.step = SCORE_MAX / per_key

    tmp = Path(tempfile.mkdtemp(prefix="npqsl-bench-outbox-"))
    site = tmp / "site"
    drop_schema = None
    platform = server = None
    failed = False
    try:
        database_url = None
        database = "SQLite (a file in a temporary folder)"
        if args.database_url:
            database_url, drop_schema = postgres_schema(args.database_url)
            database = "PostgreSQL (a schema of its own)"
        plugin_install.install(site, {PLUGIN: PLUGIN_ENTRY_POINT})
        platform = TestPlatform(client_id="bench-client-1", deployment_id="bench-deploy-1").start()
        # Moodle compares timestamps in whole seconds and answers 409 to one at or before the stored
        # time: with scores for the same person seconds apart that would test the conflict path, not
        # delivery. Other platforms compare exactly; so does this run.
        platform.timestamp_precision = "millisecond"
        server = ToolServer(tmp / "instance", database_url).start()
        logging.getLogger("lti_tool").setLevel(logging.WARNING)
        info = server.register(platform)
        # Only the gradebook receiver: any other installed one is not under test.
        server.tool.events.receivers[:] = [r for r in server.tool.events.receivers if r.name == "ags"]
        config_base = {
            "instance": str(tmp / "instance"),
            "database_url": database_url,
            "sys_path": [str(ROOT), str(site), str(plugin_install.EXAMPLE_SOURCE)],
        }

        print(
            f"Outbox delivery of AGS scores — {date.today().isoformat()}, Python {host.python_version()}, "
            f"{os.cpu_count()} CPUs, {tree_state()}, {database}"
        )
        outbox = server.tool.settings.outbox
        print(
            f"{args.scores} scores per row: {args.people} people "
            f"({'the same in every row' if args.shared_people else 'of its own'}) x {len(ACTIVITIES)} activities "
            f"({args.people * len(ACTIVITIES)} ordering keys); quiz: the line item named by the launch, "
            "journal: one the tool creates"
        )
        print(
            f"Outbox settings: batch_size {outbox.batch_size}, poll_interval {outbox.poll_interval_seconds:g} s; "
            f"platform: tests/platform_emulator.py in this process, timestamps compared to the millisecond, "
            f"AGS answers delayed {args.platform_latency_ms:g} ms; load average before "
            + " ".join(f"{x:.2f}" for x in os.getloadavg())
        )

        started = time.perf_counter()
        for mode in modes:
            # The quiz's grade item is the link's own (deep linking placed it with a lineItem), so
            # launches into the link name it; the journal's is made by the tool when first scored.
            platform.add_grade_item(
                mode.link,
                "Example knowledge check",
                SCORE_MAX,
                course_id=mode.course,
                resource_id=f"{PLUGIN}:quiz",
                tag="example",
            )
            if mode.kind == "bare":
                # The baseline knows both line items already and needs no launch, only enrolments.
                platform.add_grade_item(
                    mode.link,
                    "Example reflective journal",
                    SCORE_MAX,
                    course_id=mode.course,
                    resource_id=f"{PLUGIN}:journal",
                    tag="example",
                    manual=True,
                )
                for person in range(args.people):
                    platform.enrol(mode.sub(person), mode.course)
            else:
                launch_people(server, platform, mode, args.people)
        print(
            f"Set-up: {sum(len(m.contexts) for m in modes)} launches in {time.perf_counter() - started:.1f} s",
            flush=True,
        )

        for mode in modes:
            if mode.kind == "worker":
                begin = time.perf_counter()
                mode.event_ids = record_scores(server, mode, score_plan(0, args.scores, args.people), args.step)
                mode.result["recorded_rate"] = args.scores / (time.perf_counter() - begin)
                print(
                    f"{mode.label}: {args.scores} scores recorded, {mode.result['recorded_rate']:.0f}/s",
                    flush=True,
                )
                run_worker_mode(server, mode, args, tmp, config_base, platform)
            elif mode.kind == "bare":
                with server.app.app_context():
                    token = server.tool.service_connector(get_platform(server.db, info.id)).get_access_token(
                        [SCORE_SCOPE]
                    )
                urls = {a: mode_item_url(platform, mode, a) for a in ACTIVITIES}
                items = []
                for person, activity in score_plan(0, args.scores, args.people):
                    sub = mode.sub(person)
                    score = score_value(mode, sub, activity, args.step)
                    mode.expected[(sub, activity)].append(score)
                    body = {
                        "userId": sub,
                        "scoreGiven": score,
                        "scoreMaximum": SCORE_MAX,
                        "activityProgress": "Completed",
                        "gradingProgress": "FullyGraded",
                    }
                    items.append((urls[activity], body))
                child = Child(
                    f"{mode.course}-inline-bare",
                    {
                        **config_base,
                        "kind": "bare",
                        "token": token,
                        "http_timeout": server.tool.settings.http_timeout,
                        "items": items,
                    },
                    tmp,
                )
                run_inline_mode(child, mode, args, platform)
            else:
                mode.event_ids = record_scores(server, mode, score_plan(0, args.scores, args.people), args.step)
                child = Child(
                    f"{mode.course}-inline-sync", {**config_base, "kind": "sync", "event_ids": mode.event_ids}, tmp
                )
                run_inline_mode(child, mode, args, platform)
            mode.result["gradebook"] = check_gradebook(platform, mode)
            print(f"{mode.label}: done", flush=True)
        print_report(modes, args)
        print("load average after: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    except (RuntimeError, OSError) as failure:
        failed = True
        print(f"benchmark failed: {failure}", file=sys.stderr)
    finally:
        Child.kill_all()
        if server is not None:
            server.stop()
        if platform is not None:
            platform.stop()
        plugin_install.uninstall(site)
        if drop_schema is not None:
            drop_schema()
        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failed else 0


def mode_item_url(platform, mode: Mode, activity: str) -> str:
    for item in platform.grade_items:
        if item.course_id == mode.course and item.resource_id == f"{PLUGIN}:{activity}":
            return platform.lineitem_url(item).replace("/lineitem?", "/lineitem/scores?")
    raise RuntimeError(f"no {activity} line item in {mode.course}")


if __name__ == "__main__":
    sys.exit(main())
