"""multipart/mixed bodies: statements with their attachments, both directions.

A request's first part is the statement JSON; each further part is one attachment's raw
content, named by its ``X-Experience-API-Hash`` header (the attachment's ``sha2``).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from werkzeug.http import parse_options_header

from .errors import bad_request

HASHES = {64: hashlib.sha256, 96: hashlib.sha384, 128: hashlib.sha512, 56: hashlib.sha224}


@dataclass(frozen=True)
class Part:
    headers: dict[str, str]  # lower-cased names
    content: bytes

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").strip()


def boundary_of(content_type: str) -> str:
    _mimetype, options = parse_options_header(content_type)
    boundary = options.get("boundary")
    if not boundary:
        raise bad_request("Content-Type: a multipart/mixed body needs a boundary parameter")
    return boundary


def parse(body: bytes, content_type: str) -> list[Part]:
    """The parts of a multipart/mixed body, refusing malformed framing."""
    delimiter = b"--" + boundary_of(content_type).encode("latin-1")
    chunks = body.split(delimiter)
    if len(chunks) < 3:
        raise bad_request("body: the multipart/mixed body has no parts between its boundaries")
    parts = []
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):
            break
        if not chunk.startswith(b"\r\n"):
            raise bad_request("body: each multipart boundary must be followed by CRLF")
        head, sep, content = chunk[2:].partition(b"\r\n\r\n")
        if not sep:
            if chunk[2:].startswith(b"\r\n"):
                head, content = b"", chunk[4:]
            else:
                raise bad_request("body: a multipart part has no blank line after its headers")
        if content.endswith(b"\r\n"):
            content = content[:-2]
        headers = {}
        for line in head.decode("latin-1").split("\r\n"):
            if line:
                name, colon, value = line.partition(":")
                if not colon:
                    raise bad_request(f"body: malformed multipart header line {line!r}")
                headers[name.strip().lower()] = value.strip()
        parts.append(Part(headers, content))
    return parts


def attachment_parts(parts: list[Part]) -> dict[str, tuple[str, bytes]]:
    """The attachment parts by their hash, each checked against its content."""
    found: dict[str, tuple[str, bytes]] = {}
    for part in parts:
        sha2 = part.headers.get("x-experience-api-hash")
        if not sha2:
            raise bad_request("X-Experience-API-Hash: every attachment part must carry its sha2 hash")
        if part.headers.get("content-transfer-encoding", "binary").lower() != "binary":
            raise bad_request("Content-Transfer-Encoding: attachment parts must be sent as binary")
        hasher = HASHES.get(len(sha2))
        if hasher is None or hasher(part.content).hexdigest() != sha2.lower():
            raise bad_request(f"X-Experience-API-Hash: {sha2} is not the SHA-2 hash of the part's content")
        found[sha2] = (part.content_type or "application/octet-stream", part.content)
    return found


def build(first_json: bytes, attachments: dict[str, tuple[str, bytes]]) -> tuple[bytes, str]:
    """A multipart/mixed response body and its Content-Type."""
    boundary = secrets.token_hex(16)
    chunks = [f"--{boundary}\r\nContent-Type: application/json\r\n\r\n".encode(), first_json]
    for sha2, (content_type, content) in attachments.items():
        chunks.append(
            f"\r\n--{boundary}\r\nContent-Type: {content_type}\r\nContent-Transfer-Encoding: binary\r\n"
            f"X-Experience-API-Hash: {sha2}\r\n\r\n".encode()
        )
        chunks.append(content)
    chunks.append(f"\r\n--{boundary}--\r\n".encode())
    return b"".join(chunks), f"multipart/mixed; boundary={boundary}"
