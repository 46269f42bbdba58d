"""Browsers that keep no cookies for the tool: the new-window page, postMessage storage, cookie attributes.

Over real HTTP (TestPlatform + ToolServer). A browser "keeping no cookies" is a requests session
whose cookie policy refuses every domain, which is what a browser blocking the tool's cookies in
the platform's iframe looks like from the server.
"""

from __future__ import annotations

from http.cookiejar import DefaultCookiePolicy
from urllib.parse import parse_qsl, urljoin, urlsplit

import lxml.html
import pytest
import requests
from flask import render_template
from sqlalchemy import func, select

from lti_tool.login_states import state_id, was_used
from lti_tool.models import Launch, User

from .browser import Browser, auto_post_form
from .platform_emulator import LaunchSpec

NEW_WINDOW_TEXT = "Open in a new window"


class CookielessBrowser(Browser):
    """A browser that refuses every cookie the tool sets.

    Its jar's policy accepts no domain. Redirects are followed here, hop by hop through that jar
    and with the same headers (as a browser sends its Fetch Metadata on every hop), because
    requests' own redirect handling carries cookies across hops in a jar of its own.
    """

    def __init__(self):
        super().__init__()
        self.session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))

    def _follow(self, response: requests.Response, headers: dict | None) -> requests.Response:
        history = []
        while response.is_redirect and len(history) < 10:
            history.append(response)
            next_url = urljoin(response.url, response.headers["Location"])
            response = self.session.get(next_url, headers=headers, timeout=10, allow_redirects=False)
        response.history = history
        assert not self.session.cookies, "the cookie-less browser kept a cookie"
        return response

    def get(self, url: str, **kwargs) -> requests.Response:
        first = self.session.get(url, timeout=10, allow_redirects=False, **kwargs)
        return self._follow(first, kwargs.get("headers"))

    def post(self, url: str, **kwargs) -> requests.Response:
        first = self.session.post(url, timeout=10, allow_redirects=False, **kwargs)
        return self._follow(first, kwargs.get("headers"))


@pytest.fixture
def cookieless() -> Browser:
    return CookielessBrowser()


def page(response: requests.Response) -> lxml.html.HtmlElement:
    return lxml.html.fromstring(response.text, base_url=response.url)


def heading(doc) -> str:
    (h1,) = doc.xpath("//main//h1")
    return h1.text_content().strip()


def new_window_link(doc):
    links = [a for a in doc.xpath("//main//a") if a.text_content().strip() == NEW_WINDOW_TEXT]
    assert len(links) == 1, [a.text_content() for a in doc.xpath("//a")]
    return links[0]


def query_of(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query))


def launches_of(tool, sub: str) -> int:
    with tool.db.sessions() as session:
        return session.scalar(select(func.count()).select_from(Launch).join(User).where(User.sub == sub))


def set_cookie_headers(response) -> list[str]:
    return response.raw.headers.getlist("Set-Cookie")


def cookie_attributes(header: str) -> tuple[str, dict[str, str]]:
    """('name', {attribute lower-cased: value}) of one Set-Cookie header."""
    first, *attributes = [part.strip() for part in header.split(";")]
    name = first.split("=", 1)[0]
    parsed = {}
    for attribute in attributes:
        key, _, value = attribute.partition("=")
        parsed[key.lower()] = value
    return name, parsed


# -- the new-window page ------------------------------------------------------------------------
def test_browser_keeping_no_cookies_gets_the_new_window_page_at_login(tool, platform, cookieless):
    hint = platform.prepare()
    params = platform.login_params(tool.launch_url, hint)
    response = cookieless.get(tool.login_url, params=params)

    assert response.status_code == 200
    assert [r.status_code for r in response.history] == [303], "the probe hop comes first"
    assert query_of(response.url)["probe"] == "1"
    assert response.headers["Cache-Control"] == "no-store"
    doc = page(response)
    assert heading(doc) == "Open this activity in a new window"
    assert doc.xpath("//header") and doc.xpath("//main")
    link = new_window_link(doc)
    assert link.get("target") == "_blank"
    href = urljoin(response.url, link.get("href"))
    assert href.startswith(tool.login_url + "?")
    assert query_of(href) == {**params, "new_window": "1"}
    # Nothing was started: the platform never asked.
    assert all(r["login_hint"] != hint for r in platform.auth_requests)


def test_new_window_link_completes_the_launch_in_a_cookie_keeping_browser(tool, platform, cookieless, browser):
    hint = platform.prepare(LaunchSpec(sub="new-window-1", name="Nia Window"))
    blocked = cookieless.get(tool.login_url, params=platform.login_params(tool.launch_url, hint))
    href = urljoin(blocked.url, new_window_link(page(blocked)).get("href"))

    at_platform = browser.get(href)
    assert at_platform.url.startswith(platform.auth_url), at_platform.url
    form = auto_post_form(at_platform.text, at_platform.url)
    landed = browser.post(form.action, data=form.fields)

    assert landed.status_code == 200, landed.text[:500]
    assert "Welcome, Nia Window" in landed.text
    assert launches_of(tool, "new-window-1") == 1


def test_launch_without_state_cookie_gets_the_new_window_page_and_changes_nothing(
    tool, platform, browser, cookieless
):
    spec = LaunchSpec(sub="lost-cookie-1")
    form = browser.platform_post(tool, platform, spec)
    hint = platform.auth_requests[-1]["login_hint"]

    refused = cookieless.post(form.action, data=form.fields)

    assert refused.status_code == 401
    assert refused.headers["Cache-Control"] == "no-store"
    doc = page(refused)
    assert heading(doc) == "Open this activity in a new window"
    assert doc.xpath("//*[@data-reference]")[0].text_content().strip()
    href = urljoin(refused.url, new_window_link(doc).get("href"))
    assert query_of(href) == {**platform.login_params(tool.launch_url, hint), "new_window": "1"}
    assert launches_of(tool, "lost-cookie-1") == 0
    assert not was_used(tool.db, state_id(form.fields["state"]))

    # The login is still usable by the browser that holds its cookie...
    assert browser.post(form.action, data=form.fields).status_code == 200
    # ...and the new-window link starts a fresh one that completes in a cookie-keeping window.
    other = Browser()
    at_platform = other.get(href)
    second = auto_post_form(at_platform.text, at_platform.url)
    assert other.post(second.action, data=second.fields).status_code == 200
    assert launches_of(tool, "lost-cookie-1") == 2


def test_window_of_its_own_that_keeps_no_cookies_is_asked_to_allow_them(tool, platform, cookieless):
    hint = platform.prepare()
    response = cookieless.get(
        tool.login_url,
        params=platform.login_params(tool.launch_url, hint),
        headers={"Sec-Fetch-Dest": "document", "Sec-Fetch-Site": "cross-site"},
    )
    doc = page(response)
    assert heading(doc) == "Allow cookies to open this activity"
    assert urlsplit(tool.base_url).netloc in doc.text_content()
    assert not [a for a in doc.xpath("//a") if a.text_content().strip() == NEW_WINDOW_TEXT]
    (again,) = doc.xpath("//a[@id='try-again']")
    assert again.get("target") is None


# -- SameSite=Lax over http: the launch posted again from the tool's page --------------------------
def test_top_level_cross_site_launch_missing_its_lax_cookie_is_posted_again_by_the_tool(tool, platform, browser):
    form = browser.platform_post(tool, platform, LaunchSpec(sub="lax-1"))
    # The platform's cross-site form post into a window of the tool's own: a Lax cookie stays behind.
    top_level_cross_site = {"Sec-Fetch-Dest": "document", "Sec-Fetch-Site": "cross-site"}
    bounced = requests.post(form.action, data=form.fields, headers=top_level_cross_site, timeout=10)

    assert bounced.status_code == 200
    doc = page(bounced)
    repost = doc.forms[0]
    assert urljoin(bounced.url, repost.action) == tool.launch_url
    assert dict(repost.form_values()) == {**form.fields, "lti_resubmit": "1"}
    assert not doc.xpath("//script[@id='lti-storage']")
    assert launches_of(tool, "lax-1") == 0

    # Posted from the tool's own page (same origin) the cookie comes along.
    same_origin = {"Sec-Fetch-Dest": "document", "Sec-Fetch-Site": "same-origin"}
    landed = browser.post(tool.launch_url, data=dict(repost.form_values()), headers=same_origin)
    assert landed.status_code == 200 and launches_of(tool, "lax-1") == 1


def test_reposted_launch_still_without_cookie_asks_to_allow_cookies(tool, platform, browser):
    form = browser.platform_post(tool, platform, LaunchSpec(sub="lax-2"))
    fields = {**form.fields, "lti_resubmit": "1"}
    again = requests.post(
        form.action,
        data=fields,
        headers={"Sec-Fetch-Dest": "document", "Sec-Fetch-Site": "same-origin"},
        timeout=10,
    )
    assert again.status_code == 401
    assert heading(page(again)) == "Allow cookies to open this activity"
    assert launches_of(tool, "lax-2") == 0


# -- postMessage storage (lti_storage_target) -----------------------------------------------------
def storage_login(cookieless, tool, platform, spec: LaunchSpec | None = None, target: str = "_parent"):
    """A cookie-less login offering client-side storage; returns (hint, put page response)."""
    hint = platform.prepare(spec)
    params = platform.login_params(tool.launch_url, hint, lti_storage_target=target)
    return hint, cookieless.get(tool.login_url, params=params)


def storage_data(response) -> dict[str, str]:
    (script,) = page(response).xpath("//script[@id='lti-storage']")
    return {k[len("data-") :]: v for k, v in script.attrib.items() if k.startswith("data-")}


def storage_launch(cookieless, tool, platform, spec: LaunchSpec):
    """Login with storage, then the platform's post without cookie: (put data, get page, form)."""
    _, put_page = storage_login(cookieless, tool, platform, spec)
    put = storage_data(put_page)
    at_platform = cookieless.get(put["next"])
    form = auto_post_form(at_platform.text, at_platform.url)
    return put, cookieless.post(form.action, data=form.fields), form


def test_login_offering_storage_answers_with_the_put_page_when_cookies_are_blocked(tool, platform, cookieless):
    hint, response = storage_login(cookieless, tool, platform, target="post_message_forwarding")

    assert response.status_code == 200
    assert response.url.startswith(tool.login_url), "no redirect to the platform yet"
    assert all(r["login_hint"] != hint for r in platform.auth_requests)
    assert response.headers["Cache-Control"] == "no-store"
    data = storage_data(response)
    assert data["next"].startswith(platform.auth_url + "?")
    login = tool.tool.login_states.read(query_of(data["next"])["state"])
    assert login.login_params["login_hint"] == hint
    assert login.storage_target == "post_message_forwarding"
    assert data["mode"] == "put"
    assert data["target"] == "post_message_forwarding"
    assert data["origin"] == platform.base_url
    assert data["key"] == f"state_{login.id}"
    assert login.bound_to(data["value"])
    # Without JavaScript, or when the platform does not answer: a new window, never the bare auth URL.
    doc = page(response)
    hidden = doc.xpath("//*[@id='storage-fallback']")[0]
    assert hidden.get("hidden") is not None
    fallback = urljoin(response.url, new_window_link(doc).get("href"))
    assert query_of(fallback) == {**platform.login_params(tool.launch_url, hint), "new_window": "1"}
    assert not [a for a in doc.xpath("//a[@href]") if a.get("href").startswith(platform.auth_url)]


def test_storage_launch_without_cookie_answers_with_the_get_page(tool, platform, cookieless):
    put, response, form = storage_launch(cookieless, tool, platform, LaunchSpec(sub="storage-get-1"))

    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    data = storage_data(response)
    assert {k: data[k] for k in ("mode", "target", "origin", "key")} == {
        "mode": "get",
        "target": "_parent",
        "origin": platform.base_url,
        "key": put["key"],
    }
    repost = page(response).forms[0]
    assert urljoin(response.url, repost.action) == tool.launch_url
    # The id_token comes back byte for byte (it is escaped into an attribute, not altered).
    assert dict(repost.form_values()) == {**form.fields, "lti_storage_value": ""}
    assert launches_of(tool, "storage-get-1") == 0


def test_storage_value_completes_the_launch(tool, platform, cookieless):
    put, _, form = storage_launch(cookieless, tool, platform, LaunchSpec(sub="storage-ok-1", name="Sol Store"))
    landed = cookieless.post(form.action, data={**form.fields, "lti_storage_value": put["value"]})
    assert landed.status_code == 200, landed.text[:500]
    assert "Welcome, Sol Store" in landed.text
    assert launches_of(tool, "storage-ok-1") == 1


def test_wrong_storage_value_is_refused_as_state_mismatch(tool, platform, cookieless):
    put, _, form = storage_launch(cookieless, tool, platform, LaunchSpec(sub="storage-bad-1"))
    refused = cookieless.post(form.action, data={**form.fields, "lti_storage_value": "not-" + put["value"]})
    assert refused.status_code == 401
    assert "<code>state_mismatch</code>" in refused.text
    assert launches_of(tool, "storage-bad-1") == 0
    # The refusal consumed nothing: the right value still completes the launch.
    landed = cookieless.post(form.action, data={**form.fields, "lti_storage_value": put["value"]})
    assert landed.status_code == 200 and launches_of(tool, "storage-bad-1") == 1


def test_empty_storage_value_gets_the_new_window_page_not_the_get_page_again(tool, platform, cookieless):
    _, _, form = storage_launch(cookieless, tool, platform, LaunchSpec(sub="storage-empty-1"))
    response = cookieless.post(form.action, data={**form.fields, "lti_storage_value": ""})
    assert response.status_code == 401
    assert not page(response).xpath("//script[@id='lti-storage']")
    assert heading(page(response)) == "Open this activity in a new window"


def test_storage_launch_whose_token_carries_markup_is_refused_not_reflected(tool, platform, cookieless):
    _, _, form = storage_launch(cookieless, tool, platform, LaunchSpec(sub="storage-xss-1"))
    head, body, _ = form.fields["id_token"].split(".")
    hostile = f'{head}.{body}."><script>alert(1)</script>'
    response = cookieless.post(form.action, data={**form.fields, "id_token": hostile})
    assert response.status_code == 400
    assert "<code>malformed_id_token</code>" in response.text
    assert "<script>alert(1)" not in response.text


def test_storage_get_page_escapes_the_id_token_into_its_form(tool):
    hostile = "aaa.bbb.\"><script id='injected'>alert(1)</script><input name='lti_storage_value' value='x"
    with tool.app.test_request_context("/lti/launch", method="POST"):
        html = render_template(
            "storage_get.html",
            target="_parent",
            origin="https://vle.example",
            key="state_abc",
            state="abc",
            id_token=hostile,
            action="/lti/launch",
            new_window_url="/lti/login?new_window=1",
        )
    doc = lxml.html.fromstring(html)
    assert not doc.xpath("//*[@id='injected']")
    form = doc.forms[0]
    assert dict(form.form_values()) == {"id_token": hostile, "state": "abc", "lti_storage_value": ""}


# -- cookie attributes --------------------------------------------------------------------------------
def test_cookies_over_http_are_httponly_samesite_lax_without_secure(tool, platform, browser):
    hint = platform.prepare()
    probe = browser.get(tool.login_url, params=platform.login_params(tool.launch_url, hint), allow_redirects=False)
    assert probe.status_code == 303
    to_platform = browser.get(urljoin(probe.url, probe.headers["Location"]), allow_redirects=False)
    assert to_platform.status_code == 302
    assert to_platform.headers["Location"].startswith(platform.auth_url)
    state = query_of(to_platform.headers["Location"])["state"]

    (probe_cookie,) = set_cookie_headers(probe)
    (state_cookie,) = set_cookie_headers(to_platform)
    for header, name in ((probe_cookie, "lti_cookie_probe"), (state_cookie, f"lti_state_{state_id(state)}")):
        got_name, attributes = cookie_attributes(header)
        assert got_name == name
        assert "httponly" in attributes and attributes["samesite"] == "Lax" and attributes["path"] == "/"
        assert "secure" not in attributes and "partitioned" not in attributes
    assert cookie_attributes(state_cookie)[1]["max-age"] == str(tool.settings.launch.login_ttl_seconds)


def test_successful_launch_clears_its_state_cookie(tool, platform, browser):
    form = browser.platform_post(tool, platform, LaunchSpec(sub="clear-cookie-1"))
    name = f"lti_state_{state_id(form.fields['state'])}"
    assert name in browser.session.cookies
    landed = browser.post(form.action, data=form.fields)
    assert landed.status_code == 200
    (cleared,) = [h for h in set_cookie_headers(landed) if h.startswith(name + "=")]
    assert cookie_attributes(cleared)[1]["max-age"] == "0"
    assert name not in browser.session.cookies


def test_cookies_under_an_https_public_url_are_secure_samesite_none_and_partitioned(make_tool, platform):
    server = make_tool(public_url="https://tool.example")
    server.register(platform)
    client = server.app.test_client(use_cookies=False)
    hint = platform.prepare()
    params = platform.login_params("https://tool.example/lti/launch", hint)

    probe = client.get("/lti/login", query_string=params, base_url="https://tool.example")
    assert probe.status_code == 303
    to_platform = client.get(
        probe.headers["Location"],
        base_url="https://tool.example",
        headers={"Cookie": "lti_cookie_probe=1"},
    )
    assert to_platform.status_code == 302, to_platform.get_data(as_text=True)[:500]
    location = to_platform.headers["Location"]
    assert location.startswith(platform.auth_url)
    assert query_of(location)["redirect_uri"] == "https://tool.example/lti/launch"

    (probe_cookie,) = probe.headers.getlist("Set-Cookie")
    (state_cookie,) = to_platform.headers.getlist("Set-Cookie")
    for header in (probe_cookie, state_cookie):
        _, attributes = cookie_attributes(header)
        assert {"secure", "httponly", "partitioned"} <= set(attributes), header
        assert attributes["samesite"] == "None" and attributes["path"] == "/"
    assert cookie_attributes(state_cookie)[0] == f"lti_state_{state_id(query_of(location)['state'])}"
