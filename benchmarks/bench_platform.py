"""A lean LTI 1.3 test platform for benchmarks/launch.py, run as a process of its own.

    python benchmarks/bench_platform.py --port P --client-id C --deployment-id D \
        --redirect-uri URL [--redirect-uri URL ...]

Cheap per request so that it is never what limits a benchmark: Python's ThreadingHTTPServer
(HTTP/1.1 keep-alive, one thread per connection, no access log), the platform's RSA key parsed
once, the JWKS document serialised once, and the id_token signed with ``cryptography`` directly
(RS256 over a hand-built header and claims, no JWT library).

Endpoints (all on 127.0.0.1):

- ``GET|POST /auth``: the OIDC authorization endpoint. It checks the request the way a platform
  must (scope, response_type, response_mode, prompt, client_id, a registered redirect_uri, state,
  nonce, a login_hint naming a known user) and answers with an auto-posting form carrying an
  id_token for that user, signed with the nonce from the request. A bad request gets HTTP 400.
- ``GET /jwks/<name>``: the platform's key set; each tool is given its own ``<name>`` so the
  fetches can be counted per tool.
- ``GET /_stats`` and ``POST /_latency?ms=X``: for the harness (counters; the delay added to
  ``/auth`` and ``/jwks``, modelling a VLE across a network). These two are never delayed.

It prints ``ready <port>`` on stdout once it listens.
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import sys
import threading
import time
from html import escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
LEARNER = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"
# login_hint values the platform knows: one user per simulated browser.
USER_HINT = re.compile(r"user-(\d{1,6})")
ID_TOKEN_LIFETIME = 300
EXPECTED = {"scope": "openid", "response_type": "id_token", "response_mode": "form_post", "prompt": "none"}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _uint(value: int) -> str:
    return b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


class Platform:
    """The platform's state: key, registration, counters, the added latency."""

    def __init__(self, *, issuer: str, client_id: str, deployment_id: str, redirect_uris: list[str]):
        self.issuer = issuer
        self.client_id = client_id
        self.deployment_id = deployment_id
        self.redirect_uris = frozenset(redirect_uris)
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "bench-platform-1"
        numbers = self.key.public_key().public_numbers()
        jwk = {
            "kty": "RSA",
            "alg": "RS256",
            "use": "sig",
            "kid": self.kid,
            "n": _uint(numbers.n),
            "e": _uint(numbers.e),
        }
        self.jwks_body = json.dumps({"keys": [jwk]}).encode()
        self.header_b64 = b64url(json.dumps({"alg": "RS256", "typ": "JWT", "kid": self.kid}).encode())
        self.latency = 0.0
        self.lock = threading.Lock()
        self.jwks_requests: dict[str, int] = {}
        self.auth_requests = 0
        self.auth_refused = 0

    def id_token(self, *, user: int, nonce: str, redirect_uri: str) -> str:
        now = int(time.time())
        name = f"Learner {user}"
        claims = {
            "iss": self.issuer,
            "aud": self.client_id,
            "sub": f"user-{user}",
            "iat": now,
            "exp": now + ID_TOKEN_LIFETIME,
            "nonce": nonce,
            "name": name,
            "given_name": "Learner",
            "family_name": str(user),
            "email": f"learner{user}@example.org",
            CLAIM + "message_type": "LtiResourceLinkRequest",
            CLAIM + "version": "1.3.0",
            CLAIM + "deployment_id": self.deployment_id,
            CLAIM + "target_link_uri": redirect_uri,
            CLAIM + "roles": [LEARNER],
            CLAIM + "context": {"id": "course-1", "title": "NPQSL Cohort 2026"},
            CLAIM + "resource_link": {"id": "rl-1", "title": "Closing the Gap"},
        }
        signing_input = f"{self.header_b64}.{b64url(json.dumps(claims, separators=(',', ':')).encode())}"
        signature = self.key.sign(signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{b64url(signature)}"

    def authorize(self, args: dict[str, str]) -> tuple[int, str, bytes]:
        """The OIDC authorization endpoint: (status, content type, body)."""
        with self.lock:
            self.auth_requests += 1
        problem = None
        for key, value in EXPECTED.items():
            if args.get(key) != value:
                problem = f"{key} must be {value}"
                break
        else:
            if args.get("client_id") != self.client_id:
                problem = "unknown client_id"
            elif args.get("redirect_uri") not in self.redirect_uris:
                problem = "redirect_uri not registered"
            elif not args.get("state") or not args.get("nonce"):
                problem = "state and nonce are required"
        match = USER_HINT.fullmatch(args.get("login_hint", ""))
        if problem is None and match is None:
            problem = "login_hint names no user"
        if problem is not None:
            with self.lock:
                self.auth_refused += 1
            body = json.dumps({"error": "invalid_request", "detail": problem}).encode()
            return 400, "application/json", body
        redirect_uri = args["redirect_uri"]
        token = self.id_token(user=int(match.group(1)), nonce=args["nonce"], redirect_uri=redirect_uri)
        html = (
            f'<!doctype html><html><body><form id="lti" method="post" action="{escape(redirect_uri)}">'
            f'<input type="hidden" name="id_token" value="{token}">'
            f'<input type="hidden" name="state" value="{escape(args["state"])}">'
            "</form><script>document.getElementById('lti').submit()</script></body></html>"
        )
        return 200, "text/html; charset=utf-8", html.encode()

    def stats(self) -> bytes:
        with self.lock:
            data = {
                "jwks_requests": dict(self.jwks_requests),
                "auth_requests": self.auth_requests,
                "auth_refused": self.auth_refused,
                "latency_ms": self.latency * 1000,
            }
        return json.dumps(data).encode()


def make_handler(platform: Platform) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive
        # The headers and the body go out in two writes; with Nagle on, the second waits for the
        # client's delayed ACK (40 ms) on a kept-alive connection.
        disable_nagle_algorithm = True
        server_version = "bench-platform"
        sys_version = ""

        def log_message(self, format, *args):  # noqa: A002 - the base class's name
            pass  # no access log: it would cost more than the platform's own work

        def _send(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def _body(self) -> str:
            length = int(self.headers.get("Content-Length") or 0)
            if length > 65536:
                raise ValueError("body too large")
            return self.rfile.read(length).decode("ascii", "replace") if length else ""

        def _route(self, method: str) -> None:
            parts = urlsplit(self.path)
            path = parts.path
            if path == "/_stats":
                self._send(200, "application/json", platform.stats())
                return
            if path == "/_latency" and method == "POST":
                ms = float(parse_qs(parts.query).get("ms", ["0"])[0])
                platform.latency = max(0.0, min(ms, 5000.0)) / 1000
                self._send(200, "application/json", platform.stats())
                return
            if path == "/auth" or path.startswith("/jwks/"):
                if platform.latency:
                    time.sleep(platform.latency)
                if path == "/auth":
                    query = parts.query if method == "GET" else self._body()
                    args = {k: v[0] for k, v in parse_qs(query).items()}
                    self._send(*platform.authorize(args))
                else:
                    name = path[len("/jwks/") :]
                    with platform.lock:
                        platform.jwks_requests[name] = platform.jwks_requests.get(name, 0) + 1
                    self._send(200, "application/json", platform.jwks_body)
                return
            self._send(404, "text/plain", b"not found")

        def do_GET(self):  # noqa: N802 - the base class's name
            self._route("GET")

        def do_POST(self):  # noqa: N802 - the base class's name
            self._route("POST")

    return Handler


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # listen backlog: every client thread and tool may connect at once


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--deployment-id", required=True)
    parser.add_argument("--redirect-uri", action="append", required=True, help="a tool's launch URL (repeat)")
    args = parser.parse_args(argv)
    issuer = f"http://127.0.0.1:{args.port}"
    platform = Platform(
        issuer=issuer, client_id=args.client_id, deployment_id=args.deployment_id, redirect_uris=args.redirect_uri
    )
    server = Server(("127.0.0.1", args.port), make_handler(platform))
    print(f"ready {server.server_port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
