"""The programme dashboard and the coach view in a real Chromium, inside the VLE's iframe and on a phone.

The course page is on the platform's origin and the tool on another, third-party cookies
blocked. The platform shares its roster over NRPS. A candidate chooses electives with the
keyboard, a coach leaves feedback, the candidate reads it; axe-core checks every page state
(WCAG 2.1 AA: no serious or critical violations), at desktop width and at 375 px.
"""

from __future__ import annotations

import pytest

from ..nrps_platform import NrpsPlatform
from ..platform_emulator import INSTRUCTOR, LEARNER, LaunchSpec
from .axe import assert_accessible
from .conftest import CoursePlatform, TlsToolServer

playwright_api = pytest.importorskip(
    "playwright.sync_api", reason="the playwright Python package is not installed (pip install -e '.[test]')"
)
expect = playwright_api.expect

pytestmark = pytest.mark.browser

STEP_MS = 15_000
PHONE = {"width": 375, "height": 740}
DASHBOARD = {"npqsl_plugin": "programme", "npqsl_activity": "dashboard"}
FEEDBACK = "Your gap analysis is sharp. Next, agree the Year 9 actions with your maths lead."


class NrpsCoursePlatform(CoursePlatform, NrpsPlatform):
    """The course page of the browser tests, with the course roster served over NRPS."""

    __test__ = False


@pytest.fixture(autouse=True)
def platform_trusts_the_tool(monkeypatch, certificate):
    """The platform checks the tool's token requests against its JWKS, fetched over HTTPS: it
    trusts the test certificate as a real platform trusts the tool's CA."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certificate.cert))


@pytest.fixture(scope="module")
def programme_site(tmp_path_factory, certificate):
    platform = NrpsCoursePlatform(certificate.server_context()).start()
    platform.add_member("coach-b", [INSTRUCTOR], name="Chris Coach")
    platform.add_member("cand-b", [LEARNER], name="Alex Candidate")
    platform.add_member("cand-c", [LEARNER], name="Bea Candidate")
    tool = TlsToolServer(tmp_path_factory.mktemp("programme-tool"), certificate).start()
    tool.register(platform)
    yield tool, platform
    tool.stop()
    platform.stop()


def open_dashboard(context, platform, tool, sub, roles, name, viewport=None):
    """The course page with the programme dashboard activity in its iframe."""
    spec = LaunchSpec(
        sub=sub,
        roles=roles,
        name=name,
        resource_link={"id": "rl-programme", "title": "Programme dashboard"},
        custom=DASHBOARD,
    )
    hint = platform.prepare(spec)
    page = context.new_page()
    if viewport:
        page.set_viewport_size(viewport)
    page.goto(platform.course_url(tool.login_url, platform.login_params(tool.launch_url, hint)))
    return page, page.frame_locator("iframe#tool")


def fits_width(frame) -> bool:
    """Nothing in the frame's page is wider than the frame (no sideways scrolling)."""
    handle = frame.owner.element_handle().content_frame()
    return handle.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")


def test_a_candidate_chooses_electives_by_keyboard_and_reads_the_coachs_feedback(chromium, programme_site):
    tool, platform = programme_site
    context = chromium.open(third_party_cookies="blocked")
    page, frame = open_dashboard(context, platform, tool, "cand-b", [LEARNER], "Alex Candidate")
    expect(frame.get_by_role("heading", level=1)).to_have_text("Your programme dashboard", timeout=STEP_MS)
    expect(frame.locator("[data-warning=electives_not_chosen]")).to_be_visible()
    expect(frame.get_by_role("link", name="Your programme dashboard")).to_have_attribute("aria-current", "page")
    assert_accessible(frame)

    # Keyboard only: tab to the first elective, tick two, submit with Enter.
    first = frame.get_by_role("checkbox", name="Improving the Quality of Teaching")
    first.focus()
    page.keyboard.press("Space")
    page.keyboard.press("Tab")
    expect(frame.get_by_role("checkbox", name="Leading Change for Improvement")).to_be_focused()
    page.keyboard.press("Space")
    page.keyboard.press("Tab")
    expect(frame.get_by_role("button", name="Save my electives")).to_be_focused()
    page.keyboard.press("Enter")
    expect(frame.get_by_role("status")).to_have_text("Your electives are saved.", timeout=STEP_MS)
    expect(frame.locator("[data-plan-warnings]")).to_have_count(0)
    assert_accessible(frame)

    # Unticking both and saving explains what to do and keeps the choice.
    frame.get_by_role("checkbox", name="Improving the Quality of Teaching").uncheck()
    frame.get_by_role("checkbox", name="Leading Change for Improvement").uncheck()
    frame.get_by_role("button", name="Save my electives").click()
    expect(frame.get_by_role("alert")).to_contain_text("Choose at least one elective.", timeout=STEP_MS)
    assert_accessible(frame)
    frame.get_by_role("alert").get_by_role("link").click()
    expect(frame.get_by_role("checkbox", name="Improving the Quality of Teaching")).to_be_checked()

    # The coach, in their own browser, opens the candidate and leaves feedback.
    coach_context = chromium.open(third_party_cookies="blocked")
    coach_page, coach_frame = open_dashboard(coach_context, platform, tool, "coach-b", [INSTRUCTOR], "Chris Coach")
    expect(coach_frame.get_by_role("heading", level=1)).to_have_text("Your candidates", timeout=STEP_MS)
    expect(coach_frame.get_by_role("link", name="Alex Candidate")).to_be_visible()
    expect(coach_frame.get_by_role("link", name="Bea Candidate")).to_be_visible()
    assert_accessible(coach_frame)
    coach_frame.get_by_role("link", name="Alex Candidate").click()
    expect(coach_frame.get_by_role("heading", level=1)).to_have_text("Alex Candidate", timeout=STEP_MS)
    assert_accessible(coach_frame)
    coach_frame.get_by_label("Feedback for Alex Candidate").fill(FEEDBACK)
    coach_frame.get_by_role("button", name="Save feedback").press("Enter")
    expect(coach_frame.get_by_role("status")).to_contain_text("The candidate sees it", timeout=STEP_MS)
    assert_accessible(coach_frame)

    # The candidate reloads their dashboard and reads it.
    page.reload()
    expect(frame.get_by_role("heading", name="Feedback from your coach")).to_be_visible(timeout=STEP_MS)
    expect(frame.locator("[data-feedback-list]")).to_contain_text(FEEDBACK)


@pytest.mark.parametrize(
    ("sub", "roles", "name", "heading"),
    [
        ("cand-c", [LEARNER], "Bea Candidate", "Your programme dashboard"),
        ("coach-b", [INSTRUCTOR], "Chris Coach", "Your candidates"),
    ],
    ids=["candidate", "coach"],
)
def test_the_pages_fit_a_phone_and_pass_axe_there(chromium, programme_site, sub, roles, name, heading):
    tool, platform = programme_site
    context = chromium.open(third_party_cookies="blocked")
    page, frame = open_dashboard(context, platform, tool, sub, roles, name, viewport=PHONE)
    expect(frame.get_by_role("heading", level=1)).to_have_text(heading, timeout=STEP_MS)
    assert fits_width(frame)
    assert_accessible(frame)
    if sub == "coach-b":
        frame.get_by_role("link", name="Bea Candidate").click()
        expect(frame.get_by_role("heading", level=1)).to_have_text("Bea Candidate", timeout=STEP_MS)
        assert fits_width(frame)
        assert_accessible(frame)
    page.screenshot(path=f"/tmp/npqsl-programme-{sub}-375.png", full_page=True)
