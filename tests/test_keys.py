"""The tool's signing keys: RS256 JWTs platforms can verify, parsed once, private parts kept private."""

from __future__ import annotations

from datetime import timedelta

import jwt
import jwt.algorithms
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwcrypto import jwk as jwcrypto_jwk
from sqlalchemy import select, update

from lti_tool import keys
from lti_tool.db import Database
from lti_tool.models import ToolKey, utcnow

GRACE = timedelta(days=7)
PRIVATE_JWK_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}

# RFC 7638 section 3.1: this public key's SHA-256 thumbprint.
RFC7638_N = (
    "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMs"
    "tn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5"
    "hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
)
RFC7638_THUMBPRINT = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


@pytest.fixture
def keyed(database):
    """A migrated database with the tool's first signing key."""
    assert keys.ensure_signing_key(database)
    return database


def verify(token: str, ring: keys.KeyRing, audience: str = "https://platform.example/token") -> dict:
    """Verify a token the way a platform does: pick the JWK by kid from the published JWKS."""
    kid = jwt.get_unverified_header(token)["kid"]
    published = {k["kid"]: k for k in ring.jwks()["keys"]}
    assert kid in published, f"{kid} is not in the JWKS"
    return jwt.decode(token, jwt.PyJWK(published[kid]).key, algorithms=["RS256"], audience=audience)


def test_the_keyring_signs_rs256_jwts_verifiable_with_the_published_jwk(keyed):
    ring = keys.KeyRing(keyed, GRACE)
    token = ring.sign({"iss": "client-a", "aud": "https://platform.example/token", "jti": "1"}, {"typ": "JWT"})
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "RS256" and header["typ"] == "JWT"
    assert header["kid"] == ring.current.kid
    assert verify(token, ring)["jti"] == "1"

    other = keys.KeyRing(keyed, GRACE)
    tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    with pytest.raises(jwt.InvalidSignatureError):
        verify(tampered, other)


def test_the_published_jwk_is_a_public_rs256_signing_key(keyed):
    [published] = keys.KeyRing(keyed, GRACE).jwks()["keys"]
    assert set(published) == {"kty", "alg", "use", "kid", "n", "e"}
    assert published["kty"] == "RSA" and published["alg"] == "RS256" and published["use"] == "sig"
    assert not PRIVATE_JWK_MEMBERS & set(published)
    assert jwt.PyJWK(published).key.key_size == keys.KEY_SIZE


def test_the_kid_is_the_rfc_7638_thumbprint(keyed):
    example = rsa.RSAPublicNumbers(65537, int.from_bytes(jwt.utils.base64url_decode(RFC7638_N), "big"))
    assert keys.thumbprint_kid(example.public_key()) == RFC7638_THUMBPRINT

    ring = keys.KeyRing(keyed, GRACE)
    [published] = ring.jwks()["keys"]
    independent = jwcrypto_jwk.JWK(kty="RSA", n=published["n"], e=published["e"]).thumbprint()
    assert ring.current.kid == published["kid"] == independent


def test_the_private_key_is_stored_in_the_database_and_never_published(keyed):
    ring = keys.KeyRing(keyed, GRACE)
    with keyed.sessions() as session:
        [row] = session.scalars(select(ToolKey)).all()
    assert row.kid == ring.current.kid
    assert row.private_pem.startswith("-----BEGIN PRIVATE KEY-----")
    stored = serialization.load_pem_private_key(row.private_pem.encode(), password=None)
    assert keys.thumbprint_kid(stored.public_key()) == row.kid
    jwks_text = str(ring.jwks())
    assert "PRIVATE" not in jwks_text
    private = stored.private_numbers()
    assert jwt.utils.to_base64url_uint(private.d).decode() not in jwks_text


@pytest.fixture
def pem_loads(monkeypatch):
    """Count every PEM private-key parse, by the tool or by PyJWT handed a PEM string."""
    calls: list[int] = []
    real = serialization.load_pem_private_key

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(keys.serialization, "load_pem_private_key", counting)
    monkeypatch.setattr(jwt.algorithms, "load_pem_private_key", counting)
    return calls


def test_a_pem_is_parsed_once_per_process_not_per_signature(keyed, pem_loads):
    ring = keys.KeyRing(keyed, GRACE)
    first = ring.sign({"n": 0})
    parsed = ring.current.private_key
    for n in range(1, 25):
        verify(ring.sign({"n": n, "aud": "x"}), ring, audience="x")
        if n % 5 == 0:
            ring.reload()  # re-reading the table must not re-parse keys already loaded
    assert len(pem_loads) == 1
    assert ring.current.private_key is parsed
    assert jwt.get_unverified_header(first)["kid"] == ring.current.kid

    new_kid = keys.rotate(keyed)
    ring.reload()
    verify(ring.sign({"aud": "x"}), ring, audience="x")
    assert ring.current.kid == new_kid
    assert len(pem_loads) == 2, "only the new key is parsed after a rotation"

    # The counter does see a PEM parsed per signature, the way pylti1p3 signs.
    with keyed.sessions() as session:
        pem = session.scalar(select(ToolKey.private_pem).where(ToolKey.kid == new_kid))
    jwt.encode({"n": 1}, pem, algorithm="RS256")
    assert len(pem_loads) == 3


def test_a_second_keyring_picks_up_a_rotation_after_reload(database_url, keyed):
    other_process = Database(database_url)
    try:
        here = keys.KeyRing(keyed, GRACE)
        there = keys.KeyRing(other_process, GRACE)
        old_kid = there.current.kid
        assert here.current.kid == old_kid

        new_kid = keys.rotate(keyed)
        assert there.current.kid == old_kid, "keys are cached between reloads"
        there.reload()
        assert there.current.kid == new_kid
        assert {k["kid"] for k in there.jwks()["keys"]} == {old_kid, new_kid}
        # What the other instance signs now, this one verifies once it reloads too.
        token = there.sign({"aud": "x"})
        here.reload()
        assert verify(token, here, audience="x")["aud"] == "x"
    finally:
        other_process.dispose()


def test_ensure_signing_key_creates_one_key_only(database):
    assert keys.ensure_signing_key(database) is True
    assert keys.ensure_signing_key(database) is False
    with database.sessions() as session:
        assert len(session.scalars(select(ToolKey)).all()) == 1


def test_a_keyring_without_keys_says_how_to_create_one(database):
    with pytest.raises(RuntimeError, match="npqsl-lti db upgrade"):
        keys.KeyRing(database, GRACE).current  # noqa: B018 - the property is what is tested


def test_retired_keys_are_published_for_the_grace_period_then_purged(keyed):
    ring = keys.KeyRing(keyed, GRACE)
    first = ring.current.kid
    second = keys.rotate(keyed)
    third = keys.rotate(keyed)
    with keyed.transaction() as session:
        session.execute(
            update(ToolKey).where(ToolKey.kid == first).values(retired_at=utcnow() - GRACE - timedelta(minutes=1))
        )
    ring.reload()
    assert ring.current.kid == third
    assert [k.kid for k in ring.published()] == [second, third]
    assert [k.kid for k in ring.all()] == [first, second, third]
    assert keys.purge_expired(keyed, GRACE) == 1
    assert keys.purge_expired(keyed, GRACE) == 0
    ring.reload()
    assert [k.kid for k in ring.all()] == [second, third]
