"""A candidate works through a module unit in a real Chromium, inside the VLE's iframe.

The course page is on the platform's origin and the tool on another, with third-party cookies
blocked, as in a school's locked-down browser: every request finds its launch by reference.
axe-core checks each page for WCAG 2.1 AA (no serious or critical violations).
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from lti_tool.models import PluginRecord

from ..modules_harness import GOOD, install_packs, uninstall_packs
from ..platform_emulator import LaunchSpec
from .axe import assert_accessible
from .conftest import CoursePlatform, TlsToolServer

playwright_api = pytest.importorskip(
    "playwright.sync_api", reason="the playwright Python package is not installed (pip install -e '.[test]')"
)
expect = playwright_api.expect

pytestmark = pytest.mark.browser

STEP_MS = 15_000
REFLECTION = "Because our Year 9 disadvantaged pupils are falling behind in maths."


@pytest.fixture(scope="module")
def module_site(tmp_path_factory, certificate):
    site = tmp_path_factory.mktemp("packs")
    install_packs(site, GOOD)
    platform = CoursePlatform(certificate.server_context()).start()
    tool = TlsToolServer(tmp_path_factory.mktemp("module-tool"), certificate).start()
    tool.register(platform)
    yield tool, platform
    tool.stop()
    platform.stop()
    uninstall_packs(site)


def open_module(context, platform, tool, sub="browser-cand", module="test-basics"):
    spec = LaunchSpec(
        sub=sub,
        resource_link={"id": f"rl-{module}", "title": module},
        custom={"npqsl_plugin": "modules", "npqsl_activity": module},
    )
    hint = platform.prepare(spec)
    page = context.new_page()
    page.goto(platform.course_url(tool.login_url, platform.login_params(tool.launch_url, hint)))
    return page, page.frame_locator("iframe#tool")


def saved_text(tool, sub_like: str = "reflection:first-steps:why") -> str | None:
    with tool.db.sessions() as session:
        row = session.scalar(select(PluginRecord).where(PluginRecord.name == sub_like))
        return row.data["text"] if row else None


def test_a_candidate_types_a_reflection_that_autosaves_and_survives_a_reload(chromium, module_site):
    tool, platform = module_site
    context = chromium.open(third_party_cookies="blocked")
    page, frame = open_module(context, platform, tool)
    expect(frame.get_by_role("heading", level=1)).to_have_text("Testing the Basics", timeout=STEP_MS)
    assert_accessible(frame)

    frame.get_by_role("link", name="First steps").click()
    expect(frame.get_by_role("heading", level=1)).to_have_text("First steps")
    assert_accessible(frame)

    box = frame.get_by_label("Why are you testing this?")
    box.click()
    box.press_sequentially(REFLECTION, delay=5)
    status = frame.locator("#reflection-why [data-status]")
    expect(status).to_have_attribute("aria-live", "polite")
    expect(status).to_contain_text("Saved at", timeout=STEP_MS)
    assert saved_text(tool) == REFLECTION

    # Reload the tool's frame: the text comes back from the tool (this third-party frame may not
    # even use localStorage).
    tool_frame = page.frame(name="tool")
    assert (
        tool_frame.evaluate(
            "() => { try { return localStorage.length >= 0 && 'usable'; } catch (e) { return 'refused'; } }"
        )
        == "refused"
    )
    tool_frame.evaluate("() => location.reload()")
    expect(frame.get_by_label("Why are you testing this?")).to_have_value(REFLECTION, timeout=STEP_MS)

    # Reload the whole course page: a new launch, the same text.
    page.reload()
    expect(frame.get_by_role("heading", level=1)).to_have_text("Testing the Basics", timeout=STEP_MS)
    expect(frame.get_by_text("Reflections answered: 1 of 2")).to_be_visible()
    frame.get_by_role("link", name="First steps").click()
    expect(frame.get_by_label("Why are you testing this?")).to_have_value(REFLECTION)


def test_a_knowledge_check_shows_feedback_and_the_next_unit_link_works(chromium, module_site):
    tool, platform = module_site
    context = chromium.open(third_party_cookies="blocked")
    page, frame = open_module(context, platform, tool, sub="checker")
    frame.get_by_role("link", name="First steps").click()
    check = frame.locator("#check-check")
    check.get_by_label("The first").check()
    check.get_by_label("Alpha").check()
    check.get_by_role("button", name="Check my answers").click()
    expect(frame.get_by_text("You got 1 of 2 right (50%)")).to_be_visible(timeout=STEP_MS)
    expect(frame.get_by_text("Gamma is right.")).to_be_visible()
    assert_accessible(frame)
    frame.get_by_role("link", name="Next: Second steps").click()
    expect(frame.get_by_role("heading", level=1)).to_have_text("Second steps")


def test_a_unit_fits_a_phone_screen(chromium, module_site):
    tool, platform = module_site
    context = chromium.open(third_party_cookies="blocked")
    page, frame = open_module(context, platform, tool, sub="phone")
    page.set_viewport_size({"width": 360, "height": 740})
    frame.get_by_role("link", name="First steps").click()
    expect(frame.get_by_role("heading", level=1)).to_have_text("First steps")
    tool_frame = page.frame(name="tool")
    assert tool_frame.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth + 1")
    assert_accessible(frame)


@pytest.mark.parametrize("cookies", ["blocked", "allowed"])
def test_an_ended_session_keeps_the_text_on_screen_and_says_to_relaunch(chromium, module_site, cookies):
    from sqlalchemy import update

    from lti_tool.models import Launch, utcnow

    tool, platform = module_site
    context = chromium.open(third_party_cookies=cookies)
    page, frame = open_module(context, platform, tool, sub=f"late-{cookies}")
    frame.get_by_role("link", name="First steps").click()
    expect(frame.get_by_role("heading", level=1)).to_have_text("First steps")
    with tool.db.transaction() as session:
        session.execute(update(Launch).values(expires_at=utcnow()))
    box = frame.get_by_label("Why are you testing this?")
    box.click()
    box.press_sequentially("Typed after the session ended", delay=5)
    status = frame.locator("#reflection-why [data-status]")
    expect(status).to_contain_text("reopen the activity", timeout=STEP_MS)
    expect(box).to_have_value("Typed after the session ended")
    if cookies == "blocked":
        return  # no storage for a third-party frame here: the text stays on screen to copy
    # Where the frame may keep it, a new launch finds the unsaved text and saves it.
    page.reload()
    frame.get_by_role("link", name="First steps").click()
    expect(frame.get_by_label("Why are you testing this?")).to_have_value("Typed after the session ended")
    expect(frame.locator("#reflection-why [data-status]")).to_contain_text("Saved at", timeout=STEP_MS)
