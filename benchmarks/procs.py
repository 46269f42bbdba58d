"""Processes for benchmarks/launch.py: free ports, servers in their own process groups, CPU time.

Every process started here gets a session (and so a process group) of its own and is stopped by
signalling that group: SIGTERM, then SIGKILL if it has not gone within a few seconds. ``stop_all``
runs at interpreter exit as well, so an interrupted benchmark leaves nothing behind.
"""

from __future__ import annotations

import atexit
import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
HOOKS = Path(__file__).resolve().parent / "gunicorn_hooks.py"
_started: list[Server] = []


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on now (gunicorn cannot bind port 0 and report it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def free_ports(count: int) -> list[int]:
    ports: list[int] = []
    for _ in range(count * 20):  # bounded: the kernel hands out distinct ports almost always
        port = free_port()
        if port not in ports:
            ports.append(port)
        if len(ports) == count:
            return ports
    raise RuntimeError("could not find free ports on 127.0.0.1")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads), from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
        fields = fh.read().rpartition(")")[2].split()
    # After the command name: state is field 3 of stat(5), so utime (14) and stime (15) are 11 and 12 here.
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def run_queue_seconds(pid: int) -> float:
    """Time the process's threads spent runnable but waiting for a CPU (/proc/<pid>/task/*/schedstat)."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/schedstat", encoding="ascii") as fh:
                total += int(fh.read().split()[1])
        except (OSError, IndexError, ValueError):
            continue
    return total / 1e9


def machine_busy_seconds() -> float:
    """CPU time all CPUs spent on anything but idle and I/O wait since boot (/proc/stat)."""
    with open("/proc/stat", encoding="ascii") as fh:
        values = [int(v) for v in fh.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal [guest guest_nice, already counted in user/nice]
    return (sum(values[:8]) - values[3] - values[4]) / CLOCK_TICKS


def children(pid: int) -> list[int]:
    """The direct children of a process."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as fh:
            return [int(p) for p in fh.read().split()]
    except FileNotFoundError:
        pass
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", encoding="ascii") as fh:
                    fields = fh.read().rpartition(")")[2].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry))
    return found


class Server:
    """A server process on 127.0.0.1:port, its output in a log file."""

    def __init__(self, name: str, cmd: list[str], *, port: int, env: dict[str, str], log_path: Path):
        self.name = name
        self.cmd = cmd
        self.port = port
        self.env = env
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Server:
        log = self.log_path.open("ab")
        try:
            self.proc = subprocess.Popen(
                self.cmd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            log.close()
        _started.append(self)
        return self

    def wait_ready(self, path: str, *, any_status: bool = False, timeout: float = 60.0) -> None:
        """Until GET path answers 200 (any status if told so); fail if the process exits."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited during start-up:\n{self.log_tail()}")
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
            try:
                conn.request("GET", path)
                if conn.getresponse().status == 200 or any_status:
                    return
            except OSError:
                pass
            finally:
                conn.close()
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not answer GET {path} within {timeout:.0f} s:\n{self.log_tail()}")

    def worker_pid(self) -> int:
        """The process that serves requests: gunicorn's one worker (the child of the master)."""
        assert self.proc is not None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # bounded: the worker appears soon after the master
            kids = children(self.proc.pid)
            if len(kids) == 1:
                return kids[0]
            time.sleep(0.05)
        raise RuntimeError(f"{self.name}: expected one gunicorn worker under pid {self.proc.pid}")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                return
            proc.wait(timeout=10)


def stop_all() -> None:
    while _started:
        _started.pop().stop()


def gunicorn_cmd(app_spec: str, port: int, pythonpath: Path | None = None) -> list[str]:
    """The same serving set-up for every tool: gunicorn, one sync worker, no access log, and the
    benchmark's request-time hooks (benchmarks/gunicorn_hooks.py)."""
    cmd = [sys.executable, "-m", "gunicorn", "--config", str(HOOKS), "--workers", "1", "--worker-class", "sync"]
    cmd += ["--bind", f"127.0.0.1:{port}", "--timeout", "60", "--graceful-timeout", "5"]
    if pythonpath is not None:
        cmd += ["--pythonpath", str(pythonpath)]
    if _has_control_socket():
        # gunicorn 27 opens a control socket at one path per user (~/.gunicorn/gunicorn.ctl); three
        # servers, or anyone else's gunicorn, would fight over it.
        cmd += ["--no-control-socket"]
    return cmd + [app_spec]


def _has_control_socket() -> bool:
    from gunicorn import config

    return any(getattr(setting, "name", None) == "control_socket_disable" for setting in config.KNOWN_SETTINGS)


def _terminate(signum, _frame):
    raise SystemExit(128 + signum)


def install_cleanup() -> None:
    """Stop every server on exit, including on SIGTERM and SIGHUP."""
    atexit.register(stop_all)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _terminate)
