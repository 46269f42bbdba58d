"""Real-browser fixtures: Debian's Chromium driven by Playwright, a course page on the platform.

Both servers speak HTTPS with a throw-away certificate, as they do in production: the platform on
https://127.0.0.1:<port> and the tool on https://localhost:<port>, two different sites, so the tool
sits in a third-party iframe exactly as it does inside a VLE course page.

Each test gets a fresh Chromium profile whose Preferences say how it treats cookies:

* ``profile.cookie_controls_mode`` 0 allows third-party cookies, 1 blocks them (Settings > Privacy
  > Third-party cookies). Partitioned (CHIPS) cookies are still kept when third-party cookies are
  blocked, which is why the tool marks its cookies ``Partitioned``.
* a cookie content-setting exception ``<tool origin>,<platform origin>`` = block refuses every
  cookie of the tool, partitioned or not, while it is embedded in the platform, and keeps them when
  the tool is the top-level page: the browser a tool meets when a person (or Safari) refuses it
  cookies in the course page. That is what forces the new-window and postMessage-storage paths.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from ..platform_emulator import TestPlatform
from ..tool_server import ToolServer

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LAUNCH_TIMEOUT_MS = 30_000
STEP_TIMEOUT_MS = 15_000

try:
    from playwright.sync_api import BrowserContext, Playwright, sync_playwright
except ImportError:  # pragma: no cover - the skip below says what to install
    sync_playwright = None


def pytest_collection_modifyitems(config, items):
    """Skip only for a missing component, and name it; in CI a missing browser is a failure."""
    here = Path(__file__).parent
    reason = None
    if sync_playwright is None:
        reason = "the playwright Python package is not installed (pip install -e '.[test]')"
    elif not CHROMIUM.exists():
        reason = f"Debian's chromium is not installed at {CHROMIUM} (run `make browser-deps`)"
    if reason and os.environ.get("CI"):
        raise pytest.UsageError(f"browser tests cannot run in CI: {reason}")
    if reason:
        for item in items:
            if here in Path(item.fspath).parents:
                item.add_marker(pytest.mark.skip(reason=reason))


# -- TLS --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Certificate:
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, self.key)
        return context


@pytest.fixture(scope="session")
def certificate(tmp_path_factory) -> Certificate:
    """A self-signed certificate for localhost and 127.0.0.1 (Chromium is told to accept it)."""
    folder = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    paths = Certificate(folder / "cert.pem", folder / "key.pem")
    paths.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


# -- the platform, with a course page -----------------------------------------------------------
# The platform side of the LTI Client Side postMessage Storage spec: answers lti.put_data and
# lti.get_data from the tool's origin only, keeps values per origin, and logs what it saw.
STORAGE_RESPONDER = """
(function () {
  "use strict";
  var toolOrigin = %(tool_origin)s;
  var store = {};
  window.ltiStorageLog = [];
  window.addEventListener("message", function (event) {
    var message = event.data;
    if (!message || typeof message !== "object" || typeof message.subject !== "string") { return; }
    if (event.origin !== toolOrigin) {
      window.ltiStorageLog.push({ refused: event.origin, subject: message.subject });
      return;
    }
    var reply = { message_id: message.message_id, key: message.key };
    var slot = event.origin + " " + message.key;
    if (message.subject === "lti.put_data") {
      store[slot] = message.value;
      reply.subject = "lti.put_data.response";
      reply.value = message.value;
    } else if (message.subject === "lti.get_data") {
      reply.subject = "lti.get_data.response";
      if (Object.prototype.hasOwnProperty.call(store, slot)) { reply.value = store[slot]; }
      else { reply.error = { code: "bad_request", message: "no value for this key" }; }
    } else {
      return;
    }
    window.ltiStorageLog.push({ subject: message.subject, key: message.key });
    event.source.postMessage(reply, event.origin);
  });
})();
"""


def _script_literal(value: str) -> str:
    return json.dumps(value).replace("<", "\\u003c")


class CoursePlatform(TestPlatform):
    """The test platform (over HTTPS when given a TLS context) plus a course page embedding the tool.

    ``/course`` shows a course page with the tool's login in an iframe named ``tool``. When the
    launch offers ``lti_storage_target``, the page (``_parent``) or a hidden frame of that name
    on the platform's origin answers the tool's storage messages.
    """

    __test__ = False

    def __init__(self, tls: ssl.SSLContext | None = None):
        super().__init__()
        if tls is None:
            return
        # Same platform, served over TLS instead of plain http.
        self._server.server_close()
        self._server = make_server("127.0.0.1", 0, self._wsgi, threaded=True, ssl_context=tls)
        self.base_url = f"https://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def origin(self) -> str:
        return self.base_url

    def course_url(self, login_url: str, params: dict[str, str], storage_host: str | None = None) -> str:
        """The course page embedding the tool's login with ``params``.

        ``storage_host`` serves the named storage frame from another host name, hence another
        origin than the platform's.
        """
        query = {"launch": login_url + "?" + urlencode(params)}
        if storage_host:
            query["storage_host"] = storage_host
        return self.base_url + "/course?" + urlencode(query)

    def _wsgi(self, environ, start_response):
        request = Request(environ)
        if request.path == "/course":
            return self._course(request)(environ, start_response)
        if request.path == "/course/storage":
            return self._storage_frame(request)(environ, start_response)
        return super()._wsgi(environ, start_response)

    @staticmethod
    def _tool_origin(launch: str) -> str:
        parts = urlsplit(launch)
        return f"{parts.scheme}://{parts.netloc}"

    def _course(self, request: Request) -> Response:
        launch = request.args["launch"]
        target = parse_qs(urlsplit(launch).query).get("lti_storage_target", [None])[0]
        tool_origin = self._tool_origin(launch)
        responder = ""
        forwarding = ""
        if target == "_parent":
            responder = (
                "<script>" + STORAGE_RESPONDER % {"tool_origin": _script_literal(tool_origin)} + "</script>"
            )
        elif target:
            base = self.base_url.replace("127.0.0.1", request.args.get("storage_host", "127.0.0.1"))
            src = base + "/course/storage?" + urlencode({"tool_origin": tool_origin})
            forwarding = f'<iframe name="{escape(target)}" title="Storage" src="{escape(src)}" hidden></iframe>'
        html = (
            '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>NPQSL Cohort 2026</title>'
            "<style>body{margin:0;font-family:sans-serif}header{background:#f98012;color:#fff;padding:8px 16px}"
            "iframe#tool{border:1px solid #ccc;width:100%;height:560px}</style></head><body>"
            "<header><strong>Moodle-ish VLE</strong> · NPQSL Cohort 2026</header><main style='padding:8px 16px'>"
            "<h1 style='font-size:1.2rem'>Closing the Gap</h1>"
            f'<iframe id="tool" name="tool" title="NPQSL activity" src="{escape(launch)}"></iframe>'
            f"{forwarding}</main>{responder}</body></html>"
        )
        return Response(html, content_type="text/html; charset=utf-8")

    def _storage_frame(self, request: Request) -> Response:
        script = STORAGE_RESPONDER % {"tool_origin": _script_literal(request.args["tool_origin"])}
        html = f"<!doctype html><html><head><title>Storage</title></head><body><script>{script}</script></body></html>"
        return Response(html, content_type="text/html; charset=utf-8")


class TlsToolServer(ToolServer):
    """The tool served over HTTPS and reached as https://localhost:<port>, a site of its own."""

    __test__ = False

    def __init__(self, instance: Path, certificate: Certificate, **overrides: Any):
        super().__init__(instance, **overrides)
        # The platform's JWKS is on HTTPS too: trust the test certificate, as a deployment trusts
        # its CA (and ignore REQUESTS_CA_BUNDLE & co., which would override the session's choice).
        self.tool.http.trust_env = False
        self.tool.http.verify = str(certificate.cert)
        tls = certificate.server_context()
        self._server.server_close()
        self._server = make_server("127.0.0.1", 0, self.app, threaded=True, ssl_context=tls)
        self.base_url = f"https://localhost:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def origin(self) -> str:
        return self.base_url


class LocalhostToolServer(ToolServer):
    """The tool over plain http (development), reached as http://localhost:<port>, a site of its own."""

    __test__ = False

    def __init__(self, instance: Path, **overrides: Any):
        super().__init__(instance, **overrides)
        self.base_url = self.base_url.replace("://127.0.0.1:", "://localhost:")


@pytest.fixture(scope="session")
def course_platform(certificate) -> Iterator[CoursePlatform]:
    server = CoursePlatform(certificate.server_context()).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def https_tool(tmp_path_factory, certificate, course_platform) -> Iterator[TlsToolServer]:
    server = TlsToolServer(tmp_path_factory.mktemp("https-tool"), certificate).start()
    server.register(course_platform)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def http_course_platform() -> Iterator[CoursePlatform]:
    server = CoursePlatform().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def http_tool(tmp_path_factory, http_course_platform) -> Iterator[LocalhostToolServer]:
    server = LocalhostToolServer(tmp_path_factory.mktemp("http-tool")).start()
    server.register(http_course_platform)
    yield server
    server.stop()


# -- Chromium ---------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def playwright_driver() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@dataclass
class Chromium:
    """Opens fresh Chromium profiles with a given cookie policy; closes them after the test."""

    driver: Playwright
    root: Path
    opened: list[BrowserContext]

    def open(
        self,
        *,
        third_party_cookies: str = "blocked",
        refuse_cookies_of: str | None = None,
        embedded_in: str | None = None,
    ) -> BrowserContext:
        if third_party_cookies not in ("allowed", "blocked"):
            raise ValueError(third_party_cookies)
        profile: dict[str, Any] = {"cookie_controls_mode": 1 if third_party_cookies == "blocked" else 0}
        if refuse_cookies_of:
            pattern = f"{refuse_cookies_of},{embedded_in or '*'}"
            profile["content_settings"] = {"exceptions": {"cookies": {pattern: {"setting": 2}}}}
        user_data = self.root / f"profile-{len(self.opened)}"
        (user_data / "Default").mkdir(parents=True)
        (user_data / "Default" / "Preferences").write_text(json.dumps({"profile": profile}))
        context = self.driver.chromium.launch_persistent_context(
            str(user_data),
            executable_path=str(CHROMIUM),
            args=CHROMIUM_ARGS,
            headless=True,
            ignore_https_errors=True,
            viewport={"width": 1000, "height": 720},
            timeout=LAUNCH_TIMEOUT_MS,
        )
        context.set_default_timeout(STEP_TIMEOUT_MS)
        context.set_default_navigation_timeout(STEP_TIMEOUT_MS)
        self.opened.append(context)
        return context


@pytest.fixture
def chromium(playwright_driver, tmp_path) -> Iterator[Chromium]:
    opener = Chromium(playwright_driver, tmp_path, [])
    yield opener
    for context in opener.opened:
        context.close()
