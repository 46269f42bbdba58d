"""Platforms' public keys: fetched from their JWKS URL, cached with a TTL, refetched on an unknown kid.

Platforms rotate keys, so a kid we have not seen triggers one fresh fetch; the refetch is
throttled per key set URL, so a stream of tokens with made-up kids cannot turn the tool into a
flood of requests against the platform. Parsed key objects are kept per process.

The key set lives in the shared cache (Redis when scaled out), so every worker fetches it once.
Each process also keeps the keys it used for up to a minute (never longer than the shared
cache's TTL), so a launch does not read and unpickle the key set from the cache each time; a
key the platform has withdrawn is honoured at most that much longer than the shared cache says.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from typing import Any

import requests
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from jwt.algorithms import RSAAlgorithm

from .errors import LaunchError

MAX_JWKS_BYTES = 512 * 1024
# The longest a process uses a key without looking at the shared cache again, in seconds.
LOCAL_TTL_SECONDS = 60.0


class PlatformKeys:
    """Looks up a platform's signing key by kid."""

    def __init__(self, cache, http: requests.Session, *, ttl: int, refetch_interval: int):
        self._cache = cache
        self._http = http
        self._ttl = ttl
        self._refetch_interval = refetch_interval
        self._parsed: dict[str, RSAPublicKey] = {}
        self._lock = threading.Lock()
        # Per key set URL: until when (monotonic) this process may use these keys by kid.
        self._recent: dict[str, tuple[float, dict[str, RSAPublicKey]]] = {}
        self._local_ttl = min(LOCAL_TTL_SECONDS, ttl) if ttl > 0 else LOCAL_TTL_SECONDS
        self.fetches = 0

    @staticmethod
    def _cache_key(url: str, what: str) -> str:
        return f"jwks:{what}:{hashlib.sha256(url.encode()).hexdigest()[:32]}"

    def _fetch(self, url: str) -> dict[str, Any]:
        self.fetches += 1
        try:
            # iter_content, not response.raw.read: it turns urllib3's errors (a read timeout while
            # the body stalls, a broken connection) into requests exceptions. `with` hands the
            # connection back even when the body is cut short at the size limit.
            with self._http.get(url, headers={"Accept": "application/json"}, stream=True) as response:
                body = b""
                for chunk in response.iter_content(chunk_size=64 * 1024):
                    body += chunk
                    if len(body) > MAX_JWKS_BYTES:
                        break
        except requests.RequestException as exc:
            raise LaunchError("jwks_unavailable", f"{url}: {exc.__class__.__name__}: {exc}") from None
        if response.status_code != 200:
            raise LaunchError("jwks_unavailable", f"{url}: HTTP {response.status_code}")
        if len(body) > MAX_JWKS_BYTES:
            raise LaunchError("jwks_unavailable", f"{url}: key set larger than {MAX_JWKS_BYTES} bytes")
        try:
            document = json.loads(body)
        except ValueError:
            raise LaunchError("jwks_unavailable", f"{url}: not JSON") from None
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            raise LaunchError("jwks_unavailable", f"{url}: no 'keys' list")
        self._cache.set(self._cache_key(url, "doc"), document, timeout=self._ttl or None)
        return document

    def _document(self, url: str) -> tuple[dict[str, Any], bool]:
        """The key set and whether it was fetched just now."""
        cached = self._cache.get(self._cache_key(url, "doc"))
        if cached is not None:
            return cached, False
        return self._fetch(url), True

    def _may_refetch(self, url: str) -> bool:
        """True at most once per refetch interval per key set URL (shared through the cache)."""
        key = self._cache_key(url, "refetch")
        if self._refetch_interval <= 0:
            return True
        # `add` only succeeds when the key is absent: one winner per interval, across processes.
        return bool(self._cache.add(key, time.time(), timeout=self._refetch_interval))

    @staticmethod
    def _find(document: dict[str, Any], kid: str) -> dict[str, Any] | None:
        for jwk in document.get("keys", []):
            if isinstance(jwk, dict) and jwk.get("kid") == kid:
                return jwk
        return None

    def _parse(self, jwk: dict[str, Any]) -> RSAPublicKey:
        fingerprint = json.dumps(jwk, sort_keys=True)
        key = self._parsed.get(fingerprint)
        if key is None:
            if jwk.get("kty") != "RSA" or jwk.get("alg", "RS256") != "RS256":
                raise LaunchError(
                    "algorithm_not_allowed",
                    f"JWKS key kty={jwk.get('kty')} alg={jwk.get('alg')}",
                )
            try:
                key = RSAAlgorithm.from_jwk(jwk)
            except Exception as exc:  # noqa: BLE001 - any parse failure means an unusable key
                raise LaunchError("jwks_unavailable", f"key {jwk.get('kid')!r} unreadable: {exc}") from None
            if not isinstance(key, RSAPublicKey):
                raise LaunchError("algorithm_not_allowed", "JWKS key is not an RSA public key")
            with self._lock:
                self._parsed[fingerprint] = key
        return key

    def key_for(self, url: str, kid: str) -> RSAPublicKey:
        """The platform's public key with this kid, refetching once (throttled) if it is unknown."""
        now = time.monotonic()
        recent = self._recent.get(url)
        if recent is not None and recent[0] > now and kid in recent[1]:
            return recent[1][kid]
        document, fresh = self._document(url)
        jwk = self._find(document, kid)
        if jwk is None and self._may_refetch(url) and not fresh:
            document, fresh = self._fetch(url), True
            jwk = self._find(document, kid)
        if jwk is None:
            raise LaunchError("unknown_kid", f"kid={kid!r} not in {url}")
        key = self._parse(jwk)
        with self._lock:
            # A key set read afresh starts a new entry, so keys it no longer lists are dropped.
            keep = recent is not None and recent[0] > now and not fresh
            self._recent[url] = (
                recent[0] if keep else now + self._local_ttl,
                {**(recent[1] if keep else {}), kid: key},
            )
        return key
