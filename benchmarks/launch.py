"""LTI 1.3 login + launch throughput: npqsl-lti against a pylti1p3 tool, each in its own gunicorn.

    python benchmarks/launch.py [--launches N] [--concurrency 1,4,8] [--warmup W] [--rounds R]
                                [--platform-latency-ms X] [--no-pin]

Each tool runs as a deployment runs it: its own process, ``gunicorn --workers 1 --worker-class
sync`` on 127.0.0.1. Ours is ``lti_tool.app:create_app()`` on a SQLite instance folder prepared
with ``npqsl-lti db upgrade`` and ``npqsl-lti platform add``; the baseline is
``benchmarks/pylti1p3_baseline.py`` (pylti1p3's Flask example, configuration read per request);
a no-op tool (``benchmarks/noop_tool.py``) served the same way shows the harness's own ceiling.
The test platform (``benchmarks/bench_platform.py``) is a process of its own; this process is
the client (one process per simulated browser, a lean HTTP/1.1 client, cookies by hand).

One launch is what a browser without JavaScript does:

    GET  tool /login?iss=...&login_hint=user-N&...   -> 302 platform /auth?...
    GET  platform /auth                               -> auto-post form with a signed id_token
    POST tool /launch (id_token, state)               -> 200 and a page naming user N

The tools run on one CPU and the platform and client on the others (``--no-pin``: anywhere), so
the harness does not take the tool's CPU as a VLE and browsers elsewhere would not. For each
concurrency level (simulated browsers launching back to back), R rounds in which each tool in
turn gets a warm-up, then N measured launches; a tool's median round is its row. Printed per
row: launches per second; latency percentiles; the tool worker's CPU, blocked and queued ms per
launch (/proc and gunicorn hooks, see LEGEND) and the launches per second it could serve with a
core to itself; the harness's CPU per launch (client + platform); the CPU other processes took
meanwhile; the platform's JWKS fetches. Then the same with a delay on every platform endpoint (a
VLE across a network). Figures only, no assertions; exits 1 if a launch fails.
"""

from __future__ import annotations

import argparse
import html
import http.client
import json
import multiprocessing
import os
import platform as host
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import date
from email.utils import parsedate_to_datetime
from pathlib import Path
from urllib.parse import urlencode, urljoin, urlsplit

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import gunicorn_hooks  # noqa: E402
import procs  # noqa: E402
from pylti1p3_baseline import write_config  # noqa: E402

OURS = "npqsl-lti (ours)"
BASELINE = "pylti1p3 baseline"
NOOP = "no-op tool"
CLIENT_ID = "bench-client-1"
DEPLOYMENT_ID = "bench-deploy-1"
# Cookies a tool sets per login to bind the state to the browser. Ours deletes its own at the
# launch; pylti1p3 leaves its one for the login TTL, so a browser launching hundreds of times a
# minute would pile up hundreds. Real users launch far less often: the client drops any left.
STATE_COOKIE_PREFIXES = ("lti_state_", "lti1p3-state-")
MAX_REDIRECTS = 5
TIMEOUT = 30.0
FORM_ACTION = re.compile(r'<form[^>]*\baction="([^"]*)"')
FORM_INPUT = re.compile(r'<input type="hidden" name="([^"]*)" value="([^"]*)">')


class LaunchFailed(Exception):
    pass


class ConnectionClosed(Exception):
    """The server closed the connection before answering (a keep-alive connection it dropped)."""


class Connection:
    """A lean HTTP/1.1 client connection: one write per request, the answer parsed by hand.

    http.client parses every answer's headers with the email package, which made the client the
    largest part of the harness's CPU; on this machine the harness shares a CPU with the
    platform, and a busy harness answers the tools late. A request goes out in one write (headers
    and body), so the tool's worker never waits inside a request for the rest of it. Answers
    carry a Content-Length, are chunked, or end when the server closes (gunicorn's sync worker
    answers ``Connection: close``).
    """

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.sock: socket.socket | None = None
        self.buffer = b""

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
        self.sock, self.buffer = None, b""

    def request(self, method: str, target: str, headers: dict[str, str], body: bytes | None) -> Reply:
        if self.sock is None:
            self.sock = socket.create_connection((self.host, self.port), timeout=TIMEOUT)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        lines = [f"{method} {target} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        if body is not None:
            lines.append(f"Content-Length: {len(body)}")
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b""))
        head = self._read_until(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        fields: dict[str, str] = {}
        set_cookies: list[str] = []
        for line in header_lines:
            name, _, value = line.partition(":")
            name, value = name.strip().lower(), value.strip()
            if name == "set-cookie":
                set_cookies.append(value)
            else:
                fields[name] = value
        if "content-length" in fields:
            data = self._read_exactly(int(fields["content-length"]))
        elif fields.get("transfer-encoding", "").lower() == "chunked":
            data = self._read_chunked()
        else:
            data = self._read_to_close()
        if fields.get("connection", "").lower() == "close":
            self.close()
        return Reply(status, fields, set_cookies, data)

    def _fill(self) -> bool:
        chunk = self.sock.recv(65536)
        self.buffer += chunk
        return bool(chunk)

    def _read_until(self, marker: bytes) -> bytes:
        while marker not in self.buffer:
            if not self._fill():
                raise ConnectionClosed
        head, _, self.buffer = self.buffer.partition(marker)
        return head

    def _read_exactly(self, size: int) -> bytes:
        while len(self.buffer) < size:
            if not self._fill():
                raise ConnectionClosed
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def _read_chunked(self) -> bytes:
        parts = []
        while True:
            size = int(self._read_until(b"\r\n").split(b";")[0], 16)
            if size == 0:
                self._read_until(b"\r\n")
                return b"".join(parts)
            parts.append(self._read_exactly(size))
            self._read_exactly(2)

    def _read_to_close(self) -> bytes:
        while self._fill():
            pass
        data, self.buffer = self.buffer, b""
        return data


@dataclass
class Reply:
    status: int
    headers: dict[str, str]  # lower-case names; the last value of a repeated header
    set_cookies: list[str]
    body: bytes


class Browser:
    """A browser without JavaScript: a keep-alive connection and a cookie jar per origin.

    Cookies are kept per host:port (the tools and the platform stand for different sites);
    Path and Domain are ignored (every cookie here is Path=/ on a host of its own).
    """

    def __init__(self) -> None:
        self.connections: dict[str, Connection] = {}
        self.cookies: dict[str, dict[str, str]] = {}

    def request(self, method: str, url: str, body: bytes | None = None) -> Reply:
        parts = urlsplit(url)
        netloc = parts.netloc
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        headers = {"Accept": "text/html", "User-Agent": "npqsl-bench"}
        jar = self.cookies.get(netloc)
        if jar:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in jar.items())
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        for attempt in range(2):
            conn = self.connections.get(netloc)
            if conn is None:
                conn = self.connections[netloc] = Connection(parts.hostname, parts.port)
            reused = conn.sock is not None
            try:
                reply = conn.request(method, target, headers, body)
            except (ConnectionClosed, ConnectionResetError, BrokenPipeError):
                conn.close()
                if not reused or attempt:  # a fresh connection failed: a real error
                    raise
                continue  # the server closed an idle keep-alive connection: once more
            self._store(netloc, reply.set_cookies)
            return reply
        raise AssertionError("unreachable")

    def _store(self, netloc: str, set_cookies: list[str]) -> None:
        jar = self.cookies.setdefault(netloc, {})
        for header in set_cookies:
            first, *attributes = header.split(";")
            name, _, value = first.strip().partition("=")
            max_age = expires = None
            for attribute in attributes:
                key, _, val = attribute.strip().partition("=")
                key = key.lower()
                if key == "max-age":
                    max_age = int(val)
                elif key == "expires":
                    try:
                        expires = parsedate_to_datetime(val).timestamp()
                    except (TypeError, ValueError):
                        expires = None
            expired = max_age <= 0 if max_age is not None else (expires is not None and expires <= time.time())
            if expired:
                jar.pop(name, None)
            else:
                jar[name] = value

    def drop_cookies(self, netloc: str, prefixes: tuple[str, ...]) -> None:
        jar = self.cookies.get(netloc, {})
        for name in [n for n in jar if n.startswith(prefixes)]:
            del jar[name]

    def close(self) -> None:
        for conn in self.connections.values():
            conn.close()


@dataclass
class Target:
    name: str
    server: procs.Server
    login_path: str
    launch_path: str
    jwks_name: str
    stats_path: Path
    worker_pid: int = 0

    @property
    def login_url(self) -> str:
        return self.server.base_url + self.login_path

    @property
    def launch_url(self) -> str:
        return self.server.base_url + self.launch_path


@dataclass
class PlatformHandle:
    server: procs.Server
    control: http.client.HTTPConnection = field(init=False)

    def __post_init__(self) -> None:
        self.control = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=TIMEOUT)

    @property
    def issuer(self) -> str:
        return self.server.base_url

    @property
    def auth_url(self) -> str:
        return self.server.base_url + "/auth"

    def _call(self, method: str, path: str) -> dict:
        for attempt in range(2):
            try:
                self.control.request(method, path)
                response = self.control.getresponse()
                return json.loads(response.read())
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.control.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def stats(self) -> dict:
        return self._call("GET", "/_stats")

    def set_latency(self, ms: float) -> None:
        self._call("POST", f"/_latency?ms={ms}")


def launch_once(browser: Browser, target: Target, platform: PlatformHandle, user: int) -> float:
    """One login + launch for user N; its latency in seconds."""
    params = {
        "iss": platform.issuer,
        "login_hint": f"user-{user}",
        "target_link_uri": target.launch_url,
        "lti_message_hint": "rl-1",
        "client_id": CLIENT_ID,
        "lti_deployment_id": DEPLOYMENT_ID,
    }
    url = f"{target.login_url}?{urlencode(params)}"
    start = time.perf_counter()
    reply = browser.request("GET", url)
    for _ in range(MAX_REDIRECTS):
        if reply.status not in (301, 302, 303, 307, 308):
            break
        url = urljoin(url, reply.headers["location"])
        reply = browser.request("GET", url)
    if reply.status != 200 or not url.startswith(platform.auth_url + "?"):
        raise LaunchFailed(
            f"{target.name}: login ended at {url[:120]} with HTTP {reply.status}: {reply.body[:300]!r}"
        )
    page = reply.body.decode("utf-8")
    action = FORM_ACTION.search(page)
    if action is None:
        raise LaunchFailed(f"{target.name}: no auto-post form from the platform: {page[:300]!r}")
    fields = {html.unescape(k): html.unescape(v) for k, v in FORM_INPUT.findall(page)}
    reply = browser.request("POST", html.unescape(action.group(1)), urlencode(fields).encode())
    elapsed = time.perf_counter() - start
    if reply.status != 200 or f"Learner {user}".encode() not in reply.body:
        raise LaunchFailed(f"{target.name}: launch answered HTTP {reply.status}: {reply.body[:300]!r}")
    browser.drop_cookies(urlsplit(target.launch_url).netloc, STATE_COOKIE_PREFIXES)
    return elapsed


@dataclass
class Row:
    name: str
    concurrency: int
    launches: int
    wall: float
    latencies: list[float]
    tool_cpu: float  # the worker's CPU time (/proc)
    tool_queued: float  # the worker's time runnable but waiting for a CPU (schedstat)
    request_wall: float  # the worker's wall time inside requests (gunicorn hooks)
    request_run: float  # ... of which on a CPU
    request_queued: float  # ... of which waiting for a CPU
    requests: int  # requests the tool served during the measured launches
    client_cpu: float
    platform_cpu: float
    others_cpu: float  # CPU used by the rest of the machine meanwhile
    jwks: int

    @property
    def rate(self) -> float:
        return self.launches / self.wall

    @property
    def blocked(self) -> float:
        """Time inside requests the worker waited for something other than a CPU (the network)."""
        return max(0.0, self.request_wall - self.request_run - self.request_queued)

    @property
    def idle(self) -> float:
        """The rest of the worker's wall time: no request to serve, or waiting for the client to close."""
        return max(0.0, self.wall - self.tool_cpu - self.blocked - self.tool_queued)

    @property
    def capacity(self) -> float:
        """Launches/s one sync worker would serve with a core to itself: 1 / (CPU + blocked)."""
        return self.launches / (self.tool_cpu + self.blocked)

    @property
    def harness_cpu(self) -> float:
        return self.client_cpu + self.platform_cpu

    def percentile(self, p: int) -> float:
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[p - 1] * 1000

    def ms(self, seconds: float) -> float:
        return 1000 * seconds / self.launches

    def share(self, seconds: float) -> float:
        return 100 * seconds / self.wall

    def format(self) -> str:
        return (
            f"{self.name:<19}{self.concurrency:>7}{self.rate:>9.1f}{self.percentile(50):>7.1f}"
            f"{self.percentile(95):>7.1f}{self.percentile(99):>7.1f}"
            f"{self.ms(self.tool_cpu):>8.2f}{self.ms(self.blocked):>8.2f}{self.ms(self.tool_queued):>8.2f}"
            f"{self.ms(self.idle):>7.2f}"
            f"{self.capacity:>7.0f}"
            f"{self.ms(self.harness_cpu):>8.2f}{self.share(self.harness_cpu):>5.0f}%"
            f"{self.share(self.others_cpu):>7.0f}%{self.jwks:>6}{self.requests / self.launches:>5.1f}"
        )


HEADER = (
    f"{'':<19}{'clients':>7}{'launch/s':>9}{'p50':>7}{'p95':>7}{'p99':>7}"
    f"{'CPU':>8}{'blocked':>8}{'queued':>8}{'idle':>7}{'cap/s':>7}{'harness':>8}{'busy':>6}{'others':>8}{'JWKS':>6}{'req':>5}"
)
LEGEND = """\
clients   simulated browsers, each launching again as soon as its previous launch is done
launch/s  measured launches / wall time
p50..p99  latency of one whole login + launch (three HTTP requests), ms
CPU       the tool worker's CPU ms per launch (/proc/<pid>/stat utime + stime)
blocked   ms per launch the worker waited inside requests for anything but a CPU: the network
          (the baseline's JWKS fetch), the disk, a lock (gunicorn hooks: wall time in requests
          - thread CPU time - run delay from /proc/thread-self/schedstat)
queued    ms per launch the worker was ready to run but waiting for a CPU (/proc/<pid>/schedstat):
          time lost to the other processes on this 2-core machine, the harness's included
idle      the rest of the worker's time per launch (1000 / launch/s - CPU - blocked - queued): no
          request waiting, or gunicorn's sync worker lingering after each response until the
          client closes the connection (close_graceful); about 0 when the worker is saturated
cap/s     1000 / (CPU + blocked): launches/s the one sync worker would serve with a core to itself
          and nothing lost to its clients
harness   CPU ms per launch of the client and platform processes; busy = their CPU / wall time
others    CPU used by the rest of the machine meanwhile (other people's jobs), % of one core
JWKS      key-set requests the platform answered for that tool during the measured launches
req       HTTP requests the tool served per launch (2: login and launch; ours' first-visit cookie
          probe would make it 3, and happens only in the warm-up)"""


def _browser(
    conn, target: Target, platform: PlatformHandle, user: int, warmup: int, launches: int, issued, stop
) -> None:
    """One simulated browser, in a process of its own: the warm-up, then launches until the
    level's count is reached. Reports its CPU seconds for the measured part and its latencies."""
    browser = Browser()
    try:
        for _ in range(warmup):
            launch_once(browser, target, platform, user)
        conn.send(("warm", None))
        conn.recv()  # the measured part starts for every browser at once
        cpu0 = sum(os.times()[:2])
        latencies = []
        while not stop.is_set():
            with issued.get_lock():
                if issued.value >= launches:
                    break
                issued.value += 1
            latencies.append(launch_once(browser, target, platform, user))
        conn.send(("done", (sum(os.times()[:2]) - cpu0, latencies)))
    except BaseException as exc:  # noqa: BLE001 - reported by the parent
        stop.set()
        conn.send(("error", f"{exc.__class__.__name__}: {exc}"))
    finally:
        browser.close()
        conn.close()


def run_level(target: Target, platform: PlatformHandle, *, concurrency: int, launches: int, warmup: int) -> Row:
    """A warm-up, then `launches` launches by `concurrency` browsers (one process each).

    Processes, not threads: gunicorn's sync worker lingers after each response until the client
    closes the connection, and browser threads sharing one interpreter lock would each wait for
    the others' Python before closing, time counted against the tool (as idle).
    """
    context = multiprocessing.get_context("fork")
    issued, stop = context.Value("i", 0), context.Event()
    pipes, processes = [], []
    for index in range(concurrency):
        parent, child = context.Pipe()
        process = context.Process(
            target=_browser,
            args=(child, target, platform, index + 1, warmup, launches, issued, stop),
            daemon=True,
        )
        process.start()
        child.close()
        pipes.append(parent)
        processes.append(process)

    def collect(kind: str) -> list:
        results = []
        for conn in pipes:
            try:
                got, value = conn.recv()
            except EOFError:
                got, value = "error", "a browser process ended without a word"
            if got != kind:
                stop.set()
                raise LaunchFailed(f"{target.name}: {value}")
            results.append(value)
        return results

    try:
        collect("warm")
        worker = target.server.worker_pid()
        if worker != target.worker_pid:
            raise LaunchFailed(
                f"{target.name}: gunicorn replaced its worker (pid {target.worker_pid} -> {worker})"
            )
        before = platform.stats()
        platform_pid = platform.server.proc.pid
        tool0, queued0 = procs.cpu_seconds(worker), procs.run_queue_seconds(worker)
        request0 = gunicorn_hooks.read(str(target.stats_path))
        main0, platform0 = sum(os.times()[:2]), procs.cpu_seconds(platform_pid)
        machine0 = procs.machine_busy_seconds()
        start = time.perf_counter()
        for conn in pipes:
            conn.send("go")
        done = collect("done")
        wall = time.perf_counter() - start
        machine = procs.machine_busy_seconds() - machine0
        tool_cpu = procs.cpu_seconds(worker) - tool0
        tool_queued = procs.run_queue_seconds(worker) - queued0
        request1 = gunicorn_hooks.read(str(target.stats_path))
        client_cpu = sum(os.times()[:2]) - main0 + sum(cpu for cpu, _ in done)
        platform_cpu = procs.cpu_seconds(platform_pid) - platform0
        latencies = [latency for _, some in done for latency in some]
        after = platform.stats()
    finally:
        stop.set()
        for process in processes:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
    jwks = after["jwks_requests"].get(target.jwks_name, 0) - before["jwks_requests"].get(target.jwks_name, 0)
    return Row(
        name=target.name,
        concurrency=concurrency,
        launches=launches,
        wall=wall,
        latencies=latencies,
        tool_cpu=tool_cpu,
        tool_queued=tool_queued,
        request_wall=request1[0] - request0[0],
        request_run=request1[1] - request0[1],
        request_queued=request1[2] - request0[2],
        requests=request1[3] - request0[3],
        client_cpu=client_cpu,
        platform_cpu=platform_cpu,
        others_cpu=max(0.0, machine - tool_cpu - client_cpu - platform_cpu),
        jwks=jwks,
    )


def run_table(targets: list[Target], platform: PlatformHandle, args: argparse.Namespace) -> list[Row]:
    """Per level, ``args.rounds`` rounds taking the tools in turn; each tool's median round counts.

    A shared machine's noise comes in bursts of seconds: taking turns spreads it over every tool,
    and the median round drops a burst that hit one of them.
    """
    medians = []
    print(HEADER, flush=True)
    for concurrency in args.concurrency:
        rounds: dict[str, list[Row]] = {target.name: [] for target in targets}
        for number in range(args.rounds):
            for target in targets:
                row = run_level(
                    target, platform, concurrency=concurrency, launches=args.launches, warmup=args.warmup
                )
                rounds[target.name].append(row)
                if args.rounds > 1:
                    print(f"  round {number + 1}: " + row.format().lstrip(), flush=True)
        for target in targets:
            ordered = sorted(rounds[target.name], key=lambda r: r.rate)
            median = ordered[len(ordered) // 2]
            medians.append(median)
            print(median.format(), flush=True)
    return medians


def ratios(rows: list[Row], levels: list[int], measure=lambda row: row.rate) -> dict[int, float]:
    """ours / baseline, per concurrency level."""
    value = {(r.name, r.concurrency): measure(r) for r in rows}
    return {c: value[(OURS, c)] / value[(BASELINE, c)] for c in levels}


def clients(count: int) -> str:
    return f"{count} client" + ("s" if count != 1 else "")


def harness_summary(title: str, rows: list[Row]) -> str:
    """How far the tools were from what the harness itself can carry."""
    noop = max((r for r in rows if r.name == NOOP), key=lambda r: r.rate)
    best = max((r for r in rows if r.name != NOOP), key=lambda r: r.rate)
    return (
        f"Harness, {title}: the no-op tool reached {noop.rate:.0f} launches/s ({clients(noop.concurrency)}; "
        f"client + platform {noop.ms(noop.harness_cpu):.1f} ms CPU per launch); the fastest real tool "
        f"row, {best.name} at {clients(best.concurrency)}, reached {best.rate:.0f} ({100 * best.rate / noop.rate:.0f}%)"
    )


def tree_state() -> str:
    """The code measured: the commit, and whether lti_tool/ differs from it (the figures are of the
    work tree), or where lti_tool comes from if the tools import it from elsewhere (PYTHONPATH)."""
    found = subprocess.run(
        [sys.executable, "-c", "import lti_tool; print(lti_tool.__file__)"],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout.strip()
    if found and not Path(found).resolve().is_relative_to(ROOT):
        return f"lti_tool from {Path(found).parent}"
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


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without any NPQSL_* setting of the caller's, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NPQSL_")}
    env.update(extra)
    return env


def start_all(
    tmp: Path, ours_extra: dict[str, str], *, split: tuple[set[int], set[int]] | None = None
) -> tuple[PlatformHandle, list[Target]]:
    platform_port, ours_port, baseline_port, noop_port = procs.free_ports(4)
    issuer = f"http://127.0.0.1:{platform_port}"
    launch_urls = {
        "ours": f"http://127.0.0.1:{ours_port}/lti/launch",
        "baseline": f"http://127.0.0.1:{baseline_port}/launch",
        "noop": f"http://127.0.0.1:{noop_port}/launch",
    }
    cmd = [sys.executable, str(HERE / "bench_platform.py"), "--port", str(platform_port)]
    cmd += ["--client-id", CLIENT_ID, "--deployment-id", DEPLOYMENT_ID]
    for url in launch_urls.values():
        cmd += ["--redirect-uri", url]
    platform_server = procs.Server(
        "platform", cmd, port=platform_port, env=clean_env(), log_path=tmp / "platform.log"
    )
    platform_server.start().wait_ready("/_stats")
    platform = PlatformHandle(platform_server)

    # Ours, set up as an operator would: migrate, register the platform, serve the app factory.
    ours_env = {"NPQSL_ENV": "development", "NPQSL_INSTANCE_PATH": str(tmp / "ours"), **ours_extra}
    cli = [sys.executable, "-m", "lti_tool.cli"]
    for step in (
        ["db", "upgrade"],
        ["platform", "add", "--issuer", issuer, "--client-id", CLIENT_ID, "--deployment-id", DEPLOYMENT_ID]
        + [
            "--auth-url",
            issuer + "/auth",
            "--token-url",
            issuer + "/token",
            "--keyset-url",
            issuer + "/jwks/ours",
        ],
    ):
        done = subprocess.run(cli + step, env=clean_env(**ours_env), capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"npqsl-lti {' '.join(step[:2])} failed:\n{done.stdout}{done.stderr}")
    config = write_config(
        tmp / "baseline",
        issuer=issuer,
        client_id=CLIENT_ID,
        deployment_id=DEPLOYMENT_ID,
        auth_login_url=issuer + "/auth",
        auth_token_url=issuer + "/token",
        key_set_url=issuer + "/jwks/baseline",
    )
    noop_env = {
        "NOOP_AUTH_URL": issuer + "/auth",
        "NOOP_CLIENT_ID": CLIENT_ID,
        "NOOP_LAUNCH_URL": launch_urls["noop"],
    }
    specs = [
        # name, app, port, pythonpath, environment, login path, launch path, JWKS name, ready check
        (NOOP, "noop_tool:create_app()", noop_port, HERE, noop_env, "/login", "/launch", "noop", None),
        (
            OURS,
            "lti_tool.app:create_app()",
            ours_port,
            None,
            ours_env,
            "/lti/login",
            "/lti/launch",
            "ours",
            "/healthz",
        ),
        (
            BASELINE,
            "pylti1p3_baseline:create_app()",
            baseline_port,
            HERE,
            {"BASELINE_LTI_CONFIG": str(config)},
            "/login",
            "/launch",
            "baseline",
            "/jwks",
        ),
    ]
    started = []
    for name, app, port, pythonpath, env, login_path, launch_path, jwks_name, ready in specs:
        stats_path = tmp / f"{jwks_name}.worker-stats"
        server = procs.Server(
            name,
            procs.gunicorn_cmd(app, port, pythonpath),
            port=port,
            env={**clean_env(**env), "BENCH_WORKER_STATS": str(stats_path)},
            log_path=tmp / f"{jwks_name}.log",
        )
        started.append((Target(name, server.start(), login_path, launch_path, jwks_name, stats_path), ready))
    for target, ready in started:
        # The no-op tool has no health page: any answer will do.
        target.server.wait_ready(ready or "/", any_status=ready is None)
        target.worker_pid = target.server.worker_pid()
    if split:
        pin_cpus(split, platform, [target for target, _ in started])
    return platform, [target for target, _ in started]


def cpu_split() -> tuple[set[int], set[int]] | None:
    """(the tools' CPU, the harness's CPUs), or None on a machine with a single CPU."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None
    return {cpus[-1]}, set(cpus[:-1])


def pin_cpus(split: tuple[set[int], set[int]], platform: PlatformHandle, targets: list[Target]) -> None:
    """Each tool (gunicorn master and worker) on a CPU of its own; the platform and the client on
    the others. Unpinned, the harness's CPU time comes out of the tool's, as it would not in a
    deployment where the VLE and the browsers are other machines: the faster the tool, the more
    the harness takes from it. Only one tool is measured at a time, so they can share that CPU."""
    tool_cpus, harness_cpus = split
    os.sched_setaffinity(0, harness_cpus)
    os.sched_setaffinity(platform.server.proc.pid, harness_cpus)
    for target in targets:
        os.sched_setaffinity(target.server.proc.pid, tool_cpus)
        os.sched_setaffinity(target.worker_pid, tool_cpus)


def gunicorn_version() -> str:
    try:
        from importlib.metadata import version

        return version("gunicorn")
    except Exception:  # noqa: BLE001 - only for the header line
        return "?"


def levels(text: str) -> list[int]:
    values = [int(v) for v in text.split(",") if v.strip()]
    if not values or any(v < 1 or v > 64 for v in values):
        raise argparse.ArgumentTypeError("a comma-separated list of numbers from 1 to 64")
    return values


def setting(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.startswith("NPQSL_"):
        raise argparse.ArgumentTypeError("NPQSL_NAME=VALUE")
    return name, value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--launches", type=int, default=400, help="measured launches per tool and level (400)")
    parser.add_argument(
        "--concurrency", type=levels, default=[1, 4, 8], help="simulated browsers, comma-separated (1,4,8)"
    )
    parser.add_argument("--warmup", type=int, default=5, help="uncounted launches per browser first (5)")
    parser.add_argument(
        "--rounds", type=int, default=3, help="rounds per level, the tools taking turns; the median counts (3)"
    )
    parser.add_argument(
        "--platform-latency-ms",
        type=float,
        default=20.0,
        help="after the loopback table, a second with this delay on every platform endpoint; 0 skips (20)",
    )
    parser.add_argument(
        "--ours-env",
        type=setting,
        action="append",
        default=[],
        metavar="NPQSL_NAME=VALUE",
        help="one more setting for our tool (repeat), e.g. NPQSL_DATABASE_URL=postgresql+psycopg2://...",
    )
    parser.add_argument(
        "--pin",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="the tools on one CPU, the platform and client on the others (default; --no-pin: "
        "every process anywhere, so the harness competes with the tool for CPU)",
    )
    args = parser.parse_args(argv)
    if not 2 <= args.launches <= 100_000 or not 0 <= args.warmup <= 1000 or not 1 <= args.rounds <= 99:
        parser.error("--launches must be 2..100000, --warmup 0..1000 and --rounds 1..99")
    if not 0 <= args.platform_latency_ms <= 5000:
        parser.error("--platform-latency-ms must be 0..5000")

    procs.install_cleanup()
    load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())
    with tempfile.TemporaryDirectory(prefix="npqsl-bench-") as tmp_name:
        tmp = Path(tmp_name)
        try:
            split = cpu_split() if args.pin else None
            platform, targets = start_all(tmp, dict(args.ours_env), split=split)
            print(
                f"LTI 1.3 login+launch — {date.today().isoformat()}, Python {host.python_version()}, "
                f"{os.cpu_count()} CPUs, {tree_state()}, gunicorn {gunicorn_version()}"
            )
            print(
                "Each tool: its own process, gunicorn --workers 1 --worker-class sync on 127.0.0.1. "
                "Platform and client: two more processes."
            )
            print(
                f"CPUs: the tools on {sorted(split[0])}, the platform and the client on {sorted(split[1])}"
                if split
                else "CPUs: not pinned; the platform and the client compete with the tool for the CPUs"
            )
            print(
                f"{args.launches} measured launches per tool, level and round ({args.rounds} rounds, the tools "
                f"taking turns; the median round is the tool's row) after {args.warmup} warm-up launches "
                f"per browser; load average before {load_before}"
            )
            print()
            print("Loopback: the platform answers at once")
            loopback = run_table(targets, platform, args)
            delayed = []
            if args.platform_latency_ms:
                platform.set_latency(args.platform_latency_ms)
                print()
                print(
                    f"Platform {args.platform_latency_ms:g} ms away: every /auth and JWKS answer delayed by "
                    f"{args.platform_latency_ms:g} ms (a VLE across a network)"
                )
                delayed = run_table(targets, platform, args)
        except (LaunchFailed, RuntimeError, OSError) as failure:
            print(f"benchmark failed: {failure!r}", file=sys.stderr)
            for log in sorted(tmp.glob("*.log")):
                tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
                print(f"--- last lines of {log.name}:\n{tail}", file=sys.stderr)
            return 1
        finally:
            procs.stop_all()

    print()
    print(LEGEND)
    print()
    top = max(args.concurrency)
    tables = [("loopback", loopback), (f"platform {args.platform_latency_ms:g} ms away", delayed)]
    for title, rows in (t for t in tables if t[1]):
        for label, measure in (("launches/s", lambda r: r.rate), ("cap/s", lambda r: r.capacity)):
            ratio = ratios(rows, args.concurrency, measure)
            shown = ", ".join(f"{clients(c)} {ratio[c]:.2f}x" for c in args.concurrency)
            print(f"ours/baseline {label}, {title}: {shown}")
    print()
    for title, rows in (t for t in tables if t[1]):
        print(harness_summary(title, rows))
    print("load average after: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    print()
    headline = ratios(loopback, [top])[top]
    verdict = "met" if headline >= 2 else "NOT met"
    print(f"Target ours >= 2x baseline launches/s (loopback, {clients(top)}): {headline:.2f}x — {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
