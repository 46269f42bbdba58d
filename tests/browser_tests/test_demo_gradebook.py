"""The demo gradebook in a real Chromium: reached from /demo, read as a table, WCAG 2.1 AA clean.

A newcomer on the demo course page follows "gradebook" and finds the score the tool sent, in a
table whose headers name the learner and the activity, on a desktop and on a phone.
"""

from __future__ import annotations

import pytest

from ..test_demo_services import CANDIDATE, new_line_item, post_score, score
from .axe import assert_accessible

playwright_api = pytest.importorskip(
    "playwright.sync_api", reason="the playwright Python package is not installed (pip install -e '.[test]')"
)
expect = playwright_api.expect

pytestmark = pytest.mark.browser

PHONE = {"width": 375, "height": 740}


@pytest.mark.parametrize("viewport", [None, PHONE], ids=["desktop", "phone"])
def test_the_demo_gradebook_shows_a_sent_score_in_an_accessible_table(make_tool, chromium, viewport):
    server = make_tool()
    item = new_line_item(server, label="Closing the Gap", scoreMaximum=100, resourceId="modules:closing-the-gap")
    accepted = post_score(server, item, score(scoreGiven=80, scoreMaximum=100, timestamp="2026-03-01T09:00:00Z"))
    assert accepted.status_code == 204, accepted.text
    page = chromium.open(third_party_cookies="allowed").new_page()
    if viewport:
        page.set_viewport_size(viewport)

    page.goto(server.base_url + "/demo/")
    assert_accessible(page)
    page.get_by_role("link", name="gradebook").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Gradebook: NPQSL demo cohort")

    table = page.get_by_role("table", name="Grades by learner and activity")
    expect(table.get_by_role("columnheader")).to_have_text(["Learner", "Closing the Gap (out of 100)"])
    expect(table.get_by_role("rowheader")).to_have_text(["Casey Candidate", "Robin Reed", "Sam Shah"])
    casey = table.get_by_role("row").filter(has=page.get_by_role("rowheader", name="Casey Candidate"))
    expect(casey.get_by_role("cell")).to_have_text(["80"])
    robin = table.get_by_role("row").filter(has=page.get_by_role("rowheader", name="Robin Reed"))
    expect(robin.get_by_role("cell")).to_have_text(["– No grade"])
    assert page.locator(f"tr[data-learner='{CANDIDATE}']").count() == 1
    # Nothing is wider than the screen: a wide table scrolls inside its own region.
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert_accessible(page)
