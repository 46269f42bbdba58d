"""Signed statements: a JWS attachment whose payload is the statement as it was signed.

The LRS checks what it can: the JWS is well formed, signed with RS256/384/512, its payload is
the statement it came with, and, when the header carries an X.509 chain (``x5c``), the signature
verifies with the first certificate's key.
"""

from __future__ import annotations

import base64
import json

import jwt
from cryptography import x509

from .errors import bad_request
from .store import same_statement

SIGNATURE_USAGE = "http://adlnet.gov/expapi/attachments/signature"
ALGORITHMS = ("RS256", "RS384", "RS512")


def signature_attachments(statement: dict) -> list[dict]:
    return [
        a
        for a in statement.get("attachments") or []
        if isinstance(a, dict) and a.get("usageType") == SIGNATURE_USAGE
    ]


def check_signed(statement: dict, index: int, parts: dict[str, tuple[str, bytes]]) -> None:
    """Refuse a signed statement whose signature is malformed or does not match it."""
    for attachment in signature_attachments(statement):
        field = f"statements[{index}].attachments"
        if attachment.get("contentType") != "application/octet-stream":
            raise bad_request(f"{field}: a signature attachment's contentType must be application/octet-stream")
        part = parts.get(attachment.get("sha2"))
        if part is None:
            raise bad_request(f"{field}: the signature attachment's content was not sent")
        _verify(statement, part[1], field)


def _verify(statement: dict, token: bytes, field: str) -> None:
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise bad_request(f"{field}: the signature is not a JWS in compact serialisation") from None
    if header.get("alg") not in ALGORITHMS:
        raise bad_request(
            f"{field}: the signature's algorithm must be RS256, RS384 or RS512, not {header.get('alg')!r}"
        )
    try:
        payload_b64 = token.split(b".")[1]
        payload = json.loads(base64.urlsafe_b64decode(payload_b64 + b"=" * (-len(payload_b64) % 4)))
    except (ValueError, IndexError):
        raise bad_request(f"{field}: the signature's payload is not a JSON statement") from None
    if not isinstance(payload, dict):
        raise bad_request(f"{field}: the signature's payload is not a JSON statement")
    chain = header.get("x5c")
    if chain:
        try:
            cert = x509.load_der_x509_certificate(base64.b64decode(chain[0]))
            jwt.api_jws.PyJWS().decode(token, cert.public_key(), algorithms=[header["alg"]])
        except (jwt.PyJWTError, ValueError, TypeError):
            raise bad_request(
                f"{field}: the signature does not verify with the key in its x5c certificate"
            ) from None
    signed = {k: v for k, v in payload.items() if k != "attachments"}
    sent = {k: v for k, v in statement.items() if k != "attachments"}
    if "id" not in signed:
        sent.pop("id", None)
    if not same_statement(signed, sent) or not same_statement(sent, signed):
        raise bad_request(f"{field}: the signature's payload is not the statement it is attached to")
