"""A good launch, end to end over HTTP: login, platform authorization, id_token post, landing page."""

from __future__ import annotations

from sqlalchemy import func, select

from lti_tool import login_states
from lti_tool.models import Course, Launch, ResourceLink, User

from .platform_emulator import INSTRUCTOR, LaunchSpec


def test_launch_through_the_test_platform_lands_on_the_activity(tool, platform, browser):
    response = browser.launch(tool, platform, LaunchSpec(sub="cand-42", name="Sam Leader"))
    assert response.status_code == 200, response.text
    assert "Closing the Gap" in response.text
    assert "Welcome, Sam Leader" in response.text
    assert "NPQSL Cohort 2026" in response.text
    with tool.db.sessions() as session:
        user = session.scalar(select(User).where(User.sub == "cand-42"))
        assert user is not None and user.name == "Sam Leader"
        launch = session.scalar(select(Launch).where(Launch.user_id == user.id))
        assert launch.role == "candidate"
        assert session.get(Course, launch.course_id).context_id == "course-1"
        assert session.get(ResourceLink, launch.resource_link_id).resource_link_id == "rl-1"


def test_login_redirects_to_the_platform_with_a_complete_oidc_request(tool, platform, browser):
    form = browser.platform_post(tool, platform)
    request = platform.auth_requests[-1]
    assert request["redirect_uri"] == tool.launch_url
    assert request["client_id"] == platform.client_id
    assert request["lti_message_hint"].startswith("msg-")
    assert form.fields["state"] == request["state"]
    login = tool.tool.login_states.read(request["state"])
    assert login.nonce == request["nonce"] and login.target_link_uri == tool.launch_url
    assert not login_states.was_used(tool.db, login.id)


def test_instructor_is_mapped_to_coach(tool, platform, browser):
    response = browser.launch(tool, platform, LaunchSpec(sub="coach-1", roles=[INSTRUCTOR]))
    assert response.status_code == 200
    assert "data-role>Coach<" in response.text


def test_relaunch_updates_the_same_person_and_course(tool, platform, browser):
    for title in ("First title", "Renamed course"):
        spec = LaunchSpec(sub="same-person", context={"id": "course-x", "title": title})
        assert browser.launch(tool, platform, spec).status_code == 200
    with tool.db.sessions() as session:
        assert session.scalar(select(func.count()).select_from(User).where(User.sub == "same-person")) == 1
        course = session.scalar(select(Course).where(Course.context_id == "course-x"))
        assert course.title == "Renamed course"


def test_request_larger_than_any_launch_gets_the_too_large_page(tool, browser):
    response = browser.post(tool.launch_url, data={"id_token": "x" * 400_000, "state": "s"})
    assert response.status_code == 413
    assert "<code>id_token_too_large</code>" in response.text
    assert "data-reference" in response.text


def test_security_headers_allow_framing_only_by_registered_platforms(tool, platform, browser):
    response = browser.get(tool.base_url + "/healthz")
    policy = response.headers["Content-Security-Policy"]
    assert policy.startswith("frame-ancestors 'self' ")
    sources = policy.removeprefix("frame-ancestors ").split()
    assert platform.base_url in sources
    assert all(s == "'self'" or s.startswith("http://127.0.0.1:") for s in sources)
    assert "X-Frame-Options" not in response.headers
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_jwks_publishes_the_signing_key_without_private_parts(tool, browser):
    keys = browser.get(tool.base_url + "/.well-known/jwks.json").json()["keys"]
    assert [k["kid"] for k in keys] == [tool.tool.keyring.current.kid]
    assert all(k["alg"] == "RS256" and k["use"] == "sig" and "d" not in k for k in keys)


def test_landing_page_link_reopens_the_launch_without_cookies(tool, platform, browser):
    import re

    from .browser import Browser

    page = browser.launch(tool, platform, LaunchSpec(sub="reloader"))
    link = re.search(r'href="(/lti/activity\?launch=[^"]+)"', page.text).group(1)
    fresh = Browser().get(tool.base_url + link.replace("&amp;", "&"))
    assert fresh.status_code == 200 and "Closing the Gap" in fresh.text
    forged = Browser().get(tool.base_url + "/lti/activity?launch=forged.value")
    assert forged.status_code == 401 and "<code>launch_expired</code>" in forged.text


def test_launch_references_issued_in_the_same_second_name_their_own_launch(tool):
    tokens = tool.tool.launch_tokens
    first, other, again = tokens.issue("launch-a"), tokens.issue("launch-b"), tokens.issue("launch-a")
    assert [tokens.read(t) for t in (first, other, again)] == ["launch-a", "launch-b", "launch-a"]
    assert other != first
