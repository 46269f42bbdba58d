"""The tool inside a VLE course page, in a real Chromium: iframe launch, new window, postMessage storage.

The platform's course page is https://127.0.0.1:<port>, the tool https://localhost:<port>: two sites,
so the tool is a third-party iframe. See conftest.py for how each profile treats cookies.
"""

from __future__ import annotations

import ssl
import threading
from urllib.parse import urlencode, urlsplit

import pytest
from sqlalchemy import select
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from lti_tool.login_states import PendingLogin, was_used
from lti_tool.models import Launch, User

from ..platform_emulator import LaunchSpec

playwright_api = pytest.importorskip(
    "playwright.sync_api", reason="the playwright Python package is not installed (pip install -e '.[test]')"
)
expect = playwright_api.expect

pytestmark = pytest.mark.browser

SCREENSHOT = "/tmp/npqsl-landing-in-iframe.png"
BLOCKED_SCREENSHOT = "/tmp/npqsl-cookies-blocked-in-iframe.png"
STEP_MS = 15_000


def open_course_page(context, platform, tool, spec: LaunchSpec | None = None, storage_host=None, **extra):
    """A person opens the course page; its iframe starts the tool's login. Returns (page, hint)."""
    hint = platform.prepare(spec)
    params = platform.login_params(tool.launch_url, hint, **extra)
    page = context.new_page()
    page.goto(platform.course_url(tool.login_url, params, storage_host=storage_host))
    return page, hint


def tool_frame(page):
    return page.frame_locator("iframe#tool")


def expect_landing(scope, title: str = "Closing the Gap", name: str = "Alex Candidate") -> None:
    expect(scope.get_by_role("heading", level=1)).to_have_text(title, timeout=STEP_MS)
    expect(scope.get_by_text(f"Welcome, {name}.")).to_be_visible()


def cookies_of(context, origin: str) -> list[dict]:
    host = urlsplit(origin).hostname
    return [c for c in context.cookies() if c["domain"].lstrip(".") == host]


def storage_log(page, frame_name: str | None = None) -> list[dict]:
    scope = page if frame_name is None else page.frame(name=frame_name)
    return scope.evaluate("window.ltiStorageLog")


def login_state(tool, platform, hint: str) -> PendingLogin:
    """The login the platform was asked to authorize for this hint, as the tool reads its state."""
    state = next(r["state"] for r in platform.auth_requests if r["login_hint"] == hint)
    return tool.tool.login_states.read(state)


# -- the harness itself -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cookie_jar_site(certificate):
    """A third party that sets one unpartitioned SameSite=None cookie and reports what it gets back."""

    def app(environ, start_response):
        request = Request(environ)
        response = Response(f"<p id=seen>{sorted(request.cookies)}</p>", content_type="text/html")
        response.set_cookie("unpartitioned", "1", secure=True, samesite="None", httponly=True)
        return response(environ, start_response)

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificate.cert, certificate.key)
    server = make_server("127.0.0.1", 0, app, threaded=True, ssl_context=context)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"https://localhost:{server.server_port}/"
    server.shutdown()


@pytest.mark.parametrize(("setting", "kept"), [("allowed", True), ("blocked", False)])
def test_chromium_profile_keeps_third_party_cookies_only_when_allowed(
    chromium, course_platform, cookie_jar_site, setting, kept
):
    context = chromium.open(third_party_cookies=setting)
    page = context.new_page()
    course = course_platform.course_url(cookie_jar_site.rstrip("/"), {})
    page.goto(course)
    expect(tool_frame(page).locator("#seen")).to_have_text("[]")
    page.reload()
    expected = "['unpartitioned']" if kept else "[]"
    expect(tool_frame(page).locator("#seen")).to_have_text(expected)


# -- (a) the launch inside the course page ------------------------------------------------------
@pytest.mark.parametrize("third_party_cookies", ["allowed", "blocked"])
def test_tool_in_a_cross_site_iframe_lands_on_the_activity(
    chromium, course_platform, https_tool, third_party_cookies
):
    context = chromium.open(third_party_cookies=third_party_cookies)
    page, hint = open_course_page(
        context, course_platform, https_tool, LaunchSpec(sub="iframe-" + third_party_cookies)
    )
    expect_landing(tool_frame(page))
    # The tool's cookies live in the course page's partition (CHIPS), so blocking third-party
    # cookies does not break the launch.
    tool_cookies = cookies_of(context, https_tool.origin)
    assert tool_cookies, "the launch kept no cookie at all"
    assert all(c["secure"] and c["sameSite"] == "None" and c["httpOnly"] for c in tool_cookies)
    assert all(c.get("partitionKey") for c in tool_cookies), tool_cookies
    assert not [c for c in tool_cookies if c["name"].startswith("lti_state_")], "state cookie outlived its launch"
    assert login_state(https_tool, course_platform, hint).storage_target is None
    if third_party_cookies == "blocked":
        page.screenshot(path=SCREENSHOT)


# -- (b) postMessage storage --------------------------------------------------------------------
@pytest.mark.parametrize("storage_target", ["_parent", "post_message_forwarding"])
def test_postmessage_storage_carries_the_launch_when_the_course_page_refuses_the_tools_cookies(
    chromium, course_platform, https_tool, storage_target
):
    context = chromium.open(refuse_cookies_of=https_tool.origin, embedded_in=course_platform.origin)
    spec = LaunchSpec(sub="storage-" + storage_target)
    page, hint = open_course_page(context, course_platform, https_tool, spec, lti_storage_target=storage_target)
    expect_landing(tool_frame(page))

    login = login_state(https_tool, course_platform, hint)
    assert login.storage_target == storage_target and was_used(https_tool.db, login.id)
    key = f"state_{login.id}"
    frame_name = None if storage_target == "_parent" else storage_target
    assert storage_log(page, frame_name) == [
        {"subject": "lti.put_data", "key": key},
        {"subject": "lti.get_data", "key": key},
    ]
    assert cookies_of(context, https_tool.origin) == [], "the tool's cookies were not refused after all"
    with https_tool.db.sessions() as session:
        user = session.scalar(select(User).where(User.sub == spec.sub))
        assert session.scalar(select(Launch).where(Launch.user_id == user.id)) is not None


def test_tool_never_posts_its_secret_to_a_storage_frame_of_another_origin(chromium, course_platform, https_tool):
    context = chromium.open(refuse_cookies_of=https_tool.origin, embedded_in=course_platform.origin)
    page, hint = open_course_page(
        context,
        course_platform,
        https_tool,
        storage_host="localhost",
        lti_storage_target="post_message_forwarding",
    )
    frame = tool_frame(page)
    expect(frame.get_by_role("status")).to_contain_text("did not answer", timeout=STEP_MS)
    fallback = frame.get_by_role("link", name="Open in a new window")
    expect(fallback).to_be_visible()
    assert fallback.get_attribute("target") == "_blank"
    assert storage_log(page, "post_message_forwarding") == []
    assert course_platform.auth_requests and all(r["login_hint"] != hint for r in course_platform.auth_requests)


# -- (c) the new window ---------------------------------------------------------------------------
def test_open_in_a_new_window_completes_the_launch_in_a_popup(chromium, course_platform, https_tool):
    context = chromium.open(refuse_cookies_of=https_tool.origin, embedded_in=course_platform.origin)
    page, hint = open_course_page(context, course_platform, https_tool, LaunchSpec(sub="popup-https"))
    frame = tool_frame(page)
    expect(frame.get_by_role("heading", level=1)).to_have_text("Open this activity in a new window")
    link = frame.get_by_role("link", name="Open in a new window")
    page.screenshot(path=BLOCKED_SCREENSHOT)
    # Keyboard users see where they are (WCAG 2.4.7) and can open the window with Enter.
    link.focus()
    outline = link.evaluate("el => getComputedStyle(el).outlineStyle + ' ' + getComputedStyle(el).outlineWidth")
    assert outline == "solid 3px", outline
    with context.expect_page(timeout=STEP_MS) as popup_info:
        link.press("Enter")
    popup = popup_info.value
    expect_landing(popup)
    assert popup.url.startswith(https_tool.origin + "/lti/launch")
    # The iframe keeps its page: the course page stays as it was.
    expect(frame.get_by_role("heading", level=1)).to_have_text("Open this activity in a new window")


def test_new_window_completes_the_launch_over_plain_http_despite_samesite_lax(
    chromium, http_course_platform, http_tool
):
    # Development over http: cookies are SameSite=Lax, refused in the cross-site iframe and left
    # behind by the platform's cross-site form post; the tool posts the launch again itself.
    context = chromium.open(third_party_cookies="blocked")
    page, hint = open_course_page(context, http_course_platform, http_tool, LaunchSpec(sub="popup-http"))
    frame = tool_frame(page)
    with context.expect_page(timeout=STEP_MS) as popup_info:
        frame.get_by_role("link", name="Open in a new window").click()
    popup = popup_info.value
    expect_landing(popup)
    assert was_used(http_tool.db, login_state(http_tool, http_course_platform, hint).id)


def test_window_that_refuses_the_tools_cookies_everywhere_asks_to_allow_them(
    chromium, course_platform, https_tool
):
    context = chromium.open(refuse_cookies_of=https_tool.origin)
    page = context.new_page()
    params = course_platform.login_params(https_tool.launch_url, course_platform.prepare())
    page.goto(https_tool.login_url + "?" + urlencode(params))
    expect(page.get_by_role("heading", level=1)).to_have_text("Allow cookies to open this activity")
    expect(page.get_by_text(urlsplit(https_tool.origin).netloc)).to_be_visible()
    expect(page.get_by_role("link", name="Open in a new window")).to_have_count(0)
    expect(page.get_by_role("link", name="Try opening the activity again")).to_be_visible()
