"""Calls the tool makes to a platform's services (AGS, NRPS), through pylti1p3's service connector.

pylti1p3 does the OAuth2 client-credentials exchange and the paging; this module supplies what
it lacks: the assertion is signed with the key ring's loaded key (pylti1p3 re-parses a PEM for
each signature), every request goes through the session with timeouts, and access tokens are
cached in the shared cache per platform and scope set until shortly before they expire.
"""

from __future__ import annotations

from typing import Any

import requests
from pylti1p3.registration import Registration
from pylti1p3.service_connector import ServiceConnector

from .keys import KeyRing
from .platforms import PlatformInfo

# Refresh a cached access token this many seconds before the platform says it expires.
TOKEN_EXPIRY_MARGIN = 30
# pylti1p3 asserts a private key is configured; ours lives in the key ring, never as a PEM here.
_KEY_HELD_BY_KEYRING = "held-by-the-tool-key-ring"


def registration_for(platform: PlatformInfo) -> Registration:
    """A pylti1p3 Registration built from our platform record."""
    registration = Registration()
    registration.set_issuer(platform.issuer)
    registration.set_client_id(platform.client_id)
    registration.set_auth_login_url(platform.auth_login_url)
    registration.set_auth_token_url(platform.auth_token_url)
    registration.set_key_set_url(platform.key_set_url)
    registration.set_tool_private_key(_KEY_HELD_BY_KEYRING)
    if platform.auth_audience:
        registration.set_auth_audience(platform.auth_audience)
    return registration


class ToolServiceConnector(ServiceConnector):
    """pylti1p3's connector with our signing, token cache and HTTP session."""

    def __init__(self, platform: PlatformInfo, keyring: KeyRing, cache, http: requests.Session):
        super().__init__(registration_for(platform), http)
        self._platform = platform
        self._keyring = keyring
        self._cache = cache

    def encode_jwt(self, message: dict[str, Any], private_key: str, headers: dict[str, str]) -> str:
        return self._keyring.sign(dict(message))

    def _token_cache_key(self, scope_key: str) -> str:
        return f"ags-token:{self._platform.id}:{scope_key}"

    def _get_cached_access_token(self, scope_key: str) -> str | None:
        return self._cache.get(self._token_cache_key(scope_key))

    def _cache_access_token(self, scope_key: str, access_token: str, expires_in: float) -> None:
        lifetime = int(expires_in or 0) - TOKEN_EXPIRY_MARGIN
        if lifetime > 0:
            self._cache.set(self._token_cache_key(scope_key), access_token, timeout=lifetime)

    def forget_access_token(self, scopes: list[str]) -> None:
        """Drop a cached token the platform refused (401), so the next call asks for a new one."""
        self._cache.delete(self._token_cache_key(self._scope_key(sorted(scopes))))
