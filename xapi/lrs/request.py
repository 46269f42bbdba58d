"""One LRS request, as the handlers see it, whichever syntax it came in.

xAPI 1.0.3's alternate request syntax (for browsers that cannot send arbitrary methods or
headers) tunnels a request through a form POST: ``?method=PUT`` in the query string and the
headers, parameters and body (``content``) as form fields. xAPI 2.0 dropped it, so a 2.0 request
with ``method`` is refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from flask import Request
from werkzeug.datastructures import Headers, MultiDict

from .errors import bad_request

SUPPORTED_VERSION = re.compile(r"(?:1\.0(?:\.[0-3])?|2\.0\.0)\Z")
FORM_HEADERS = {
    "authorization": "Authorization",
    "x-experience-api-version": "X-Experience-API-Version",
    "content-type": "Content-Type",
    "content-length": "Content-Length",
    "if-match": "If-Match",
    "if-none-match": "If-None-Match",
}
TUNNELLED_METHODS = {"GET", "HEAD", "PUT", "POST", "DELETE"}


@dataclass
class XapiRequest:
    method: str
    headers: Headers
    args: MultiDict
    body: bytes
    content_type: str
    version: str = ""
    alternate: bool = False
    credential: object = field(default=None)

    @property
    def is_v2(self) -> bool:
        return self.version.startswith("2.")

    @property
    def mimetype(self) -> str:
        return self.content_type.split(";", 1)[0].strip().lower()

    def text(self) -> str:
        try:
            return self.body.decode("utf-8")
        except UnicodeDecodeError:
            raise bad_request("body: must be UTF-8 encoded") from None


def from_flask(request: Request) -> XapiRequest:
    """Read the Flask request, unwrapping the alternate syntax."""
    method = request.args.get("method")
    if method is None or request.method != "POST":
        if method is not None:
            raise bad_request("method: the alternate request syntax is only sent as a POST")
        return XapiRequest(
            method=request.method,
            headers=Headers(request.headers),
            args=MultiDict(request.args),
            body=request.get_data(cache=False),
            content_type=request.headers.get("Content-Type", ""),
        )
    return _alternate(request, method)


def _alternate(request: Request, method: str) -> XapiRequest:
    headers = Headers(request.headers)
    version = headers.get("X-Experience-API-Version", "")
    if set(request.args) != {"method"}:
        extra = ", ".join(sorted(set(request.args) - {"method"}))
        raise bad_request(f"{extra}: the alternate request syntax takes only 'method' in the query string")
    if (request.mimetype or "") != "application/x-www-form-urlencoded":
        raise bad_request(
            "Content-Type: the alternate request syntax needs an application/x-www-form-urlencoded body"
        )
    try:
        form = parse_qsl(
            request.get_data(cache=False).decode("utf-8"), keep_blank_values=True, strict_parsing=False
        )
    except UnicodeDecodeError:
        raise bad_request("body: the form must be UTF-8 encoded") from None
    args, body, content_type = MultiDict(), None, "application/json"
    for name, value in form:
        header = FORM_HEADERS.get(name.lower())
        if name == "content":
            body = value
        elif header is not None:
            headers[header] = value
            if header == "Content-Type":
                content_type = value
        else:
            args.add(name, value)
    version = headers.get("X-Experience-API-Version", version)
    if version.startswith("2."):
        raise bad_request("method: xAPI 2.0 has no alternate request syntax")
    method = method.upper()
    if method not in TUNNELLED_METHODS:
        raise bad_request(f"method: {method!r} is not an xAPI method")
    if body is None and method in ("PUT", "POST"):
        raise bad_request("content: the alternate request syntax sends the body as the form field 'content'")
    return XapiRequest(
        method=method,
        headers=headers,
        args=args,
        body=(body or "").encode("utf-8"),
        content_type=content_type,
        alternate=True,
    )
