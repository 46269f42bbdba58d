"""The built-in demo platform: real OIDC launches without a VLE, in development only."""

from __future__ import annotations

import pytest

from lti_tool.platforms import list_platforms

from . import plugin_install
from .browser import Browser, auto_post_form


def follow_demo(browser: Browser, server, **params):
    """What the demo page's form does: start, let the platform post, land in the tool."""
    page = browser.get(server.base_url + "/demo/start", params=params)
    assert page.status_code == 200, page.text[:300]
    form = auto_post_form(page.text, page.url)
    return browser.post(form.action, data=form.fields)


@pytest.mark.parametrize(
    ("role", "shown"),
    [("candidate", "Candidate"), ("coach", "Coach"), ("assessor", "Assessor"), ("administrator", "Administrator")],
)
def test_demo_launches_each_role_through_the_real_flow(tool, browser, role, shown):
    assert browser.get(tool.base_url + "/demo/").status_code == 200
    landed = follow_demo(browser, tool, role=role, action="launch")
    assert landed.status_code == 200
    assert f"data-role>{shown}<" in landed.text
    assert "NPQSL demo cohort" in landed.text


def test_demo_registers_itself_once(tool, browser):
    for _ in range(2):
        browser.get(tool.base_url + "/demo/")
    demo = [p for p in list_platforms(tool.db) if p.issuer.endswith("/demo")]
    assert len(demo) == 1 and demo[0].approved


def test_demo_places_activities_by_deep_linking_and_launches_them(make_tool, tmp_path):
    plugin_install.install(tmp_path / "site", {"example-reflection": "npqsl_example_plugin:plugin"})
    try:
        server = make_tool()
        browser = Browser()
        browser.get(server.base_url + "/demo/")
        picker = follow_demo(browser, server, role="coach", action="deeplink")
        assert "Example reflective journal" in picker.text
        form = auto_post_form(picker.text, server.base_url)
        returned = browser.post(
            server.base_url + "/lti/deep-link",
            data={"launch": form.fields["launch"], "item": "example-reflection:journal"},
        )
        back = auto_post_form(returned.text, server.base_url)
        placed = browser.post(back.action, data=back.fields)
        assert placed.status_code == 200 and "1 activity added" in placed.text
        course = browser.get(server.base_url + "/demo/")
        assert "Example reflective journal" in course.text
        launched = follow_demo(browser, server, role="candidate", action="launch", item="0")
        assert "Example plugin: journal" in launched.text
    finally:
        plugin_install.uninstall(tmp_path / "site")


def test_demo_authorization_refuses_a_forged_hint(tool, browser):
    browser.get(tool.base_url + "/demo/")
    refused = browser.get(
        tool.base_url + "/demo/auth",
        params={
            "scope": "openid",
            "response_type": "id_token",
            "response_mode": "form_post",
            "prompt": "none",
            "client_id": "npqsl-demo-client",
            "redirect_uri": tool.launch_url,
            "state": "s",
            "nonce": "n",
            "login_hint": "forged",
        },
    )
    assert refused.status_code == 400 and "login hint is not valid" in refused.text


def test_demo_is_absent_in_production(tmp_path):
    from lti_tool.app import create_app
    from lti_tool.db import Database

    from .tool_server import tool_settings

    settings = tool_settings(tmp_path, env="production", secret_key="p" * 40, public_url="https://tool.example")
    Database(settings.database_url).upgrade()
    client = create_app(settings).test_client()
    assert client.get("/demo/").status_code == 404
