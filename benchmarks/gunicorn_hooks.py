"""gunicorn server hooks for benchmarks/launch.py (``--config``), the same for every tool.

They add up, in the worker, what happens inside requests (from ``pre_request`` to
``post_request``: building the environ, the app, writing the response): the wall time, the time on
a CPU (``time.thread_time()``) and the time spent ready to run but waiting for a CPU (the run
delay in /proc/thread-self/schedstat; its run time is only brought up to date at scheduler
events, up to a 4 ms tick late, so it is not used). Whatever is left is time the worker was
blocked: on the network (the baseline's JWKS fetch), the disk or a lock. The totals go to a small
file shared with the harness (``BENCH_WORKER_STATS``, written through a memory map). A few
microseconds per request; nothing else about how gunicorn serves the app changes.
"""

from __future__ import annotations

import mmap
import os
import struct
import time

# Seconds inside requests: wall, on a CPU, waiting for a CPU; then the number of requests.
LAYOUT = struct.Struct("<dddq")

_totals = [0.0, 0.0, 0.0, 0]
_map: mmap.mmap | None = None
_schedstat: int | None = None


def _run_delay() -> int:
    """Nanoseconds this thread has spent ready to run but waiting for a CPU."""
    return int(os.pread(_schedstat, 128, 0).split()[1])


def read(path: str) -> tuple[float, float, float, int]:
    """The totals a worker has written so far (for the harness)."""
    with open(path, "rb") as fh:
        return LAYOUT.unpack(fh.read(LAYOUT.size))


def post_fork(server, worker):
    """In the worker, before it serves anything: the shared file and this thread's schedstat."""
    global _map, _schedstat
    path = os.environ.get("BENCH_WORKER_STATS")
    if not path:
        return
    with open(path, "wb") as fh:
        fh.write(LAYOUT.pack(0.0, 0.0, 0.0, 0))
    with open(path, "r+b") as fh:
        _map = mmap.mmap(fh.fileno(), LAYOUT.size)
    # The sync worker serves every request on this thread.
    _schedstat = os.open("/proc/thread-self/schedstat", os.O_RDONLY)


def pre_request(worker, req):
    if _map is not None:
        worker.bench_started = (time.perf_counter(), time.thread_time(), _run_delay())


def post_request(worker, req, environ, resp):
    started = getattr(worker, "bench_started", None)
    if started is None or _map is None:
        return
    worker.bench_started = None
    _totals[0] += time.perf_counter() - started[0]
    _totals[1] += time.thread_time() - started[1]
    _totals[2] += (_run_delay() - started[2]) / 1e9
    _totals[3] += 1
    LAYOUT.pack_into(_map, 0, *_totals)
