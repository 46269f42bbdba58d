"""A test platform with a realistic Names and Role Provisioning Service (NRPS 2.0).

On top of TestPlatform it serves each course's memberships at
``/nrps/contexts/<context_id>/memberships`` the way the spec describes and Moodle/Canvas behave:

- the bearer token must be one its token endpoint issued, for a scope set that includes
  ``contextmembership.readonly`` (401 for an unknown token, 403 for a missing scope);
- members come in pages (the ``limit`` parameter, else ``page_size``) linked with
  ``Link: <...>; rel="next"``;
- every answer offers ``rel="differences"`` (unless ``offer_differences`` is off): a URL that
  returns only the members added, changed, made Inactive or Deleted since that answer;
- launches carry the ``namesroleservice`` claim pointing at it unless ``nrps_enabled`` is off,
  and then the endpoint answers 404 as well;
- ``fault`` makes it misbehave ("not_json", "loop", "foreign_link", "server_error").

Every request it receives is kept in ``nrps_requests`` so tests can count HTTP calls.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any
from urllib.parse import quote, unquote, urlencode

from werkzeug.wrappers import Request, Response

from .platform_emulator import LEARNER, LaunchSpec, TestPlatform

NRPS_CLAIM = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"
NRPS_SCOPE = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
MEDIA_TYPE = "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"
PREFIX = "/nrps/contexts/"
SUFFIX = "/memberships"


class NrpsPlatform(TestPlatform):
    """TestPlatform plus course memberships served over NRPS."""

    __test__ = False

    def __init__(self, *args: Any, page_size: int = 2, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.nrps_enabled = True
        self.offer_differences = True
        self.page_size = page_size
        self.max_page_size = 100
        self.fault: str | None = None
        self.course_titles: dict[str, str] = {"course-1": "NPQSL Cohort 2026"}
        # context id -> user_id -> member as the platform holds it (Deleted ones included).
        self.rosters: dict[str, dict[str, dict]] = {}
        # context id -> user_id -> the version at which that member last changed.
        self.changed_at: dict[str, dict[str, int]] = {}
        self.version = 0
        self.issued_tokens: dict[str, set[str]] = {}
        self.nrps_requests: list[dict] = []

    # -- what tests ask of it ------------------------------------------------------------
    def memberships_url(self, context_id: str = "course-1") -> str:
        return f"{self.base_url}{PREFIX}{quote(context_id, safe='')}{SUFFIX}"

    def add_member(
        self,
        user_id: str,
        roles: list[str] | None = None,
        *,
        name: str | None = None,
        email: str | None = None,
        status: str = "Active",
        context_id: str = "course-1",
    ) -> dict:
        member: dict[str, Any] = {"user_id": user_id, "roles": list(roles or [LEARNER]), "status": status}
        if name:
            member["name"] = name
            member["given_name"], _, member["family_name"] = name.partition(" ")
        if email:
            member["email"] = email
        self._store(context_id, member)
        return member

    def update_member(self, user_id: str, context_id: str = "course-1", **changes: Any) -> dict:
        member = {**self.rosters[context_id][user_id], **changes}
        self._store(context_id, member)
        return member

    def remove_member(self, user_id: str, context_id: str = "course-1") -> None:
        self._store(context_id, {"user_id": user_id, "roles": [], "status": "Deleted"})

    def revoke_tokens(self) -> None:
        """Forget every access token issued, as a platform does when they expire early."""
        self.issued_tokens.clear()

    def _store(self, context_id: str, member: dict) -> None:
        self.version += 1
        self.rosters.setdefault(context_id, {})[member["user_id"]] = member
        self.changed_at.setdefault(context_id, {})[member["user_id"]] = self.version

    # -- launches carry the NRPS claim -----------------------------------------------------
    def id_token(self, spec: LaunchSpec, *, nonce: str | None, target_link_uri: str) -> str:
        context = spec.context or {}
        if self.nrps_enabled and context.get("id") and NRPS_CLAIM not in spec.extra_claims:
            claim = {"context_memberships_url": self.memberships_url(context["id"]), "service_versions": ["2.0"]}
            spec = dataclasses.replace(spec, extra_claims={**spec.extra_claims, NRPS_CLAIM: claim})
        return super().id_token(spec, nonce=nonce, target_link_uri=target_link_uri)

    # -- HTTP ----------------------------------------------------------------------------
    def _wsgi(self, environ, start_response):
        request = Request(environ)
        if request.path.startswith(PREFIX) and request.path.endswith(SUFFIX):
            if not self.available:
                return Response("platform down", status=503)(environ, start_response)
            return self._nrps(request)(environ, start_response)
        return super()._wsgi(environ, start_response)

    def _token(self, request: Request) -> Response:
        response = super()._token(request)
        if response.status_code == 200:
            data = json.loads(response.get_data())
            self.issued_tokens[data["access_token"]] = set(data.get("scope", "").split())
        return response

    def _nrps(self, request: Request) -> Response:
        args = request.args.to_dict()
        self.nrps_requests.append({"path": request.path, "args": args, "accept": request.headers.get("Accept")})
        if not self.nrps_enabled:
            return Response("not found", status=404)
        auth = request.headers.get("Authorization", "")
        token = auth[len("Bearer ") :] if auth.startswith("Bearer ") else ""
        if token not in self.issued_tokens:
            return self._json({"error": "invalid_token"}, 401)
        if NRPS_SCOPE not in self.issued_tokens[token]:
            return self._json({"error": "insufficient_scope"}, 403)
        if self.fault == "server_error":
            return self._json({"error": "database is away"}, 500)
        context_id = unquote(request.path[len(PREFIX) : -len(SUFFIX)])
        if context_id not in self.rosters:
            return self._json({"error": "no such context"}, 404)
        if self.fault == "not_json":
            return Response("<html>Service temporarily unavailable</html>", content_type="text/html")

        try:
            limit = min(int(args.get("limit") or self.page_size), self.max_page_size)
            offset = int(args.get("offset") or 0)
            # The version the answer describes: kept across pages so differences miss nothing.
            as_of = int(args.get("v") or self.version)
            since = int(args["since"]) if "since" in args else None
        except ValueError:
            return self._json({"error": "bad parameter"}, 400)
        roster = self.rosters[context_id]
        changed = self.changed_at[context_id]
        if since is None:
            chosen = [m for m in roster.values() if m["status"] != "Deleted"]
        else:
            chosen = [m for uid, m in roster.items() if changed[uid] > since]
        page = chosen[offset : offset + limit]

        links = []
        base = self.memberships_url(context_id)
        keep = {"since": since} if since is not None else {}
        if self.fault == "loop":
            links.append(f'<{request.url}>; rel="next"')
        elif self.fault == "foreign_link":
            links.append('<http://elsewhere.invalid/steal>; rel="next"')
        elif offset + limit < len(chosen):
            query = urlencode({**keep, "limit": limit, "offset": offset + limit, "v": as_of})
            links.append(f'<{base}?{query}>; rel="next"')
        if self.offer_differences:
            links.append(f'<{base}?{urlencode({"since": as_of})}>; rel="differences"')
        body = {
            "id": request.url,
            "context": {"id": context_id, "label": context_id, "title": self.course_titles.get(context_id, "")},
            "members": page,
        }
        response = Response(json.dumps(body), content_type=MEDIA_TYPE)
        if links:
            response.headers["Link"] = ", ".join(links)
        return response
