"""The platform's public keys over real HTTP: cached, refetched on rotation, throttled, bounded in time.

Each test has its own TestPlatform (so its JWKS request count is its own) and its own tool from
make_tool (so its JWKS cache and refetch throttle are its own). Broken key set endpoints are tiny
servers on 127.0.0.1: one that accepts and never answers, one that answers and then stalls, and
one that answers with something that is not a key set.
"""

from __future__ import annotations

import json
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import requests
from cachelib import SimpleCache
from werkzeug.serving import make_server
from werkzeug.wrappers import Response

from lti_tool.errors import LaunchError
from lti_tool.http import make_http_session
from lti_tool.platform_keys import MAX_JWKS_BYTES, PlatformKeys
from lti_tool.platforms import add_platform, remove_platform

from .browser import Browser
from .platform_emulator import LaunchSpec, PlatformKey, TestPlatform
from .tool_server import ToolServer


@pytest.fixture
def own_platform():
    server = TestPlatform().start()
    try:
        yield server
    finally:
        server.stop()


def refusal_code(response: requests.Response) -> str | None:
    start = response.text.find("<code>")
    return response.text[start + 6 : response.text.find("</code>", start)] if start >= 0 else None


def launch(
    tool: ToolServer, platform: TestPlatform, spec: LaunchSpec | None = None, browser: Browser | None = None
) -> requests.Response:
    return (browser or Browser()).launch(tool, platform, spec)


def register_with_key_set(tool: ToolServer, platform: TestPlatform, key_set_url: str):
    """Register the platform with the tool (or update it), its keys published at another URL."""
    platform.tool_jwks_url = tool.jwks_url
    if tool.launch_url not in platform.redirect_uris:
        platform.redirect_uris.append(tool.launch_url)
    return add_platform(
        tool.db,
        issuer=platform.issuer,
        client_id=platform.client_id,
        deployment_ids=[platform.deployment_id],
        auth_login_url=platform.auth_url,
        auth_token_url=platform.token_url,
        key_set_url=key_set_url,
    )


class SilentServer:
    """Accepts TCP connections on 127.0.0.1 and holds them; sends ``greeting`` (maybe nothing), then stalls."""

    def __init__(self, greeting: bytes = b""):
        self._greeting = greeting
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}/jwks"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._held.append(conn)
            if self._greeting:
                conn.settimeout(1)
                try:
                    conn.recv(65536)  # the request; its content does not matter
                    conn.sendall(self._greeting)
                except OSError:
                    pass

    def __enter__(self) -> SilentServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for conn in self._held:
            conn.close()
        self._listener.close()


@contextmanager
def key_set_server(body: bytes, status: int = 200) -> Iterator[str]:
    """A real HTTP server answering every request with ``body``; yields its URL."""
    server = make_server(
        "127.0.0.1",
        0,
        lambda environ, start_response: Response(body, status=status, content_type="application/json")(
            environ, start_response
        ),
        threaded=True,
    )
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/jwks"
    finally:
        server.shutdown()
        server.server_close()


def test_jwks_is_fetched_once_and_cached_across_launches(make_tool, own_platform):
    tool = make_tool()
    tool.register(own_platform)
    browser = Browser()

    for n in range(4):
        response = launch(tool, own_platform, LaunchSpec(sub=f"cached-{n}"), browser)
        assert response.status_code == 200, response.text[:500]

    assert own_platform.jwks_requests == 1


def test_rotated_key_triggers_exactly_one_refetch(make_tool, own_platform):
    tool = make_tool()
    tool.register(own_platform)
    assert launch(tool, own_platform).status_code == 200
    assert own_platform.jwks_requests == 1

    new_key = own_platform.rotate_key()
    response = launch(tool, own_platform, LaunchSpec(sub="after-rotation"))

    assert response.status_code == 200, response.text[:500]
    assert own_platform.signing_key is new_key
    assert own_platform.jwks_requests == 2
    assert launch(tool, own_platform).status_code == 200
    assert own_platform.jwks_requests == 2, "the refetched key set should be cached again"


def test_flood_of_made_up_kids_triggers_at_most_one_refetch(make_tool, own_platform):
    tool = make_tool(jwks={"refetch_min_interval_seconds": 30})
    tool.register(own_platform)
    browser = Browser()
    assert launch(tool, own_platform, browser=browser).status_code == 200
    fetched_before_flood = own_platform.jwks_requests

    for _ in range(12):
        made_up = LaunchSpec(header={"kid": "made-up-" + secrets.token_hex(4)})
        response = launch(tool, own_platform, made_up, browser)
        assert response.status_code == 401
        assert refusal_code(response) == "unknown_kid"

    assert fetched_before_flood == 1
    assert own_platform.jwks_requests - fetched_before_flood <= 1
    assert launch(tool, own_platform, browser=browser).status_code == 200, "the real key still works"


@pytest.mark.parametrize(
    "greeting",
    [
        pytest.param(b"", id="never_answers"),
        pytest.param(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 4096\r\n\r\n{",
            id="answers_then_stalls_mid_body",
        ),
    ],
)
def test_hanging_jwks_endpoint_is_jwks_unavailable_within_the_timeout(make_tool, own_platform, greeting):
    timeout = 0.5
    tool = make_tool(http={"timeout_seconds": timeout})
    with SilentServer(greeting) as hanging:
        register_with_key_set(tool, own_platform, hanging.url)
        browser = Browser()
        form = browser.platform_post(tool, own_platform)

        started = time.monotonic()
        response = browser.post(form.action, data=form.fields)
        elapsed = time.monotonic() - started

    assert response.status_code == 502, response.text[:500]
    assert refusal_code(response) == "jwks_unavailable"
    assert elapsed < timeout + 3


@pytest.fixture(scope="module")
def broken_keys_platform(tool):
    """A platform on the shared tool whose key set URL each test points at a broken server.

    Failed fetches are never cached, so each case fetches its own server's answer.
    """
    server = TestPlatform(client_id="tool-client-broken-keys").start()
    registration = tool.register(server)
    try:
        yield server
    finally:
        remove_platform(tool.db, registration.id)
        server.stop()


@pytest.mark.parametrize(
    ("body", "status"),
    [
        pytest.param(b"<html>Moodle is upgrading</html>", 200, id="not_json"),
        pytest.param(b'{"keys": "none"}', 200, id="json_without_a_keys_list"),
        pytest.param(b"[]", 200, id="json_list"),
        pytest.param(b'{"error": "boom"}', 500, id="http_500"),
        pytest.param(b'{"keys": [], "pad": "' + b"x" * MAX_JWKS_BYTES + b'"}', 200, id="larger_than_the_limit"),
    ],
)
def test_unusable_jwks_is_jwks_unavailable(tool, broken_keys_platform, browser, body, status):
    with key_set_server(body, status) as url:
        register_with_key_set(tool, broken_keys_platform, url)
        response = launch(tool, broken_keys_platform, browser=browser)

    assert response.status_code == 502, response.text[:500]
    assert refusal_code(response) == "jwks_unavailable"


def iat_five_seconds_ahead(claims: dict) -> None:
    now = int(time.time())
    claims["iat"], claims["exp"] = now + 5, now + 65


def test_leeway_setting_is_honoured(make_tool, own_platform):
    lenient = make_tool()
    strict = make_tool(launch={"leeway_seconds": 0})
    lenient.register(own_platform)
    strict.register(own_platform)

    accepted = launch(lenient, own_platform, LaunchSpec(mutate_claims=iat_five_seconds_ahead))
    refused = launch(strict, own_platform, LaunchSpec(mutate_claims=iat_five_seconds_ahead))

    assert accepted.status_code == 200, accepted.text[:500]
    assert refused.status_code == 401, refused.text[:500]
    assert refusal_code(refused) == "token_not_yet_valid"


def test_a_process_reuses_its_keys_and_drops_a_withdrawn_one_within_the_local_ttl():
    """Keys used recently come from the process, not the shared cache; a key the platform has
    withdrawn stops working once the process's copy (never older than the cache TTL) runs out."""
    first, second = PlatformKey.generate(), PlatformKey.generate()
    published = {"keys": [first.jwk]}

    class CountingCache(SimpleCache):
        reads = 0

        def get(self, key):
            CountingCache.reads += 1
            return super().get(key)

    server = make_server(
        "127.0.0.1",
        0,
        lambda environ, start_response: Response(json.dumps(published), content_type="application/json")(
            environ, start_response
        ),
        threaded=True,
    )
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}/jwks"
    shared = CountingCache()
    try:
        ours = PlatformKeys(shared, make_http_session(5.0), ttl=1, refetch_interval=0)
        other_process = PlatformKeys(shared, make_http_session(5.0), ttl=1, refetch_interval=0)
        key = ours.key_for(url, first.kid)
        reads = CountingCache.reads
        assert all(ours.key_for(url, first.kid) is key for _ in range(50))
        assert CountingCache.reads == reads and ours.fetches == 1

        published["keys"] = [second.jwk]  # the platform rotates and withdraws the first key
        assert other_process.key_for(url, second.kid) is not None
        assert ours.key_for(url, first.kid) is key  # within the process's minute (here: the 1 s TTL)
        time.sleep(1.2)
        with pytest.raises(LaunchError) as refused:
            ours.key_for(url, first.kid)
        assert refused.value.code == "unknown_kid"
        assert ours.key_for(url, second.kid) is not None
    finally:
        server.shutdown()
        server.server_close()
