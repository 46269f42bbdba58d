"""Outbound HTTP: one requests session whose every call carries a timeout.

A platform that hangs must never hold a worker forever, so the timeout is applied here, below
every caller (JWKS fetches, token requests, AGS, NRPS), not remembered at each call site.
"""

from __future__ import annotations

import requests
from requests.adapters import HTTPAdapter

USER_AGENT = "npqsl-lti/0.1 (+LTI 1.3 tool)"


class _TimeoutAdapter(HTTPAdapter):
    def __init__(self, timeout: float, **kwargs):
        self._timeout = timeout
        super().__init__(**kwargs)

    def send(self, request, **kwargs):
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self._timeout
        return super().send(request, **kwargs)


def make_http_session(timeout: float) -> requests.Session:
    """A session whose requests time out after ``timeout`` seconds unless a caller says otherwise."""
    session = requests.Session()
    adapter = _TimeoutAdapter(timeout, pool_connections=20, pool_maxsize=50)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    return session
