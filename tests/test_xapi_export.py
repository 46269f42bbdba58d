"""`npqsl-lti xapi export`, run as a real subprocess against statements in a real database."""

from __future__ import annotations

import csv
import io
import json
import os
import pty
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from lti_tool.db import Database
from xapi.export import CSV_COLUMNS
from xapi.lrs.store import StatementStore
from xapi.projection import projector

from .test_xapi_analytics import AUTHORITY, EXTENSIONS, ISSUER, VOCABULARY, statement, voiding

CLI = Path(sys.executable).with_name("npqsl-lti")


class Exporter:
    """A migrated database with statements in it, and the command pointed at it."""

    def __init__(self, tmp_path: Path, database_url: str):
        self.tmp_path = tmp_path
        self.db = Database(database_url)
        self.db.upgrade()
        self.store = StatementStore(self.db)
        self.store.after_store.append(projector(EXTENSIONS))
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "NPQSL_ENV": "development",
            "NPQSL_INSTANCE_PATH": str(tmp_path / "instance"),
            "NPQSL_DATABASE_URL": database_url,
            # The installation the test statements were minted for (their extension IRIs).
            "NPQSL_PUBLIC_URL": VOCABULARY.base,
            "NPQSL_OUTBOX_INLINE_WORKER": "false",
        }

    def add(self, *statements: dict) -> str:
        """Store one batch; returns its ``stored`` instant (the batches are 5 ms apart at least)."""
        time.sleep(0.005)
        [first, *_] = self.store.store(list(statements), authority=AUTHORITY)
        return self.store.get(first).statement["stored"]

    def run(self, *args: str, **kwargs) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(CLI), "xapi", "export", *args],
            env=self.env,
            cwd=self.tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            **kwargs,
        )

    def ok(self, *args: str) -> subprocess.CompletedProcess:
        result = self.run(*args)
        assert result.returncode == 0, result.stderr
        return result

    def error(self, *args: str) -> str:
        result = self.run(*args)
        assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr
        return result.stderr


@pytest.fixture
def exporter(tmp_path, database_url):
    box = Exporter(tmp_path, database_url)
    yield box
    box.db.dispose()


def jsonl(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines()]


def test_jsonl_is_every_statement_as_stored_oldest_first_without_voided_ones(exporter):
    first, second, wrong = statement("launched"), statement("completed", result={"completion": True}), statement()
    exporter.add(first)
    exporter.add(second, wrong)
    exporter.add(voiding(wrong["id"]))
    with exporter.db.sessions() as session:
        stored_text = dict(session.execute(text("SELECT id, statement FROM lrs_statements")).all())

    result = exporter.ok("--format", "jsonl")
    lines = result.stdout.splitlines()
    exported = jsonl(result.stdout)
    assert [s["id"] for s in exported[:2]] == [first["id"], second["id"]]
    assert exported[2]["verb"]["id"].endswith("/voided") and len(exported) == 3
    assert lines[0] == stored_text[first["id"]]  # byte for byte what the LRS keeps
    assert "exported 3 statement(s)" in result.stderr

    everything = jsonl(exporter.ok("--format", "jsonl", "--include-voided").stdout)
    assert [s["id"] for s in everything][:3] == [first["id"], second["id"], wrong["id"]]


def test_csv_flattens_the_common_fields(exporter):
    scored = statement(
        "passed",
        sub="learner-7",
        result={"score": {"scaled": 0.75, "raw": 15, "min": 0, "max": 20}, "success": True, "completion": True},
    )
    exporter.add(scored, statement("experienced", name='Unit 2, "in depth"'))
    rows = list(csv.DictReader(io.StringIO(exporter.ok("--format", "csv").stdout)))
    assert list(rows[0]) == list(CSV_COLUMNS)
    row = rows[0]
    assert row["statement_id"] == scored["id"]
    assert row["timestamp"] == scored["timestamp"]
    assert row["actor"] == f"account:{ISSUER}|learner-7"
    assert row["verb"] == "http://adlnet.gov/expapi/verbs/passed" and row["verb_display"] == "passed"
    assert row["object"] == scored["object"]["id"] and row["object_type"] == "Activity"
    assert (row["score_scaled"], row["score_raw"], row["score_min"], row["score_max"]) == (
        "0.75",
        "15.0",
        "0.0",
        "20.0",
    )
    assert (row["success"], row["completion"], row["voided"]) == ("true", "true", "false")
    assert row["registration"] == scored["context"]["registration"]
    assert row["course"] == scored["context"]["contextActivities"]["grouping"][1]["id"]
    assert row["lti_context_id"] == "course-1"
    assert rows[1]["object_name"] == 'Unit 2, "in depth"'
    assert (rows[1]["success"], rows[1]["score_scaled"]) == ("", "")


def test_since_and_until_select_a_half_open_period_of_stored_times(exporter):
    a, b, c = statement(sub="a"), statement(sub="b"), statement(sub="c")
    exporter.add(a)
    stored_b = exporter.add(b)
    stored_c = exporter.add(c)

    def ids(*args: str) -> list[str]:
        return [s["id"] for s in jsonl(exporter.ok("--format", "jsonl", *args).stdout)]

    assert ids("--since", stored_b) == [b["id"], c["id"]]
    assert ids("--until", stored_c) == [a["id"], b["id"]]
    assert ids("--since", stored_b, "--until", stored_c) == [b["id"]]
    assert ids("--since", "2000-01-01", "--until", "2000-01-02") == []
    # An offset is honoured: the same instant written in UTC-05:00.
    local = exporter.ok("--format", "jsonl", "--since", stored_c.replace("Z", "+00:00")).stdout
    assert [s["id"] for s in jsonl(local)] == [c["id"]]


def test_out_writes_the_file_only_when_complete(exporter):
    exporter.add(statement(), statement())
    target = exporter.tmp_path / "export.csv"
    result = exporter.ok("--format", "csv", "--out", str(target))
    assert result.stdout == "" and f"exported 2 statement(s) to {target}" in result.stderr
    assert len(target.read_text().splitlines()) == 3
    assert not list(exporter.tmp_path.glob("*.part"))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--format", "xml"], "'xml' is not one of 'jsonl', 'csv'"),
        (["--format", "csv", "--since", "2026-13-01"], "'2026-13-01' is not an ISO 8601 date or date-time"),
        (["--format", "csv", "--until", "yesterday"], "'yesterday' is not an ISO 8601 date or date-time"),
        (
            ["--format", "csv", "--since", "2026-03-02", "--until", "2026-03-01"],
            "--since (2026-03-02T00:00:00+00:00) must be before --until",
        ),
        (["--since", "2026-03-01"], "Missing option '--format'"),
        (["--format", "csv", "--out", "no/such/folder/x.csv"], "--out: cannot write no/such/folder/x.csv"),
    ],
)
def test_bad_arguments_get_one_clear_error_and_write_nothing(exporter, args, message):
    exporter.add(statement())
    assert message in exporter.error(*args)
    assert not list(exporter.tmp_path.glob("*.csv*"))


def test_a_progress_bar_shows_on_a_terminal_only(exporter):
    exporter.add(*(statement(sub=f"p{n}") for n in range(30)))
    target = exporter.tmp_path / "all.jsonl"
    piped = exporter.ok("--format", "jsonl", "--out", str(target))
    assert "Exporting" not in piped.stderr

    main, secondary = pty.openpty()
    try:
        process = subprocess.run(
            [str(CLI), "xapi", "export", "--format", "jsonl", "--out", str(target)],
            env={**exporter.env, "TERM": "dumb", "COLUMNS": "80"},
            cwd=exporter.tmp_path,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=secondary,
            timeout=120,
            check=False,
        )
        os.close(secondary)
        secondary = None
        shown = b""
        while True:
            try:
                chunk = os.read(main, 4096)
            except OSError:  # the terminal's other end is closed: everything is read
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(main)
        if secondary is not None:
            os.close(secondary)
    assert process.returncode == 0
    assert b"Exporting" in shown and b"100%" in shown
    assert len(target.read_text().splitlines()) == 30
