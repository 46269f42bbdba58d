"""The four built-in modules: every unit renders, and /demo places and launches them."""

from __future__ import annotations

import lxml.html

from .browser import Browser, auto_post_form
from .modules_harness import Learner
from .test_demo import follow_demo

BUILTIN = (
    "succeeding-in-senior-leadership",
    "closing-the-gap",
    "improving-the-quality-of-teaching",
    "leading-change-for-improvement",
)


def test_every_unit_of_the_builtin_modules_renders_for_a_candidate(tool, platform):
    for module in BUILTIN:
        alex = Learner(tool, platform, module=module, sub="builtin-reader")
        assert alex.page.status_code == 200, alex.page.text[:500]
        units = lxml.html.fromstring(alex.page.text).xpath("//ol[@class='unit-list']//a/@href")
        assert len(units) >= 5
        for href in units:
            page = alex.browser.get(tool.base_url + href)
            assert page.status_code == 200, (href, page.text[:500])
            doc = lxml.html.fromstring(page.text)
            assert len(doc.xpath("//h1")) == 1 and doc.xpath("//div[@class='unit-content']//h2")
            assert doc.xpath("//form[@data-autosave]") and doc.xpath("//section[contains(@class, 'task')]")


def test_demo_places_a_module_and_a_candidate_launches_it(make_tool):
    server = make_tool()
    browser = Browser()
    browser.get(server.base_url + "/demo/")
    picker = follow_demo(browser, server, role="administrator", action="deeplink")
    assert "Closing the Gap" in picker.text and "graded out of 100" in picker.text
    form = auto_post_form(picker.text, server.base_url)
    returned = browser.post(
        server.base_url + "/lti/deep-link",
        data={"launch": form.fields["launch"], "item": "modules:closing-the-gap"},
    )
    back = auto_post_form(returned.text, server.base_url)
    assert "1 activity added" in browser.post(back.action, data=back.fields).text
    launched = follow_demo(browser, server, role="candidate", action="launch", item="0")
    doc = lxml.html.fromstring(launched.text)
    assert doc.xpath("//h1/text()") == ["Closing the Gap"] and "0% complete" in launched.text
