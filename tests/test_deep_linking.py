"""Deep linking and launch routing, with a plugin installed through its entry point."""

from __future__ import annotations

import jwt
import pytest

from lti_tool.platforms import approve_platform, find_platform
from lti_tool.plugin_registry import load_plugins
from lti_tool.registration import create_invite

from . import plugin_install
from .browser import auto_post_form
from .platform_emulator import INSTRUCTOR, LEARNER, LaunchSpec
from .registration_platform import RegisteringPlatform

DL_SETTINGS = "https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"
CONTENT_ITEMS = "https://purl.imsglobal.org/spec/lti-dl/claim/content_items"


@pytest.fixture
def plugins_installed(tmp_path):
    plugin_install.install(
        tmp_path / "site",
        {
            "example-reflection": "npqsl_example_plugin:plugin",
            "misdeclared": "npqsl_example_plugin:misdeclared",
            "broken": "npqsl_broken_plugin:plugin",
        },
    )
    yield
    plugin_install.uninstall(tmp_path / "site")


@pytest.fixture
def moodle():
    platform = RegisteringPlatform().start()
    yield platform
    platform.stop()


@pytest.fixture
def server(make_tool, moodle, plugins_installed):
    tool = make_tool()
    tool.register(moodle)
    return tool


def designer_spec(**kwargs) -> LaunchSpec:
    return LaunchSpec(sub="designer", roles=[INSTRUCTOR], message_type="LtiDeepLinkingRequest", **kwargs)


def pick(browser, server, page, items, **extra):
    form = auto_post_form(page.text, server.base_url)
    data = {"launch": form.fields["launch"], **extra}
    data["item"] = items
    return browser.post(server.base_url + "/lti/deep-link", data=data)


def test_broken_and_misdeclared_plugins_are_reported_and_the_tool_starts(plugins_installed):
    registry = load_plugins()
    assert "example-reflection" in registry.plugins
    reasons = {f.name: f.reason for f in registry.failures}
    assert "ImportError" in reasons["broken"] and "dependency is missing" in reasons["broken"]
    assert "must match" in reasons["Not A Valid Key"]


def test_picker_lists_installed_offers_as_checkboxes(server, moodle, browser):
    page = browser.launch(server, moodle, designer_spec())
    assert page.status_code == 200
    assert 'type="checkbox" name="item" value="example-reflection:quiz"' in page.text
    assert "Example reflective journal" in page.text
    assert "graded out of 10" in page.text
    assert "dependency is missing" in page.text  # the failure is shown to the designer/admin


def test_response_is_a_signed_deep_linking_response_with_line_items(server, moodle, browser):
    page = browser.launch(server, moodle, designer_spec())
    returned = pick(browser, server, page, ["example-reflection:quiz", "example-reflection:journal"])
    form = auto_post_form(returned.text, server.base_url)
    assert form.action == moodle.base_url + "/deep_link_return"
    token = form.fields["JWT"]
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "RS256" and header["kid"] == server.tool.keyring.current.kid
    claims = jwt.decode(
        token, server.tool.keyring.current.private_key.public_key(), algorithms=["RS256"], audience=moodle.issuer
    )
    assert claims["iss"] == moodle.client_id
    assert claims["https://purl.imsglobal.org/spec/lti/claim/message_type"] == "LtiDeepLinkingResponse"
    assert claims["https://purl.imsglobal.org/spec/lti/claim/version"] == "1.3.0"
    assert claims["https://purl.imsglobal.org/spec/lti/claim/deployment_id"] == moodle.deployment_id
    quiz, journal = claims[CONTENT_ITEMS]
    assert quiz["type"] == "ltiResourceLink" and quiz["url"] == server.launch_url
    assert quiz["custom"] == {"npqsl_plugin": "example-reflection", "npqsl_activity": "quiz"}
    assert quiz["lineItem"] == {
        "scoreMaximum": 10,
        "label": "Example knowledge check",
        "resourceId": "example-reflection:quiz",
        "tag": "example",
    }
    assert quiz["text"] == "Five questions on the example unit."
    assert "lineItem" not in journal and journal["custom"]["prompt"] == "What went well?"


def test_platform_data_is_returned_unchanged(server, moodle, browser):
    def with_data(claims):
        claims[DL_SETTINGS]["data"] = "opaque-123"

    page = browser.launch(server, moodle, designer_spec(mutate_claims=with_data))
    returned = pick(browser, server, page, ["example-reflection:journal"])
    token = auto_post_form(returned.text, server.base_url).fields["JWT"]
    assert (
        jwt.decode(token, options={"verify_signature": False})["https://purl.imsglobal.org/spec/lti-dl/claim/data"]
        == "opaque-123"
    )


def test_single_item_platforms_get_radio_buttons_and_refuse_two(server, moodle, browser):
    def single(claims):
        claims[DL_SETTINGS]["accept_multiple"] = False

    page = browser.launch(server, moodle, designer_spec(mutate_claims=single))
    assert 'type="radio" name="item"' in page.text
    refused = pick(browser, server, page, ["example-reflection:quiz", "example-reflection:journal"])
    assert refused.status_code == 400 and "<code>bad_selection</code>" in refused.text


def test_cancel_returns_an_empty_response(server, moodle, browser):
    page = browser.launch(server, moodle, designer_spec())
    returned = pick(browser, server, page, [], cancel="1")
    token = auto_post_form(returned.text, server.base_url).fields["JWT"]
    assert jwt.decode(token, options={"verify_signature": False})[CONTENT_ITEMS] == []


def test_unknown_item_is_refused(server, moodle, browser):
    page = browser.launch(server, moodle, designer_spec())
    refused = pick(browser, server, page, ["example-reflection:nope"])
    assert refused.status_code == 400 and "<code>bad_selection</code>" in refused.text


def test_learners_cannot_deep_link(server, moodle, browser):
    page = browser.launch(server, moodle, LaunchSpec(roles=[LEARNER], message_type="LtiDeepLinkingRequest"))
    assert page.status_code == 403 and "<code>deep_linking_not_allowed</code>" in page.text


def test_launch_of_a_removed_plugin_gets_a_clear_page(server, moodle, browser):
    spec = LaunchSpec(custom={"npqsl_plugin": "no-such-plugin", "npqsl_activity": "x"})
    page = browser.launch(server, moodle, spec)
    assert page.status_code == 404 and "<code>plugin_not_installed</code>" in page.text


def test_plugin_refuses_roles_it_does_not_admit(server, moodle, browser):
    admin = "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Administrator"
    spec = LaunchSpec(roles=[admin], custom={"npqsl_plugin": "example-reflection", "npqsl_activity": "quiz"})
    page = browser.launch(server, moodle, spec)
    assert page.status_code == 403 and "<code>role_not_admitted</code>" in page.text


def test_registered_placed_and_launched_end_to_end(make_tool, moodle, browser, plugins_installed):
    """Dynamic registration, approval, deep linking, then a launch of the placed activity."""
    server = make_tool()
    invite = create_invite(server.db, ttl_days=1)
    registered = browser.get(
        server.base_url + "/lti/register",
        params={
            "openid_configuration": moodle.openid_configuration_url,
            "registration_token": moodle.registration_token,
            "invite": invite,
        },
    )
    assert registered.status_code == 200
    approve_platform(server.db, find_platform(server.db, moodle.issuer).id)

    page = browser.launch(server, moodle, designer_spec())
    returned = pick(browser, server, page, ["example-reflection:journal"])
    form = auto_post_form(returned.text, server.base_url)
    placed = browser.post(form.action, data=form.fields)
    assert placed.status_code == 200 and "Placed 1 item" in placed.text
    item = moodle.placed_items[-1]

    learner = LaunchSpec(
        sub="cand-7", resource_link={"id": "rl-placed", "title": item["title"]}, custom=item["custom"]
    )
    launched = browser.launch(server, moodle, learner)
    assert launched.status_code == 200
    assert "Example plugin: journal" in launched.text
    assert "What went well?" in launched.text


def test_plugins_list_shows_installed_and_failed_plugins(plugins_installed, tmp_path):
    import os
    import subprocess
    import sys

    env = {
        **os.environ,
        "NPQSL_ENV": "development",
        "NPQSL_INSTANCE_PATH": str(tmp_path),
        "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
    }
    cli = os.path.join(os.path.dirname(sys.executable), "npqsl-lti")
    out = subprocess.run([cli, "plugins", "list"], env=env, capture_output=True, text=True, check=True).stdout
    assert "example-reflection  example  0.1.0  Example reflection  offers: quiz, journal" in out
    assert "FAILED broken" in out and "dependency is missing" in out
