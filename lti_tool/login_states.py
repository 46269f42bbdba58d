"""OIDC login states: signed by the tool, carried by the platform, used once.

A login writes nothing. Its state is a token the tool signs (HMAC-SHA256 under a key derived from
the secret key) that carries what the launch needs: the login's id, the platform, the expiry, the
login request's parameters (``target_link_uri`` among them) and the storage target. The nonce and
the browser secret (the state cookie's value, or the postMessage store's) are derived from the id
under the same key, so nobody without the key can compute them from a state they have seen.

The login is used once because its id becomes the id of the launch it completes: the launch row
is written with ``ON CONFLICT DO NOTHING`` in the launch's own transaction (lti_tool/launch.py),
so of two copies of the same launch (a replay, or a race) only one can be recorded, on SQLite
or PostgreSQL, by any process on any machine sharing the database.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import time
import uuid
from dataclasses import dataclass

from sqlalchemy import text

from .db import Database
from .errors import LaunchError

# The longest state issued or read; a login whose parameters would make a longer one is refused.
MAX_STATE_LENGTH = 2048
# The longest a login may live (settings: launch.login_ttl_seconds); purges keep launches longer.
MAX_TTL_SECONDS = 3600
_MAC_BYTES = 16
_WAS_USED = text("SELECT 1 FROM launches WHERE id = :id")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


@dataclass(frozen=True)
class NewLogin:
    """What a login hands out: the state and nonce to the platform, the secret to the browser."""

    id: str
    state: str
    nonce: str
    browser_secret: str


@dataclass(frozen=True)
class PendingLogin:
    """A state whose signature and expiry were checked; ``bound_to`` checks the browser."""

    id: str
    state: str
    nonce: str
    platform_id: int
    expires_at: int
    login_params: dict[str, str]
    storage_target: str | None
    browser_secret: str

    @property
    def target_link_uri(self) -> str:
        return self.login_params["target_link_uri"]

    def bound_to(self, secret: str | None) -> bool:
        return bool(secret) and hmac.compare_digest(secret, self.browser_secret)


class LoginStates:
    """Issues and reads the signed states of one tool (every process sharing its secret key)."""

    def __init__(self, secret_key: str, ttl_seconds: int):
        if not 0 < ttl_seconds <= MAX_TTL_SECONDS:
            raise ValueError(f"a login lives 1 to {MAX_TTL_SECONDS} seconds, not {ttl_seconds}")
        self._key = hmac.digest(secret_key.encode(), b"npqsl-lti.login-state", "sha256")
        self.ttl_seconds = ttl_seconds

    def _derive(self, purpose: bytes, login_id: str, size: int) -> str:
        return _b64(hmac.digest(self._key, purpose + login_id.encode(), "sha256")[:size])

    def start(
        self,
        *,
        platform_id: int,
        login_params: dict[str, str],
        storage_target: str | None,
        now: float | None = None,
    ) -> NewLogin:
        """A new login's state, nonce and browser secret; ``login_params`` must name the target."""
        login_id = str(uuid.uuid4())
        expires_at = int(time.time() if now is None else now) + self.ttl_seconds
        payload = [platform_id, expires_at, login_params, storage_target]
        signed = login_id + "." + _b64(json.dumps(payload, separators=(",", ":")).encode())
        state = signed + "." + _b64(hmac.digest(self._key, signed.encode(), "sha256")[:_MAC_BYTES])
        if len(state) > MAX_STATE_LENGTH:
            raise LaunchError(
                "bad_login_request", f"login parameters too long ({len(state)} > {MAX_STATE_LENGTH})"
            )
        return NewLogin(
            login_id,
            state,
            self._derive(b"nonce:", login_id, 18),
            self._derive(b"browser:", login_id, 32),
        )

    def read(self, state: str, now: float | None = None) -> PendingLogin:
        """The login a state stands for, or the reason it cannot be used."""
        if len(state) > MAX_STATE_LENGTH:
            raise LaunchError("unknown_state", "state longer than any the tool issues")
        signed, _, mac = state.rpartition(".")
        expected = _b64(hmac.digest(self._key, signed.encode("utf-8", "surrogatepass"), "sha256")[:_MAC_BYTES])
        if not signed or not hmac.compare_digest(mac.encode("utf-8", "surrogatepass"), expected.encode()):
            raise LaunchError("unknown_state", f"state={state[:12]}… not signed by this tool")
        login_id, _, body = signed.partition(".")
        try:
            platform_id, expires_at, login_params, storage_target = json.loads(_unb64(body))
        except (ValueError, TypeError, binascii.Error):  # pragma: no cover - signed by us, so well formed
            raise LaunchError("unknown_state", "state payload unreadable") from None
        if expires_at <= (time.time() if now is None else now):
            raise LaunchError("login_expired", f"login {login_id} expired at {expires_at}")
        return PendingLogin(
            login_id,
            state,
            self._derive(b"nonce:", login_id, 18),
            platform_id,
            expires_at,
            login_params,
            storage_target,
            self._derive(b"browser:", login_id, 32),
        )


def state_id(state: str) -> str:
    """The login id at the front of a state (unchecked: for naming its cookie and storage key)."""
    return state.partition(".")[0]


def was_used(db: Database, login_id: str) -> bool:
    """Whether a launch completed this login already."""
    with db.engine.connect() as conn:
        return conn.execute(_WAS_USED, {"id": login_id}).first() is not None
