"""The tool's own RSA keys: generated on first run, kept in the database, published as a JWKS.

Keys are parsed once into key objects and reused for every signature: re-parsing a PEM per
signature (as pylti1p3 does) costs tens of milliseconds each time. Rotation adds a new signing
key and keeps the previous ones published for a grace period, so platforms that cached the old
JWKS can still verify what was signed just before the switch.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import select

from .db import Database
from .models import ToolKey, utcnow

KEY_SIZE = 2048
# Processes re-read the key table this often, so a rotation made by the CLI reaches them.
RELOAD_SECONDS = 30.0


def _b64uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def public_jwk(public_key: rsa.RSAPublicKey, kid: str) -> dict[str, str]:
    """The JWK form of an RSA public key, as platforms expect it in a JWKS."""
    numbers = public_key.public_numbers()
    return {
        "kty": "RSA",
        "alg": "RS256",
        "use": "sig",
        "kid": kid,
        "n": _b64uint(numbers.n),
        "e": _b64uint(numbers.e),
    }


def thumbprint_kid(public_key: rsa.RSAPublicKey) -> str:
    """An RFC 7638 thumbprint, so a kid says which key it is and never collides by accident."""
    jwk = public_jwk(public_key, "")
    canonical = json.dumps({"e": jwk["e"], "kty": "RSA", "n": jwk["n"]}, separators=(",", ":"))
    return base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_key: rsa.RSAPrivateKey
    created_at: datetime
    retired_at: datetime | None

    @property
    def jwk(self) -> dict[str, str]:
        return public_jwk(self.private_key.public_key(), self.kid)


def generate_key() -> tuple[str, str]:
    """A new RSA key as (kid, PKCS#8 PEM)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_SIZE)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")
    return thumbprint_kid(key.public_key()), pem


def ensure_signing_key(db: Database) -> bool:
    """Create the first signing key if there is none; True when one was created."""
    with db.transaction() as session:
        if session.scalar(select(ToolKey.id).where(ToolKey.retired_at.is_(None)).limit(1)):
            return False
        kid, pem = generate_key()
        session.add(ToolKey(kid=kid, private_pem=pem))
        return True


def rotate(db: Database) -> str:
    """Add a new signing key, retire the current ones (still published), return the new kid."""
    kid, pem = generate_key()
    now = utcnow()
    with db.transaction() as session:
        for key in session.scalars(select(ToolKey).where(ToolKey.retired_at.is_(None))):
            key.retired_at = now
        session.add(ToolKey(kid=kid, private_pem=pem, created_at=now))
    return kid


def purge_expired(db: Database, grace: timedelta) -> int:
    """Delete retired keys past their grace period; returns how many went."""
    cutoff = utcnow() - grace
    with db.transaction() as session:
        expired = list(
            session.scalars(select(ToolKey).where(ToolKey.retired_at.is_not(None), ToolKey.retired_at < cutoff))
        )
        for key in expired:
            session.delete(key)
        return len(expired)


class KeyRing:
    """The loaded keys of one process: sign with the current key, publish current + recent ones."""

    def __init__(self, db: Database, grace: timedelta):
        self._db = db
        self._grace = grace
        self._lock = threading.Lock()
        self._keys: list[SigningKey] = []
        self._loaded_at = 0.0
        self._parsed: dict[str, rsa.RSAPrivateKey] = {}

    def _load(self) -> list[SigningKey]:
        now = time.monotonic()
        if self._keys and now - self._loaded_at < RELOAD_SECONDS:
            return self._keys
        with self._lock:
            if self._keys and now - self._loaded_at < RELOAD_SECONDS:
                return self._keys
            with self._db.sessions() as session:
                rows = list(session.scalars(select(ToolKey).order_by(ToolKey.created_at, ToolKey.id)))
            keys = []
            for row in rows:
                private_key = self._parsed.get(row.kid)
                if private_key is None:
                    private_key = serialization.load_pem_private_key(row.private_pem.encode(), password=None)
                    self._parsed[row.kid] = private_key
                keys.append(SigningKey(row.kid, private_key, row.created_at, row.retired_at))
            self._keys = keys
            self._loaded_at = now
            return keys

    def reload(self) -> None:
        """Forget the loaded list so the next use reads the table again."""
        self._loaded_at = 0.0

    @property
    def current(self) -> SigningKey:
        """The newest key that is not retired."""
        active = [k for k in self._load() if k.retired_at is None]
        if not active:
            raise RuntimeError("the tool has no signing key: run `npqsl-lti db upgrade` (it creates one)")
        return active[-1]

    def all(self) -> list[SigningKey]:
        """Every key in the table, oldest first."""
        return list(self._load())

    def published(self) -> list[SigningKey]:
        """Keys in the JWKS: every active key and retired ones still inside the grace period."""
        cutoff = utcnow() - self._grace
        return [k for k in self._load() if k.retired_at is None or k.retired_at >= cutoff]

    def jwks(self) -> dict[str, Any]:
        return {"keys": [k.jwk for k in self.published()]}

    def sign(self, claims: dict[str, Any], headers: dict[str, Any] | None = None) -> str:
        """An RS256 JWT signed with the current key object (never a re-parsed PEM)."""
        key = self.current
        return jwt.encode(
            claims,
            key.private_key,
            algorithm="RS256",
            headers={**(headers or {}), "kid": key.kid},
        )
