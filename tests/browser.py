"""A cookie-keeping HTTP client that walks the LTI flow the way a browser would (minus JavaScript)."""

from __future__ import annotations

from dataclasses import dataclass

import lxml.html
import requests

from .platform_emulator import LaunchSpec, TestPlatform
from .tool_server import ToolServer


@dataclass
class FormPost:
    action: str
    fields: dict[str, str]


def auto_post_form(html: str, base_url: str) -> FormPost:
    """The form a platform's auto-submitting page would post."""
    doc = lxml.html.fromstring(html, base_url=base_url)
    doc.make_links_absolute(base_url)
    form = doc.forms[0]
    return FormPost(form.action, {k: v for k, v in form.form_values()})


class Browser:
    """One person's browser: a requests session with its own cookie jar."""

    def __init__(self):
        self.session = requests.Session()

    def get(self, url: str, **kwargs) -> requests.Response:
        return self.session.get(url, timeout=10, **kwargs)

    def post(self, url: str, **kwargs) -> requests.Response:
        return self.session.post(url, timeout=10, **kwargs)

    def start_login(self, tool: ToolServer, platform: TestPlatform, hint: str, **extra: str) -> requests.Response:
        """The platform's login initiation, followed through to the platform's auto-post page."""
        params = platform.login_params(extra.pop("target_link_uri", tool.launch_url), hint, **extra)
        return self.get(tool.login_url, params=params)

    def platform_post(self, tool: ToolServer, platform: TestPlatform, spec: LaunchSpec | None = None, **extra):
        """Run the login and return the form the platform would post to the tool (not yet posted)."""
        hint = platform.prepare(spec)
        response = self.start_login(tool, platform, hint, **extra)
        assert response.status_code == 200, response.text[:500]
        assert response.url.startswith(platform.auth_url), response.url
        return auto_post_form(response.text, response.url)

    def launch(self, tool: ToolServer, platform: TestPlatform, spec: LaunchSpec | None = None, **extra):
        """A whole launch: login, platform authorization, form post of the id_token."""
        form = self.platform_post(tool, platform, spec, **extra)
        return self.post(form.action, data=form.fields)
