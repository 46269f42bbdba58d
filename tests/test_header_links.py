"""The header links plugins offer (Plugin.header_link), rendered by the core on every launch page."""

from __future__ import annotations

from flask import g, render_template

from lti_tool.context import LaunchContext
from lti_tool.views.helpers import header_links
from plugins.contract import HeaderLink

from .platform_emulator import LaunchSpec

LEARNER = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"


class OldStylePlugin:
    """A plugin object written before the hook existed: no header_link at all."""

    key = "old-style"
    title = "Old style"
    kind = "example"


def candidate_launch() -> LaunchContext:
    return LaunchContext(
        launch_id="l-1",
        platform_pk=1,
        issuer="https://vle.example",
        client_id="c",
        deployment_id="d",
        user_pk=1,
        sub="s",
        role="candidate",
        lti_roles=(LEARNER,),
        message_type="LtiResourceLinkRequest",
        name="Ada",
        course_pk=7,
        context_id="course-7",
        course_title="Course",
        resource_link_pk=1,
        resource_link_id="rl",
        resource_title="Unit",
        custom={},
    )


def test_each_plugin_link_is_rendered_and_a_plugin_without_the_hook_is_skipped(tool):
    registry = tool.tool.plugins
    with tool.app.test_request_context("/lti/activity"):
        g.launch_context = candidate_launch()
        registry.plugins["old-style"] = OldStylePlugin()
        try:
            links = header_links()
            html = render_template("landing.html", launch=g.launch_context, launch_token="t")
        finally:
            del registry.plugins["old-style"]
    assert [key for key, _ in links] == ["programme"]
    link = links[0][1]
    assert isinstance(link, HeaderLink) and link.label == "Your programme dashboard" and not link.current
    assert link.url.startswith("/p/programme/?launch=l1.l-1.")
    assert '<nav class="header-nav" aria-label="Programme">' in html
    assert f'<a href="{link.url}" data-programme-link>Your programme dashboard</a>' in html


def test_a_page_without_a_launch_has_no_header_links(tool):
    with tool.app.test_request_context("/"):
        assert header_links() == []


def test_no_header_nav_outside_a_course(tool, platform, browser):
    page = browser.launch(tool, platform, LaunchSpec(sub="no-course", context=None))
    assert page.status_code == 200
    assert "header-nav" not in page.text
