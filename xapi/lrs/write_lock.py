"""One statement writer at a time on SQLite, queued by the operating system.

SQLite lets one connection write at a time; the others wait in its busy handler, which sleeps
and retries with sleeps growing to 100 ms. Under a steady stream of batches from several
workers that turns into a convoy: the lock falls free while every waiter sleeps, and the batch
that just committed takes it again. Statement writers therefore first take an exclusive
``flock`` on a file beside the database: the kernel wakes the next waiter the moment the lock
is released, so writers follow each other without gaps. Threads of one process queue on a
``threading.Lock`` first (a ``flock`` belongs to an open file, which threads share).

PostgreSQL needs none of this: writers queue on the LRS clock row, and its lock waits are
already a queue.

Checkpoints (copying the WAL's pages back into the database file) are taken out of the queue
as well. SQLite runs one automatically inside the commit that fills the WAL past
``wal_autocheckpoint`` pages, while that writer still holds the lock; at 1M statements that
checkpoint (thousands of scattered pages, then an fsync) took longer than the five batches
before it, and every other writer waited. So each process that writes statements checkpoints
every ``CHECKPOINT_EVERY`` statements itself, after releasing the lock: the others go on
writing meanwhile. When nobody wrote during it, the WAL is then complete in the database file
and the next writer starts it over from the top. Under a steady stream someone always has, and
SQLite's automatic checkpoint (left on) finishes the job: once the WAL passes its
``wal_autocheckpoint`` pages, the committing writer copies what is left, which by then is only
what was written since the last of these checkpoints, and the WAL starts over. (A second pass
under the lock after each of these checkpoints, to the same end, measured no better: 2,939 to
3,041 statements/s at 1M against 2,958 to 3,139 without it.)
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

from sqlalchemy.engine import Engine, make_url

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: threads still queue, processes use SQLite's lock
    fcntl = None


# Statements a process writes between its own checkpoints (a batch of 100 writes ~1,700 pages
# at 1M stored; SQLite's automatic checkpoint, at 8,000 pages, stays as the backstop).
CHECKPOINT_EVERY = 300


class FileWriteLock:
    """An exclusive lock shared by every process that names the same file."""

    def __init__(self, path: Path | None):
        self.path = path  # None: an in-memory database, which only this process can see
        self._threads = threading.Lock()
        self._fd: int | None = None
        self._pid: int | None = None
        self._unchecked = 0  # statements this process wrote since its last checkpoint

    def _descriptor(self) -> int:
        # A forked child must open the file itself: an inherited descriptor shares the parent's lock.
        if self._fd is None or self._pid != os.getpid():
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            self._pid = os.getpid()
        return self._fd

    @contextmanager
    def held(self) -> Iterator[None]:
        with self._threads:
            if fcntl is None or self.path is None:
                yield
                return
            fd = self._descriptor()
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)

    def wrote(self, engine: Engine, statements: int) -> None:
        """Count statements written (call after releasing the lock); checkpoint now and then."""
        with self._threads:
            self._unchecked += statements
            if self._unchecked < CHECKPOINT_EVERY or self.path is None:
                return
            self._unchecked = 0
        checkpoint = "PRAGMA wal_checkpoint(PASSIVE)"
        with engine.connect() as connection:
            connection.exec_driver_sql(checkpoint).fetchall()


def for_database(url: str) -> FileWriteLock | _NoLock:
    """The lock statement writers take on this database: a file lock on SQLite, else nothing."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return _NoLock()
    database = parsed.database or ""
    in_memory = database in ("", ":memory:") or parsed.query.get("mode") == "memory"
    return FileWriteLock(None if in_memory else Path(database + ".lrs-write-lock"))


class _NoLock:
    def held(self):
        return nullcontext()

    def wrote(self, engine: Engine, statements: int) -> None:
        """PostgreSQL checkpoints on its own."""
