"""Statement writers queue: on SQLite on a file lock (across processes and threads), on PostgreSQL
on the clock row; either way every batch gets its own run of seqs and one stored time."""

from __future__ import annotations

import multiprocessing
import threading
import time

from sqlalchemy import select

from lti_tool.db import Database
from xapi.lrs import write_lock
from xapi.lrs.models import LrsStatement
from xapi.lrs.store import StatementStore

AUTHORITY = {"objectType": "Agent", "account": {"homePage": "https://tool.example", "name": "tool"}}


def _statement(writer: int, n: int) -> dict:
    return {
        "actor": {"objectType": "Agent", "account": {"homePage": "https://vle.example", "name": f"w{writer}-{n}"}},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/experienced"},
        "object": {"id": f"https://tool.example/activity/{n % 7}"},
    }


def _hold(path: str, held: multiprocessing.Event, release: multiprocessing.Event) -> None:
    with write_lock.FileWriteLock(path).held():
        held.set()
        release.wait(30)


def test_the_lock_of_one_process_keeps_another_waiting_until_released(tmp_path):
    context = multiprocessing.get_context("spawn")
    held, release = context.Event(), context.Event()
    lock_path = tmp_path / "db.sqlite3.lrs-write-lock"
    holder = context.Process(target=_hold, args=(str(lock_path), held, release))
    holder.start()
    try:
        assert held.wait(60)
        acquired = threading.Event()

        def take() -> None:
            with write_lock.FileWriteLock(lock_path).held():
                acquired.set()

        waiter = threading.Thread(target=take)
        waiter.start()
        assert not acquired.wait(0.5)
        release.set()
        assert acquired.wait(10)
        waiter.join(10)
    finally:
        release.set()
        holder.join(30)
    assert holder.exitcode == 0


def test_only_sqlite_files_get_a_file_lock(tmp_path):
    assert write_lock.for_database(f"sqlite:///{tmp_path}/x.sqlite3").path == tmp_path / "x.sqlite3.lrs-write-lock"
    assert write_lock.for_database("sqlite://").path is None
    assert write_lock.for_database("sqlite:///:memory:").path is None
    assert not isinstance(write_lock.for_database("postgresql+psycopg2://u@h/db"), write_lock.FileWriteLock)


def _write(url: str, writer: int, batches: int) -> None:
    database = Database(url)
    store = StatementStore(database)
    for batch in range(batches):
        store.store([_statement(writer, batch * 10 + n) for n in range(10)], authority=AUTHORITY)
    database.dispose()


def test_writers_in_several_processes_and_threads_all_store_in_one_order(database):
    url = database.url
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_write, args=(url, writer, 15)) for writer in range(3)]
    threads = [threading.Thread(target=_write, args=(url, writer, 15)) for writer in (3, 4)]
    began = time.monotonic()
    for worker in (*processes, *threads):
        worker.start()
    for worker in (*processes, *threads):
        worker.join(120)
    assert [p.exitcode for p in processes] == [0, 0, 0], f"a writer failed after {time.monotonic() - began:.1f} s"
    with database.sessions() as session:
        rows = session.execute(select(LrsStatement.seq, LrsStatement.stored_ms).order_by(LrsStatement.seq)).all()
    assert [row.seq for row in rows] == list(range(1, 5 * 15 * 10 + 1))
    stored = [row.stored_ms for row in rows]
    assert stored == sorted(stored)
    # Each batch of 10 got one stored time, and batches did not interleave.
    assert all(len({stored[i] for i in range(start, start + 10)}) == 1 for start in range(0, len(stored), 10))


def _frames_left_after_three_writes(path) -> int:
    """Store 40, 40 and 1 statements; then the frames in the WAL (a PASSIVE checkpoint reports them)."""
    db = Database(f"sqlite:///{path}")
    db.upgrade()
    try:
        store = StatementStore(db)
        for writer, size in enumerate((40, 40, 1)):
            store.store([_statement(writer, n) for n in range(size)], authority=AUTHORITY)
        with db.sessions() as session:
            assert len(session.scalars(select(LrsStatement.seq)).all()) == 81
        with db.engine.connect() as connection:
            _busy, frames, _copied = connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").one()
        return frames
    finally:
        db.dispose()


def test_writers_checkpoint_after_releasing_the_lock_and_the_wal_starts_over(tmp_path, monkeypatch):
    monkeypatch.setattr(write_lock, "CHECKPOINT_EVERY", 10**9)
    unchecked = _frames_left_after_three_writes(tmp_path / "never.sqlite3")
    # The second batch passes 50 statements and checkpoints everything (nobody else writes), so
    # the third write starts the WAL over from its first frame: it then holds that write only.
    monkeypatch.setattr(write_lock, "CHECKPOINT_EVERY", 50)
    checked = _frames_left_after_three_writes(tmp_path / "every-50.sqlite3")
    assert 0 < checked < unchecked / 4
