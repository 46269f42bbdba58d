"""LTI Dynamic Registration against a platform that behaves like Moodle, over real HTTP."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from sqlalchemy import func, select

from lti_tool.models import Platform, RegistrationInvite
from lti_tool.platforms import approve_platform, find_platform
from lti_tool.registration import create_invite

from .platform_emulator import LaunchSpec
from .registration_platform import RegisteringPlatform

TOOL_CONFIG = "https://purl.imsglobal.org/spec/lti-tool-configuration"


@pytest.fixture
def moodle():
    platform = RegisteringPlatform().start()
    yield platform
    platform.stop()


def register_url(server, platform, **extra):
    params = {
        "openid_configuration": platform.openid_configuration_url,
        "registration_token": platform.registration_token,
        **extra,
    }
    return server.base_url + "/lti/register", params


def platform_count(server) -> int:
    with server.db.sessions() as session:
        return session.scalar(select(func.count()).select_from(Platform))


def test_invited_registration_waits_for_approval_then_launches(make_tool, moodle, browser):
    server = make_tool()
    invite = create_invite(server.db, ttl_days=1)
    url, params = register_url(server, moodle, invite=invite)
    page = browser.get(url, params=params)
    assert page.status_code == 200, page.text
    assert "Waiting for approval" in page.text
    assert "registration_close.js" in page.text

    sent = moodle.registrations[-1]
    assert sent["initiate_login_uri"] == server.login_url
    assert sent["redirect_uris"] == [server.launch_url]
    assert sent["jwks_uri"] == server.jwks_url
    assert sent["token_endpoint_auth_method"] == "private_key_jwt"
    assert "https://purl.imsglobal.org/spec/lti-ags/scope/score" in sent["scope"].split()
    assert "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly" in sent["scope"].split()
    message_types = {m["type"] for m in sent[TOOL_CONFIG]["messages"]}
    assert message_types == {"LtiResourceLinkRequest", "LtiDeepLinkingRequest"}
    assert "email" not in sent[TOOL_CONFIG]["claims"]

    refused = browser.start_login(server, moodle, moodle.prepare(LaunchSpec()))
    assert refused.status_code == 403 and "<code>platform_not_approved</code>" in refused.text

    registered = find_platform(server.db, moodle.issuer)
    assert registered.deployment_ids == (moodle.deployment_id,)
    assert registered.auth_login_url == moodle.auth_url and registered.key_set_url == moodle.jwks_url
    approve_platform(server.db, registered.id)
    launched = browser.launch(server, moodle, LaunchSpec(sub="after-approval"))
    assert launched.status_code == 200 and "Welcome" in launched.text


def test_invite_works_once(make_tool, moodle, browser):
    server = make_tool()
    invite = create_invite(server.db, ttl_days=1)
    url, params = register_url(server, moodle, invite=invite)
    assert browser.get(url, params=params).status_code == 200
    again = browser.get(url, params=params)
    assert again.status_code == 403 and "already been used" in again.text
    assert len(moodle.registrations) == 1 and platform_count(server) == 1


def test_registration_without_invite_is_refused_before_contacting_the_platform(make_tool, moodle, browser):
    server = make_tool()
    url, params = register_url(server, moodle)
    page = browser.get(url, params=params)
    assert page.status_code == 403 and "invitation link" in page.text
    assert moodle.config_requests == 0 and platform_count(server) == 0


def test_open_mode_with_auto_approve_registers_ready_to_launch(make_tool, moodle, browser):
    server = make_tool(registration={"mode": "open", "auto_approve": True})
    url, params = register_url(server, moodle)
    page = browser.get(url, params=params)
    assert "Approved: ready to use" in page.text
    assert browser.launch(server, moodle, LaunchSpec()).status_code == 200


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"issuer": "https://elsewhere.example"}, "does not match the configuration URL"),
        ({"registration_endpoint": None}, "no usable registration_endpoint"),
        (
            {"https://purl.imsglobal.org/spec/lti-platform-configuration": None},
            "not an LTI platform configuration",
        ),
    ],
    ids=["issuer-mismatch", "no-registration-endpoint", "not-lti"],
)
def test_bad_platform_configuration_is_refused_and_nothing_is_stored(
    make_tool, moodle, browser, override, message
):
    server = make_tool()
    invite = create_invite(server.db, ttl_days=1)
    moodle.config_overrides = override
    url, params = register_url(server, moodle, invite=invite)
    page = browser.get(url, params=params)
    assert page.status_code == 400 and message in page.text
    assert moodle.registrations == [] and platform_count(server) == 0
    with server.db.sessions() as session:
        assert session.scalar(select(RegistrationInvite.used_at)) is None


def test_platform_refusing_the_registration_leaves_the_invite_usable(make_tool, moodle, browser):
    server = make_tool()
    invite = create_invite(server.db, ttl_days=1)
    moodle.registration_status = 500
    url, params = register_url(server, moodle, invite=invite)
    page = browser.get(url, params=params)
    assert page.status_code == 502 and "refused the registration" in page.text
    assert platform_count(server) == 0
    moodle.registration_status = 200
    assert browser.get(url, params=params).status_code == 200


def test_wrong_registration_token_is_reported(make_tool, moodle, browser):
    server = make_tool()
    invite = create_invite(server.db, ttl_days=1)
    url, params = register_url(server, moodle, invite=invite, registration_token="wrong")
    page = browser.get(url, params=params)
    assert page.status_code == 502 and "HTTP 401" in page.text
    assert platform_count(server) == 0


def test_opening_the_registration_url_directly_explains_what_it_is_for(tool, browser):
    page = browser.get(tool.base_url + "/lti/register")
    assert page.status_code == 400 and "Dynamic Registration" in page.text


def test_setup_page_lists_the_urls_to_paste(tool, browser):
    page = browser.get(tool.base_url + "/lti/setup")
    assert page.status_code == 200
    for url in (tool.launch_url, tool.login_url, tool.jwks_url, tool.base_url + "/lti/register"):
        assert url in page.text


def test_cli_invite_prints_a_registration_url(tmp_path):
    env = {**os.environ, "NPQSL_ENV": "development", "NPQSL_INSTANCE_PATH": str(tmp_path)}
    cli = os.path.join(os.path.dirname(sys.executable), "npqsl-lti")
    subprocess.run([cli, "db", "upgrade"], env=env, check=True, capture_output=True)
    out = subprocess.run(
        [cli, "platform", "invite", "--note", "St Example"], env=env, check=True, capture_output=True, text=True
    )
    assert out.stdout.startswith("http://127.0.0.1:5000/lti/register?invite=")
