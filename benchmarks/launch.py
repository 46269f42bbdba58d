"""LTI 1.3 login + launch round trips: npqsl-lti against a minimal pylti1p3 tool.

    python benchmarks/launch.py [--launches N] [--concurrency C] [--warmup W] [--first-visit M]
                                [--keep-state-cookies]

Starts the test platform (tests/platform_emulator.py) on 127.0.0.1, our tool (tests/tool_server.py,
SQLite in a temporary folder) and the pylti1p3 baseline (benchmarks/pylti1p3_baseline.py), all
in this process, each behind a threaded Werkzeug server. One round trip is what a browser does:

    GET  tool /login?iss=...&login_hint=...   (ours: the cookie probe hop on a first visit)
      -> 302 platform /auth                    (the platform validates the request, signs an id_token)
      <- auto-post form
    POST tool /launch (id_token, state)        -> must answer 200

Each worker keeps one browser session (cookie jar + keep-alive connections) for all its launches,
as for a returning user; the first-visit series uses a fresh session per launch. Figures only:
no assertions. Exits 1 if a launch fails, 0 otherwise.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform as host
import queue
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for entry in (str(HERE), str(ROOT)):
    if entry not in sys.path:
        sys.path.insert(0, entry)

import requests  # noqa: E402
from pylti1p3_baseline import BaselineServer  # noqa: E402

from tests.browser import auto_post_form  # noqa: E402
from tests.platform_emulator import TestPlatform  # noqa: E402
from tests.tool_server import ToolServer  # noqa: E402

# Cookies each tool sets per login (the browser binding of the state). A tool that does not delete
# its cookie after the launch (pylti1p3 does not) leaves one per login for the login TTL (5 minutes),
# so a browser launching hundreds of times within that window would send hundreds of cookies on every
# request; a real returning user's launches are further apart. By default the benchmark drops them
# after each round trip (see --keep-state-cookies).
STATE_COOKIE_PREFIXES = ("lti_state_", "lti1p3-state-")


class LaunchFailed(Exception):
    pass


@dataclass
class ServerTimes:
    """CPU and wall time spent inside one tool's WSGI app, summed over every request it served."""

    cpu: float = 0.0
    wall: float = 0.0
    requests: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        with self.lock:
            self.cpu = self.wall = 0.0
            self.requests = 0

    def wrap(self, wsgi_app: Callable) -> Callable:
        def timed(environ, start_response):
            cpu0, wall0 = time.thread_time(), time.perf_counter()
            try:
                return wsgi_app(environ, start_response)
            finally:
                cpu, wall = time.thread_time() - cpu0, time.perf_counter() - wall0
                with self.lock:
                    self.cpu += cpu
                    self.wall += wall
                    self.requests += 1

        return timed


@dataclass
class Target:
    name: str
    login_url: str
    launch_url: str
    times: ServerTimes


@dataclass
class Result:
    name: str
    launches: int
    wall: float
    latencies: list[float]
    process_cpu: float
    server_cpu: float
    server_wall: float
    server_requests: int

    @property
    def rate(self) -> float:
        return self.launches / self.wall

    def percentile(self, p: int) -> float:
        if len(self.latencies) < 2:
            return self.latencies[0] * 1000
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[p - 1] * 1000


def new_browser() -> requests.Session:
    return requests.Session()


def round_trip(browser: requests.Session, target: Target, platform: TestPlatform, keep_state: bool) -> float:
    """One login + launch, as a browser without JavaScript does it; returns its latency in seconds."""
    params = platform.login_params(target.launch_url, platform.prepare())
    start = time.perf_counter()
    response = browser.get(target.login_url, params=params, timeout=10)
    if response.status_code != 200 or not response.url.startswith(platform.auth_url):
        raise LaunchFailed(
            f"{target.name}: login ended at {response.url} with HTTP {response.status_code}: {response.text[:300]}"
        )
    form = auto_post_form(response.text, response.url)
    response = browser.post(form.action, data=form.fields, timeout=10)
    elapsed = time.perf_counter() - start
    if response.status_code != 200:
        raise LaunchFailed(f"{target.name}: launch answered HTTP {response.status_code}: {response.text[:300]}")
    if not keep_state:
        for name in [c.name for c in browser.cookies if c.name.startswith(STATE_COOKIE_PREFIXES)]:
            del browser.cookies[name]
    return elapsed


def run_series(
    target: Target,
    platform: TestPlatform,
    *,
    launches: int,
    concurrency: int,
    browsers: list[requests.Session] | None,
    keep_state: bool,
) -> Result:
    """`launches` round trips on `concurrency` workers; browsers=None means a fresh one per launch."""
    pool: queue.Queue[requests.Session] = queue.Queue()
    for browser in browsers or []:
        pool.put(browser)

    def one(_index: int) -> float:
        if browsers is None:
            with new_browser() as fresh:
                return round_trip(fresh, target, platform, keep_state)
        browser = pool.get()
        try:
            return round_trip(browser, target, platform, keep_state)
        finally:
            pool.put(browser)

    target.times.reset()
    cpu0 = time.process_time()
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as executor:
        latencies = list(executor.map(one, range(launches)))
    wall = time.perf_counter() - start
    process_cpu = time.process_time() - cpu0
    times = target.times
    return Result(target.name, launches, wall, latencies, process_cpu, times.cpu, times.wall, times.requests)


def bench_target(target: Target, platform: TestPlatform, args: argparse.Namespace) -> dict[str, object]:
    """Warm-up, the measured run with reused browsers, and the first-visit run, for one tool."""
    jwks_before = platform.jwks_requests
    browsers = [new_browser() for _ in range(args.concurrency)]
    # Warm-up: every worker's browser does a few launches first (sets the probe cookie, opens
    # keep-alive connections, fills the tool's caches); none of it is counted.
    for browser in browsers:
        for _ in range(args.warmup):
            round_trip(browser, target, platform, args.keep_state_cookies)
    warm_launches = args.warmup * len(browsers)
    jwks_measured_before = platform.jwks_requests
    measured = run_series(
        target,
        platform,
        launches=args.launches,
        concurrency=args.concurrency,
        browsers=browsers,
        keep_state=args.keep_state_cookies,
    )
    jwks_measured = platform.jwks_requests - jwks_measured_before
    first_visit = None
    if args.first_visit:
        first_visit = run_series(
            target,
            platform,
            launches=args.first_visit,
            concurrency=args.concurrency,
            browsers=None,
            keep_state=args.keep_state_cookies,
        )
    for browser in browsers:
        browser.close()
    total_launches = warm_launches + args.launches + (args.first_visit or 0)
    return {
        "measured": measured,
        "first_visit": first_visit,
        "jwks_total": platform.jwks_requests - jwks_before,
        "jwks_measured": jwks_measured,
        "total_launches": total_launches,
    }


HEADER = (
    f"{'':<20}{'launches':>9}{'wall s':>8}{'launches/s':>11}{'p50 ms':>8}{'p95 ms':>8}{'p99 ms':>8}"
    f"{'tool ms':>9}{'tool CPU':>9}{'all CPU':>9}"
)


def row(result: Result) -> str:
    per_launch = 1000 / result.launches
    return (
        f"{result.name:<20}{result.launches:>9}{result.wall:>8.2f}{result.rate:>11.1f}"
        f"{result.percentile(50):>8.2f}{result.percentile(95):>8.2f}{result.percentile(99):>8.2f}"
        f"{result.server_wall * per_launch:>9.2f}{result.server_cpu * per_launch:>9.2f}"
        f"{result.process_cpu * per_launch:>9.2f}"
    )


def tree_state() -> str:
    """The commit measured, and whether the work tree differs from it (figures are of the work tree)."""
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--launches", type=int, default=300, help="measured round trips per tool (300)")
    parser.add_argument("--concurrency", type=int, default=1, help="worker threads, one browser each (1)")
    parser.add_argument("--warmup", type=int, default=3, help="uncounted launches per worker first (3)")
    parser.add_argument(
        "--first-visit",
        type=int,
        default=50,
        help="extra launches, each from a fresh browser (no cookies, new connections); 0 skips (50)",
    )
    parser.add_argument(
        "--keep-state-cookies",
        action="store_true",
        help="keep each login's state cookie in the browser after its launch (as if all launches "
        "happened within the 5-minute login TTL); by default they are dropped",
    )
    args = parser.parse_args(argv)
    if args.launches < 1 or args.concurrency < 1 or args.warmup < 0 or args.first_visit < 0:
        parser.error("--launches and --concurrency must be at least 1, --warmup and --first-visit at least 0")

    # Our tool logs every login and launch at INFO: the records are still made (their cost is part
    # of a real request) but not printed.
    # Werkzeug's per-request access log is a development-server feature (gunicorn logs apart), so
    # it is switched off altogether.
    logging.basicConfig(format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger().handlers[0].setLevel(logging.WARNING)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)

    load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())
    platform = TestPlatform().start()
    with tempfile.TemporaryDirectory(prefix="npqsl-bench-") as tmp:
        ours = ToolServer(Path(tmp) / "tool")
        ours.register(platform)
        ours_times = ServerTimes()
        ours.app.wsgi_app = ours_times.wrap(ours.app.wsgi_app)
        ours.start()
        baseline = BaselineServer.for_platform(platform)
        baseline_times = ServerTimes()
        baseline.app.wsgi_app = baseline_times.wrap(baseline.app.wsgi_app)
        baseline.start()
        targets = [
            Target("npqsl-lti (ours)", ours.login_url, ours.launch_url, ours_times),
            Target("pylti1p3 baseline", baseline.login_url, baseline.launch_url, baseline_times),
        ]
        try:
            runs = {target.name: bench_target(target, platform, args) for target in targets}
        except LaunchFailed as failure:
            print(f"launch failed: {failure}", file=sys.stderr)
            return 1
        finally:
            baseline.stop()
            ours.stop()
            platform.stop()

    ours_run, base_run = runs[targets[0].name], runs[targets[1].name]
    print(
        f"LTI 1.3 login+launch round trips — {date.today().isoformat()}, Python {host.python_version()}, "
        f"{os.cpu_count()} CPUs, {tree_state()}"
    )
    print("The platform, both tools and the client share this process (one GIL), each server in threads.")
    print(
        f"{args.launches} launches per tool, concurrency {args.concurrency}, warm-up {args.warmup} per worker, "
        f"state cookies {'kept' if args.keep_state_cookies else 'dropped after each launch'}, "
        f"load average before {load_before}"
    )
    print()
    print("Returning browser (one session per worker, probe cookie already set):")
    print(HEADER)
    for run in (ours_run, base_run):
        print(row(run["measured"]))
    if args.first_visit:
        print()
        print("First visit (a fresh browser per launch; ours adds the cookie-probe hop):")
        print(HEADER)
        for run in (ours_run, base_run):
            print(row(run["first_visit"]))
    print()
    print("tool ms / tool CPU = wall / CPU time inside that tool's WSGI app, per launch (all its requests);")
    print("all CPU = CPU time of the whole process per launch (client + platform + tool); all in ms.")
    print()
    for name, run in runs.items():
        print(
            f"platform.jwks_requests {name}: {run['jwks_total']} over all {run['total_launches']} launches "
            f"({run['jwks_measured']} during the measured run)"
        )
    print()
    ours_m, base_m = ours_run["measured"], base_run["measured"]
    ratio = ours_m.rate / base_m.rate
    verdict = "met" if ratio >= 2 else "NOT met"
    print(
        f"ours/baseline launches/s: {ours_m.rate:.1f} / {base_m.rate:.1f} = {ratio:.2f}x (target >= 2x: {verdict})"
    )
    cpu_ratio = base_m.server_cpu / ours_m.server_cpu if ours_m.server_cpu else float("inf")
    print(
        f"tool CPU per launch, baseline/ours: {base_m.server_cpu / base_m.launches * 1000:.2f} / "
        f"{ours_m.server_cpu / ours_m.launches * 1000:.2f} ms = {cpu_ratio:.2f}x"
    )
    if args.first_visit:
        ours_f, base_f = ours_run["first_visit"], base_run["first_visit"]
        print(f"first visit ours/baseline launches/s: {ours_f.rate / base_f.rate:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
