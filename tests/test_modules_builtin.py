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


def test_the_builtin_modules_meet_the_programme_s_content_requirements():
    """Issue 6's bar for each module: 5+ units of 400-900 words, each with a reflection and a
    workplace task, 10+ knowledge-check questions, mapped to areas and behaviours."""
    from plugins.modules.packs import KnowledgeCheck, Reflection, WorkplaceTask, load_packs

    packs = load_packs()
    assert not packs.failures, [f.reason for f in packs.failures]
    statuses = {}
    for key in BUILTIN:
        pack = packs.get(key)
        assert pack is not None, key
        statuses[key] = pack.status
        assert len(pack.units) >= 5, key
        assert pack.content_areas and pack.behaviours, key
        questions = 0
        for unit in pack.units:
            words = len(unit.content.split())
            assert 400 <= words <= 900, (key, unit.key, words)
            kinds = {type(activity) for activity in unit.activities}
            assert {Reflection, WorkplaceTask} <= kinds, (key, unit.key)
            assert unit.outcomes and unit.reading, (key, unit.key)
            assert set(unit.content_areas) <= set(pack.content_areas), (key, unit.key)
            questions += sum(len(a.questions) for a in unit.activities if isinstance(a, KnowledgeCheck))
        assert questions >= 10, (key, questions)
    assert sorted(statuses.values()) == ["elective", "elective", "essential", "essential"]
