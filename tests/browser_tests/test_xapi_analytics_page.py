"""The administrators' analytics page in a real Chromium, inside the VLE's iframe and on a phone.

An administrator launches the tool from the course page (third-party cookies blocked), follows
"Learning analytics" and changes the period with the keyboard; the charts are drawn, the
figures tables are there, nothing is wider than the frame, and axe-core finds no serious or
critical WCAG 2.1 AA violation.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from xapi.lrs import statement_store

from ..platform_emulator import ADMIN, LaunchSpec
from ..test_xapi_analytics import AUTHORITY, statement
from .axe import assert_accessible
from .conftest import TlsToolServer

playwright_api = pytest.importorskip(
    "playwright.sync_api", reason="the playwright Python package is not installed (pip install -e '.[test]')"
)
expect = playwright_api.expect

pytestmark = pytest.mark.browser

STEP_MS = 15_000
PHONE = {"width": 375, "height": 740}


@pytest.fixture(scope="module")
def analytics_site(tmp_path_factory, certificate, course_platform):
    tool = TlsToolServer(tmp_path_factory.mktemp("analytics-tool"), certificate).start()
    registered = tool.register(course_platform)
    now = datetime.now(UTC)
    statement_store(tool.tool).store(
        [
            *(statement("launched", sub=f"c{n}", timestamp=now - timedelta(days=n % 5)) for n in range(12)),
            *(statement("completed", sub=f"c{n}", result={"completion": True}) for n in range(7)),
            *(
                statement("passed", sub=f"c{n}", result={"success": True, "score": {"scaled": 0.5 + n / 20}})
                for n in range(5)
            ),
        ],
        authority=AUTHORITY,
        platform_id=registered.id,
    )
    yield tool, course_platform
    tool.stop()


def open_analytics(context, platform, tool, viewport=None):
    hint = platform.prepare(LaunchSpec(sub="vle-admin", roles=[ADMIN], name="Val Admin"))
    page = context.new_page()
    if viewport:
        page.set_viewport_size(viewport)
    page.goto(platform.course_url(tool.login_url, platform.login_params(tool.launch_url, hint)))
    frame = page.frame_locator("iframe#tool")
    frame.get_by_role("link", name="Learning analytics").click(timeout=STEP_MS)
    expect(frame.get_by_role("heading", level=1)).to_have_text("Learning analytics", timeout=STEP_MS)
    return page, frame


def fits_width(frame) -> bool:
    handle = frame.owner.element_handle().content_frame()
    return handle.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")


def test_an_administrator_reads_the_charts_in_the_iframe_and_changes_the_period(chromium, analytics_site):
    tool, platform = analytics_site
    page, frame = open_analytics(chromium.open(third_party_cookies="blocked"), platform, tool)

    for name in ("Statements per day, last 30 days", "Completion funnel per activity, last 30 days"):
        expect(frame.get_by_role("img", name=name)).to_be_visible()
    expect(frame.get_by_role("img", name="Scaled scores of all activities, last 30 days")).to_be_visible()
    expect(frame.locator("[data-statements]")).to_have_text("24")
    expect(frame.locator("table[data-funnel] td[data-started]")).to_have_text(["12"])
    expect(frame.locator("table[data-funnel] td[data-completed]")).to_have_text(["7"])
    assert fits_width(frame)
    assert_accessible(frame)

    # Keyboard only: choose the 7-day period and press the button.
    period = frame.get_by_label("Period")
    period.focus()
    period.select_option("7")
    page.keyboard.press("Tab")
    expect(frame.get_by_role("button", name="Show").first).to_be_focused()
    page.keyboard.press("Enter")
    expect(frame.get_by_role("img", name="Statements per day, last 7 days")).to_be_visible(timeout=STEP_MS)
    expect(frame.locator("table[data-per-day] tbody tr")).to_have_count(7)
    assert_accessible(frame)

    # The day table opens from its summary, for those who cannot read the chart.
    frame.get_by_text("Statements per day as a table").click()
    expect(frame.locator("table[data-per-day]")).to_be_visible()


def test_the_analytics_page_fits_a_phone(chromium, analytics_site):
    tool, platform = analytics_site
    _page, frame = open_analytics(chromium.open(third_party_cookies="blocked"), platform, tool, viewport=PHONE)
    expect(frame.get_by_role("img", name="Statements per day, last 30 days")).to_be_visible()
    assert fits_width(frame)
    assert_accessible(frame)
