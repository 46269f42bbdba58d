"""The shared cache (Flask-Caching): JWKS documents and refetch throttles.

``simple://`` keeps it inside one process; ``redis://`` shares it between every process and
machine, which a scaled-out deployment needs so a JWKS is fetched once, not once per worker.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask_caching import Cache

cache = Cache()


def cache_config(url: str) -> dict:
    """Flask-Caching settings for a cache URL."""
    scheme = urlsplit(url).scheme
    if scheme in ("redis", "rediss"):
        return {
            "CACHE_TYPE": "RedisCache",
            "CACHE_REDIS_URL": url,
            "CACHE_KEY_PREFIX": "npqsl:",
            "CACHE_DEFAULT_TIMEOUT": 3600,
        }
    if scheme == "null":
        return {"CACHE_TYPE": "NullCache"}
    return {
        "CACHE_TYPE": "SimpleCache",
        "CACHE_DEFAULT_TIMEOUT": 3600,
        "CACHE_THRESHOLD": 10_000,
    }
