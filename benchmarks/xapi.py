"""The embedded LRS under load: statement ingest over HTTP, and GET query latency at 100k and 1M.

    python benchmarks/xapi.py [--sizes 100k,1m] [--database-url postgresql+psycopg2://user@host/db]
                              [--ingest 20000] [--concurrency 1,4] [--workers 2] [--queries 100]
                              [--limit 100] [--people 5000] [--activities 300] [--skip-export]

Everything runs on 127.0.0.1. The tool is set up as an operator would (``npqsl-lti db upgrade``,
``npqsl-lti lrs key create --scope all``) and served by gunicorn (``--workers`` sync workers,
the app factory ``lti_tool.app:create_app()``), on SQLite in a temporary folder unless
``--database-url`` names a PostgreSQL database, where it works in a schema of its own, dropped at
the end. This process is the client: ``requests`` sessions, one thread per concurrent client.

Phases, with figures only (no assertions; exits 1 if a phase fails):

- ``ingest``: POST /xapi/statements with batches of 100 tool-like statements (account actors
  from ``--people`` people, the tool's verbs, ``--activities`` plugin activities, registrations,
  results, LTI context extensions), ``--ingest`` statements per concurrency level, on the empty
  LRS and again at each size. Statements/s = statements / wall time of the level; every batch
  must answer 200.
- ``seed``: for each size, statements are added directly to the database up to that size,
  through the store the HTTP API uses (``StatementStore.store`` in this process, batches of
  2,000, the flat projection installed as in the tool): the same rows the API would write,
  without HTTP. On PostgreSQL a ``VACUUM (ANALYZE)`` follows, as autovacuum would soon after
  such a load (fresh statistics, and the visibility map index-only scans need).
- ``query``: GET /xapi/statements?limit=``--limit`` with one filter at a time — agent, verb,
  activity, registration, since (the newest 1,000 stored), none — and agent+verb, each
  ``--queries`` times with values drawn from the stored population, one client, sequential.
  p50/p95/max of the client-side latency (request sent to body read).
- ``export``: ``npqsl-lti xapi export --format csv|jsonl --out FILE`` of everything stored, as a
  subprocess: statements/s and its peak RSS (``wait4``), which stays flat if the export streams.
- ``analytics``: the analytics page's queries for the seeded statements' platform over 30 and
  365 days, in this process.

Targets (issue 5): ingest >= 3,000 statements/s; query p95 < 50 ms at 1M statements. Anchors
measured on this kind of machine: the reference ADL LRS ingests ~61 statements/s with GET p50
130-480 ms at 11k statements; SQL LRS publishes ~325 statements/s and 45-60 ms queries.
"""

from __future__ import annotations

import argparse
import json
import os
import platform as host
import random
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# This file's name would shadow the xapi package: the repository comes first, benchmarks/ last.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path[:0] = [str(ROOT)]
sys.path.append(str(HERE))

import procs  # noqa: E402
import requests  # noqa: E402

from lti_tool import models  # noqa: E402, F401  (every table on the metadata)
from lti_tool.db import Database  # noqa: E402
from xapi.projection import Extensions, projector  # noqa: E402
from xapi.vocabulary import COURSE_TYPE, FALLBACK_BASE, VERBS, Vocabulary, registration  # noqa: E402

INGEST_TARGET = 3000.0
QUERY_P95_TARGET_MS = 50.0
ANCHORS = (
    "reference ADL LRS: ~61 statements/s, GET p50 130-480 ms at 11k statements",
    "SQL LRS (published): ~325 statements/s, 45-60 ms queries",
)
BATCH = 100
SEED_BATCH = 2000
ISSUER = "https://moodle.bench.example"
COURSES = 20
XAPI_VERSION = "1.0.3"
# How often each kind of learning event happens, roughly as a module's activity produces them.
VERB_WEIGHTS = {
    "launched": 10,
    "initialized": 6,
    "experienced": 20,
    "progressed": 20,
    "answered": 15,
    "completed": 8,
    "submitted": 2,
    "scored": 6,
    "passed": 4,
    "failed": 2,
    "attended": 1,
    "commented": 3,
}
FILTERS = ("agent", "verb", "activity", "registration", "since", "none", "agent+verb")


def parse_size(text: str) -> int:
    text = text.strip().lower()
    factor = {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1)
    number = text[:-1] if text[-1:] in "km" else text
    try:
        value = int(float(number) * factor)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: a size like 10k, 100k or 1m") from None
    if not 1 <= value <= 20_000_000:
        raise argparse.ArgumentTypeError(f"{text!r}: sizes go from 1 to 20m")
    return value


def sizes(text: str) -> list[int]:
    return sorted({parse_size(part) for part in text.split(",") if part.strip()})


def levels(text: str) -> list[int]:
    values = [int(v) for v in text.split(",") if v.strip()]
    if not values or any(v < 1 or v > 64 for v in values):
        raise argparse.ArgumentTypeError("a comma-separated list of numbers from 1 to 64")
    return values


def human(n: int) -> str:
    if n >= 1_000_000 and n % 100_000 == 0:
        return f"{n / 1_000_000:g}M"
    if n >= 1_000 and n % 100 == 0:
        return f"{n / 1_000:g}k"
    return str(n)


# -- statements -------------------------------------------------------------------------------------


class Population:
    """The people, courses and activities statements are drawn from (seeded: the same each run)."""

    def __init__(self, people: int, activities: int, seed: int = 20261122):
        self.rng = random.Random(seed)
        self.vocabulary = Vocabulary(FALLBACK_BASE)
        self.extensions = Extensions.of(self.vocabulary)
        self.people = [f"cand-{n:06d}" for n in range(people)]
        self.course_of = {sub: f"course-{n % COURSES:02d}" for n, sub in enumerate(self.people)}
        self.activities = [
            self.vocabulary.plugin_activity("modules", f"module-{n % 4 + 1}/unit-{n // 4 + 1:03d}")
            for n in range(activities)
        ]
        self.verbs = list(VERB_WEIGHTS)
        self.weights = list(VERB_WEIGHTS.values())
        self.now = datetime.now(UTC)

    def registration(self, sub: str) -> str:
        return registration(ISSUER, self.course_of[sub], sub)

    def agent(self, sub: str) -> dict:
        return {"objectType": "Agent", "account": {"homePage": ISSUER, "name": sub}}

    def statement(self, rng: random.Random) -> dict:
        sub = rng.choice(self.people)
        kind = rng.choices(self.verbs, self.weights)[0]
        activity = rng.choice(self.activities)
        course = self.course_of[sub]
        moment = self.now - timedelta(seconds=rng.randrange(365 * 86400))
        statement = {
            "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "actor": self.agent(sub),
            "verb": {"id": VERBS[kind].iri, "display": {"en-GB": VERBS[kind].display}},
            "object": {
                "objectType": "Activity",
                "id": activity,
                "definition": {
                    "type": "http://adlnet.gov/expapi/activities/lesson",
                    "name": {"en-GB": activity.rsplit("/", 2)[-2] + " " + activity.rsplit("/", 1)[-1]},
                },
            },
            "context": {
                "registration": self.registration(sub),
                "contextActivities": {
                    "parent": [{"id": activity.rsplit("/", 1)[0], "objectType": "Activity"}],
                    "grouping": [
                        {"id": self.vocabulary.qualification, "objectType": "Activity"},
                        {
                            "id": self.vocabulary.course(ISSUER, course),
                            "objectType": "Activity",
                            "definition": {"type": COURSE_TYPE},
                        },
                    ],
                    "category": [{"id": self.vocabulary.profile_version, "objectType": "Activity"}],
                },
                "platform": "Moodle",
                "language": "en-GB",
                "extensions": {
                    self.extensions.context_id: course,
                    self.extensions.deployment_id: "1",
                    self.extensions.resource_link_id: f"rl-{rng.randrange(200)}",
                },
            },
            "timestamp": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        }
        if kind in ("scored", "passed", "failed", "completed"):
            raw = rng.randrange(0, 11)
            statement["result"] = {
                "score": {"scaled": raw / 10, "raw": raw, "min": 0, "max": 10},
                "success": kind == "passed" or (kind != "failed" and raw >= 5),
                "completion": True,
                "duration": f"PT{rng.randrange(60, 3600)}S",
            }
        return statement


# -- the served tool -------------------------------------------------------------------------------


@dataclass
class Lrs:
    server: procs.Server
    key: str
    secret: str
    env: dict[str, str]
    database_url: str

    @property
    def url(self) -> str:
        return self.server.base_url + "/xapi/statements"

    def session(self) -> requests.Session:
        session = requests.Session()
        session.auth = (self.key, self.secret)
        session.headers["X-Experience-API-Version"] = XAPI_VERSION
        return session


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NPQSL_")}
    env.update(extra)
    return env


def cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "lti_tool.cli", *args], env=env, capture_output=True, text=True, timeout=600
    )
    if done.returncode != 0:
        raise RuntimeError(f"npqsl-lti {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def start(tmp: Path, database_url: str, workers: int) -> Lrs:
    env = clean_env(
        NPQSL_ENV="development",
        NPQSL_INSTANCE_PATH=str(tmp / "instance"),
        NPQSL_DATABASE_URL=database_url,
        NPQSL_OUTBOX_INLINE_WORKER="false",
        NPQSL_LOG_LEVEL="WARNING",
    )
    cli(env, "db", "upgrade")
    created = dict(
        line.split(":", 1)
        for line in cli(env, "lrs", "key", "create", "--scope", "all").splitlines()
        if ":" in line
    )
    port = procs.free_port()
    cmd = [sys.executable, "-m", "gunicorn", "--workers", str(workers), "--worker-class", "sync"]
    cmd += ["--bind", f"127.0.0.1:{port}", "--timeout", "300", "--graceful-timeout", "5"]
    if procs._has_control_socket():
        cmd += ["--no-control-socket"]
    server = procs.Server(
        "tool", [*cmd, "lti_tool.app:create_app()"], port=port, env=env, log_path=tmp / "tool.log"
    )
    server.start().wait_ready("/healthz", timeout=120)
    return Lrs(server, created["key"].strip(), created["secret"].strip(), env, database_url)


# -- measurements ----------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


@dataclass
class IngestRow:
    stored_before: int
    concurrency: int
    statements: int
    seconds: float
    batch_ms: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.statements / self.seconds


def ingest(
    lrs: Lrs, population: Population, total: int, concurrency: int, seed: int, stored_before: int
) -> IngestRow:
    """POST ``total`` statements in batches of 100 from ``concurrency`` threads."""
    batches = total // BATCH
    rng = random.Random(seed)
    bodies = [json.dumps([population.statement(rng) for _ in range(BATCH)]).encode() for _ in range(batches)]
    todo = list(range(batches))
    lock = threading.Lock()
    latencies: list[float] = []
    failures: list[str] = []

    def client() -> None:
        session = lrs.session()
        session.headers["Content-Type"] = "application/json"
        while True:
            with lock:
                if not todo or failures:
                    return
                index = todo.pop()
            began = time.perf_counter()
            answer = session.post(lrs.url, data=bodies[index], timeout=300)
            elapsed = time.perf_counter() - began
            with lock:
                latencies.append(elapsed * 1000)
                if answer.status_code != 200:
                    failures.append(f"POST answered {answer.status_code}: {answer.text[:300]}")

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - began
    if failures:
        raise RuntimeError(failures[0])
    return IngestRow(stored_before, concurrency, batches * BATCH, seconds, latencies)


def seed_to(
    database_url: str, population: Population, target: int, stored: int, seed: int, platform_id: int
) -> tuple[int, float]:
    """Store statements directly (no HTTP) until ``target`` are stored; returns (count, seconds)."""
    from xapi.lrs.store import StatementStore

    db = Database(database_url)
    store = StatementStore(db)
    store.after_store.append(projector(population.extensions))
    authority = {"objectType": "Agent", "account": {"homePage": FALLBACK_BASE, "name": "bench-seed"}}
    rng = random.Random(seed)
    began = time.perf_counter()
    added = 0
    try:
        while stored + added < target:
            size = min(SEED_BATCH, target - stored - added)
            store.store(
                [population.statement(rng) for _ in range(size)], authority=authority, platform_id=platform_id
            )
            added += size
            if sys.stderr.isatty():
                print(f"\r  seeding {human(stored + added)} / {human(target)}", end="", file=sys.stderr)
    finally:
        db.dispose()
    if sys.stderr.isatty():
        print("\r" + " " * 40 + "\r", end="", file=sys.stderr)
    return added, time.perf_counter() - began


def settle(database_url: str) -> None:
    """On PostgreSQL, what autovacuum does soon after a bulk load: statistics and the visibility
    map (index-only scans need it). A deployment at this size is in that state."""
    if not database_url.startswith("postgresql"):
        return
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            for table in ("lrs_statements", "lrs_statement_terms", "xapi_flat_statements"):
                conn.execute(text(f"VACUUM (ANALYZE) {table}"))
    finally:
        engine.dispose()


SIZED_TABLES = ("lrs_statements", "lrs_statement_terms", "lrs_activities", "xapi_flat_statements")


def table_sizes(database_url: str) -> dict[str, int]:
    """Bytes on disk per table, its indexes included."""
    from sqlalchemy import bindparam, text

    db = Database(database_url)
    try:
        with db.sessions() as session:
            if database_url.startswith("postgresql"):
                rows = session.execute(
                    text(
                        "SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c "
                        "JOIN pg_namespace n ON n.oid = c.relnamespace "
                        "WHERE n.nspname = current_schema() AND c.relname IN :names"
                    ).bindparams(bindparam("names", expanding=True)),
                    {"names": list(SIZED_TABLES)},
                )
            else:
                rows = session.execute(
                    text(
                        "SELECT m.tbl_name, sum(d.pgsize) FROM dbstat d JOIN sqlite_master m ON m.name = d.name "
                        "GROUP BY m.tbl_name"
                    )
                )
            return {name: size for name, size in rows if name in SIZED_TABLES}
    finally:
        db.dispose()


def stored_count(database_url: str) -> int:
    from sqlalchemy import text

    db = Database(database_url)
    try:
        with db.sessions() as session:
            return session.scalar(text("SELECT count(*) FROM lrs_statements"))
    finally:
        db.dispose()


def since_value(database_url: str, newest: int) -> str:
    """The stored time just before the newest ``newest`` statements (a ``since`` that returns them)."""
    from sqlalchemy import text

    from xapi.lrs.store import format_ms

    db = Database(database_url)
    try:
        with db.sessions() as session:
            ms = session.scalar(
                text("SELECT stored_ms FROM lrs_statements ORDER BY seq DESC LIMIT 1 OFFSET :n"), {"n": newest}
            )
    finally:
        db.dispose()
    return format_ms((ms or 0) - 1)


@dataclass
class QueryRow:
    size: int
    name: str
    latencies_ms: list[float]
    returned: list[int]

    def p(self, q: float) -> float:
        return percentile(self.latencies_ms, q)


def queries(lrs: Lrs, population: Population, size: int, count: int, limit: int, since: str) -> list[QueryRow]:
    rng = random.Random(size)
    session = lrs.session()
    rows = []
    for name in FILTERS:
        latencies, returned = [], []
        for _ in range(count):
            sub = rng.choice(population.people)
            params: dict[str, str] = {"limit": str(limit)}
            if "agent" in name:
                params["agent"] = json.dumps(population.agent(sub))
            if "verb" in name:
                params["verb"] = VERBS[rng.choices(population.verbs, population.weights)[0]].iri
            if name == "activity":
                params["activity"] = rng.choice(population.activities)
            if name == "registration":
                params["registration"] = population.registration(sub)
            if name == "since":
                params["since"] = since
            began = time.perf_counter()
            answer = session.get(lrs.url, params=params, timeout=120)
            body = answer.content
            latencies.append((time.perf_counter() - began) * 1000)
            if answer.status_code != 200:
                raise RuntimeError(f"GET {name} answered {answer.status_code}: {body[:300]!r}")
            returned.append(len(json.loads(body)["statements"]))
        rows.append(QueryRow(size, name, latencies, returned))
    return rows


@dataclass
class ExportRow:
    size: int
    fmt: str
    statements: int
    seconds: float
    max_rss_mb: float


def export(lrs: Lrs, tmp: Path, size: int, fmt: str) -> ExportRow:
    out = tmp / f"export-{size}.{fmt}"
    began = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "lti_tool.cli", "xapi", "export", "--format", fmt, "--out", str(out)],
        env=lrs.env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _pid, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - began
    message = process.stderr.read().decode(errors="replace") if process.stderr else ""
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"export failed: {message[-500:]}")
    written = int(message.split("exported ", 1)[1].split(" ", 1)[0])
    out.unlink()
    return ExportRow(size, fmt, written, seconds, usage.ru_maxrss / 1024)


def register_platform(database_url: str) -> int:
    """The VLE the seeded statements come from, registered as an operator would (once per database)."""
    from lti_tool.platforms import add_platform, find_platform

    db = Database(database_url)
    try:
        known = find_platform(db, ISSUER, "bench")
        if known is not None:
            return known.id
        return add_platform(
            db,
            issuer=ISSUER,
            client_id="bench",
            deployment_ids=["1"],
            auth_login_url=ISSUER + "/auth",
            auth_token_url=ISSUER + "/token",
            key_set_url=ISSUER + "/certs",
        ).id
    finally:
        db.dispose()


def analytics_timing(database_url: str, platform_id: int, days: int) -> float:
    """Seconds for the analytics page's queries over ``days`` days for the seeded platform."""
    from xapi import analytics

    db = Database(database_url)
    try:
        today = datetime.now(UTC).date()

        def page(period: int) -> None:
            since = analytics.period_start(period, today)
            with db.sessions() as session:
                analytics.overview(session, platform_id, since)
                analytics.statements_per_day(session, platform_id, period, today)
                analytics.completion_funnel(session, platform_id, since)
                analytics.score_distribution(session, platform_id, since)
                analytics.scored_activities(session, platform_id, since)

        page(1)  # connects and compiles the queries, as a running tool has long done
        began = time.perf_counter()
        page(days)
        return time.perf_counter() - began
    finally:
        db.dispose()


# -- PostgreSQL schema of our own ------------------------------------------------------------------


def postgres_schema(url: str) -> tuple[str, callable]:
    """A fresh schema on ``url`` and the URL that uses it; the callable drops it."""
    from sqlalchemy import create_engine, make_url, text

    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    schema = "xapi_bench_" + secrets.token_hex(4)
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    scoped = make_url(url).update_query_dict({"options": f"-csearch_path={schema}", "application_name": schema})

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = :s AND pid <> pg_backend_pid()"
                ),
                {"s": schema},
            )
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

    return scoped.render_as_string(hide_password=False), drop


# -- the report ------------------------------------------------------------------------------------


def progress(message: str) -> None:
    """A figure as soon as it is measured (standard error), so a later failure loses nothing."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def verdict(ok: bool) -> str:
    return "meets target" if ok else "MISSES target"


def report_ingest(rows: list[IngestRow]) -> None:
    print(
        f"{'stored before':>13} {'clients':>7} {'statements':>10} {'seconds':>8} {'statements/s':>12} "
        f"{'batch p50 ms':>12} {'batch p95 ms':>12}  vs target {INGEST_TARGET:,.0f}/s"
    )
    for row in rows:
        print(
            f"{human(row.stored_before):>13} {row.concurrency:>7} {row.statements:>10,} {row.seconds:>8.2f} "
            f"{row.rate:>12,.0f} {percentile(row.batch_ms, 50):>12.1f} {percentile(row.batch_ms, 95):>12.1f}  "
            f"{verdict(row.rate >= INGEST_TARGET)} ({row.rate / 61:,.0f}x ADL LRS, {row.rate / 325:,.1f}x SQL LRS)"
        )


def report_queries(rows: list[QueryRow], limit: int) -> None:
    print(
        f"{'stored':>7} {'filter':<13} {'p50 ms':>7} {'p95 ms':>7} {'max ms':>7} {'mean returned':>13}  "
        f"(limit={limit}; target p95 < {QUERY_P95_TARGET_MS:g} ms at 1M)"
    )
    for row in rows:
        tag = verdict(row.p(95) < QUERY_P95_TARGET_MS) if row.size >= 1_000_000 else ""
        print(
            f"{human(row.size):>7} {row.name:<13} {row.p(50):>7.1f} {row.p(95):>7.1f} {max(row.latencies_ms):>7.1f} "
            f"{statistics.mean(row.returned):>13.1f}  {tag}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--sizes", type=sizes, default=[100_000, 1_000_000], help="stored sizes to query at (100k,1m)"
    )
    parser.add_argument("--database-url", default="", help="a PostgreSQL URL (a schema of our own is made there)")
    parser.add_argument("--ingest", type=int, default=20_000, help="statements POSTed per ingest level (20000)")
    parser.add_argument("--concurrency", type=levels, default=[1, 4], help="ingest clients, comma-separated (1,4)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers (2)")
    parser.add_argument("--queries", type=int, default=100, help="GETs per filter and size (100)")
    parser.add_argument("--limit", type=int, default=100, help="the GETs' limit parameter (100)")
    parser.add_argument("--people", type=int, default=5000, help="distinct actors (5000)")
    parser.add_argument("--activities", type=int, default=300, help="distinct activities (300)")
    parser.add_argument("--skip-export", action="store_true", help="do not time npqsl-lti xapi export")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="keep the SQLite instance in this folder, and reuse what an earlier run stored there "
        "(seeding only tops it up); default: a temporary folder, deleted at the end",
    )
    args = parser.parse_args(argv)
    if args.data_dir and args.database_url:
        parser.error("--data-dir keeps a SQLite instance; with --database-url the data is in PostgreSQL")
    if args.ingest < BATCH or not 1 <= args.workers <= 32 or args.queries < 1:
        parser.error("--ingest must be at least 100, --workers 1..32, --queries at least 1")

    procs.install_cleanup()
    population = Population(args.people, args.activities)
    backend = "PostgreSQL" if args.database_url else "SQLite"
    ingest_rows: list[IngestRow] = []
    query_rows: list[QueryRow] = []
    export_rows: list[ExportRow] = []
    seeds: list[tuple[int, int, float]] = []
    analytics_rows: list[tuple[int, int, float]] = []
    storage_rows: list[tuple[int, dict[str, int]]] = []
    drop = None
    with tempfile.TemporaryDirectory(prefix="npqsl-xapi-bench-") as tmp_name:
        tmp = Path(tmp_name)
        try:
            if args.database_url:
                database_url, drop = postgres_schema(args.database_url)
            else:
                data = args.data_dir.resolve() if args.data_dir else tmp
                database_url = f"sqlite:///{data / 'instance' / 'npqsl-lti.sqlite3'}"
            lrs = start(tmp, database_url, args.workers)
            platform_id = register_platform(database_url)
            print(
                f"xAPI LRS benchmark — {date.today().isoformat()}, Python {host.python_version()}, "
                f"{os.cpu_count()} CPUs, {backend}, gunicorn --workers {args.workers} (sync), "
                f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
            )
            print(
                f"population: {args.people:,} people in {COURSES} courses, {args.activities} activities, 12 verbs"
            )
            print()
            # A --data-dir kept from an earlier run is not empty (and holds these very statements).
            empty = stored_count(database_url) == 0
            for level in args.concurrency if empty else ():
                ingest_rows.append(ingest(lrs, population, args.ingest, level, seed=level, stored_before=0))
                progress(f"ingest x{level} on the empty LRS: {ingest_rows[-1].rate:,.0f} statements/s")
            for size in args.sizes:
                stored = stored_count(database_url)
                if stored < size:
                    added, seconds = seed_to(database_url, population, size, stored, size, platform_id)
                    seeds.append((size, added, seconds))
                    progress(f"seeded {added:,} statements up to {human(size)} at {added / seconds:,.0f}/s")
                    settle(database_url)
                since = since_value(database_url, 1000)
                query_rows += queries(lrs, population, size, args.queries, args.limit, since)
                for row in query_rows[-len(FILTERS) :]:
                    progress(f"GET {row.name} at {human(size)}: p50 {row.p(50):.1f} ms, p95 {row.p(95):.1f} ms")
                stored = stored_count(database_url)
                top = max(args.concurrency)
                # Seeded by the count stored: a later run on the same --data-dir sends new statement ids.
                ingest_rows.append(
                    ingest(lrs, population, args.ingest, top, seed=stored + 1, stored_before=stored)
                )
                progress(f"ingest x{top} at {human(stored)}: {ingest_rows[-1].rate:,.0f} statements/s")
                if not args.skip_export:
                    for fmt in ("csv", "jsonl"):
                        export_rows.append(export(lrs, tmp, size, fmt))
                        row = export_rows[-1]
                        progress(
                            f"export {fmt} at {human(size)}: {row.seconds:,.1f} s, peak RSS {row.max_rss_mb:,.0f} MB"
                        )
                sizes_now = table_sizes(database_url)
                progress(
                    f"on disk at {human(size)}: "
                    + ", ".join(f"{name} {sizes_now.get(name, 0) / 1e6:,.0f} MB" for name in SIZED_TABLES)
                )
                storage_rows.append((size, sizes_now))
                for days in (30, 365):
                    analytics_rows.append((size, days, analytics_timing(database_url, platform_id, days)))
                    progress(
                        f"analytics page queries, {days} days at {human(size)}: {analytics_rows[-1][2]:.2f} s"
                    )
        except (RuntimeError, OSError, requests.RequestException) as failure:
            print(f"benchmark failed: {failure!r}", file=sys.stderr)
            log = tmp / "tool.log"
            if log.exists():
                print(
                    "--- last lines of the tool's log:\n"
                    + "\n".join(log.read_text(errors="replace").splitlines()[-20:]),
                    file=sys.stderr,
                )
            return 1
        finally:
            procs.stop_all()
            if drop is not None:
                drop()

    print("Ingest: POST /xapi/statements, batches of 100, over HTTP")
    report_ingest(ingest_rows)
    print()
    if seeds:
        print("Seeding (StatementStore.store in-process, batches of 2,000, projection included):")
        for size, added, seconds in seeds:
            print(f"  up to {human(size)}: {added:,} statements in {seconds:,.1f} s ({added / seconds:,.0f}/s)")
        print()
    print("Queries: GET /xapi/statements, one client, sequential")
    report_queries(query_rows, args.limit)
    print()
    if export_rows:
        print("Export: npqsl-lti xapi export --out FILE (a subprocess)")
        for row in export_rows:
            print(
                f"  {human(row.size):>5} stored, {row.fmt:<5}: {row.statements:,} statements in {row.seconds:,.1f} s "
                f"({row.statements / row.seconds:,.0f}/s), peak RSS {row.max_rss_mb:,.0f} MB"
            )
        print()
    for size, on_disk in storage_rows:
        shown = ", ".join(f"{name} {on_disk.get(name, 0) / 1e6:,.0f} MB" for name in SIZED_TABLES)
        print(f"On disk at {human(size)} (tables with their indexes): {shown}")
    for size, days, seconds in analytics_rows:
        print(
            f"Analytics page queries ({days} days; the seeded platform's statements) at {human(size)}: {seconds * 1000:,.0f} ms"
        )
    print()
    print("Anchors: " + "; ".join(ANCHORS))
    print("load average at the end: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
