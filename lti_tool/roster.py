"""Course rosters from the platform's Names and Role Provisioning Service (NRPS).

A launch that carries the ``namesroleservice`` claim tells the tool where the course's
memberships live. The roster is fetched with the narrow ``contextmembership.readonly`` scope
through the tool's service connector (key-ring signed assertion, shared token cache), following
``Link: <...>; rel="next"`` from page to page. Every member's LTI roles are mapped once, here,
with ``roles.map_roles``; names and emails are kept only if the privacy settings allow.

The roster is kept in the shared cache per platform and course for ``nrps.roster_ttl_seconds``,
so several processes share one copy. When the platform offers a ``rel="differences"`` link, a
stale roster is refreshed by asking only for what changed since (added, changed, Inactive and
Deleted members) instead of reading every page again.

Anything that goes wrong (no NRPS in the launch, the platform down or refusing, an answer that
cannot be read or is absurdly large) raises ``RosterUnavailable`` with a sentence for the person
looking at the page, a hint for the administrator and a detail for the log. Nothing half-fetched
is ever cached.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
from pylti1p3.exception import LtiServiceException

from . import launch as launches
from .context import LaunchContext
from .db import Database
from .errors import LaunchError
from .platforms import PlatformInfo, get_platform
from .roles import ADMINISTRATOR, ASSESSOR, CANDIDATE, COACH, map_roles
from .settings import Settings

log = logging.getLogger(__name__)

NRPS_CLAIM = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"
NRPS_SCOPE = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
MEMBERSHIP_MEDIA_TYPE = "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"

# The largest single page of memberships read (after decompression), in bytes.
MAX_PAGE_BYTES = 8 * 1024 * 1024
# A stale roster with a differences link stays in the cache this long past its TTL, so the next
# refresh can ask for the changes only.
DIFFERENCES_KEEP_SECONDS = 3600
# Fields longer than this are cut (a name is not a novel).
MAX_FIELD_CHARS = 255
CACHE_FORMAT = 1

ACTIVE = "Active"
INACTIVE = "Inactive"
DELETED = "Deleted"


@dataclass(frozen=True)
class _Reason:
    message: str
    hint: str


REASONS: dict[str, _Reason] = {
    "no_course": _Reason(
        "This activity was not opened from a course, so there is no class list to show.",
        "The launch carried no context (course) claim; open the activity from inside a course.",
    ),
    "not_offered": _Reason(
        "Your course's VLE does not share its class list with this tool, so this page cannot "
        "show who is in the course.",
        "The launch carried no Names and Role Provisioning claim. In the VLE's settings for this "
        "tool, allow it to read course members (in Moodle: 'IMS LTI Names and Role Provisioning': "
        "'Use this service to retrieve members' information as per privacy settings'), then open "
        "the activity again from the course.",
    ),
    "launch_expired": _Reason(
        "This page has been open too long to fetch the class list. Open the activity again from the course.",
        "The launch this request belongs to has expired (NPQSL_LAUNCH_SESSION_TTL_SECONDS).",
    ),
    "platform_unreachable": _Reason(
        "The course's VLE did not answer when the tool asked for the class list. Please try again "
        "in a few minutes.",
        "The VLE's token or memberships endpoint could not be reached, timed out or answered with a "
        "server error; see the log line for the URL and status.",
    ),
    "refused": _Reason(
        "The course's VLE refused to share the class list with this tool.",
        "The VLE refused the access token request or the memberships request (see the log line for "
        "the status). Check the tool's registration in the VLE grants the Names and Role "
        "Provisioning scope, and that the tool's public key is the one the VLE has.",
    ),
    "bad_answer": _Reason(
        "The course's VLE sent a class list this tool could not read.",
        "The memberships response was not the NRPS JSON format (see the log line for what was wrong).",
    ),
    "too_large": _Reason(
        "The course's class list is larger than this tool will read.",
        "The memberships response went over NPQSL_NRPS_MAX_PAGES, NPQSL_NRPS_MAX_MEMBERS or the "
        "page size limit; raise the settings if the course really is that large.",
    ),
}


class RosterUnavailable(Exception):
    """The roster cannot be had; ``message`` is for people, ``hint`` for administrators.

    ``code`` is one of REASONS' keys (for tests and logs) and ``detail`` says exactly what
    happened, for the log only.
    """

    def __init__(self, code: str, detail: str = ""):
        reason = REASONS[code]
        super().__init__(reason.message)
        self.code = code
        self.message = reason.message
        self.hint = reason.hint
        self.detail = detail


@dataclass(frozen=True)
class Member:
    """One person in a course, as the platform's roster reports them.

    ``role`` is the tool role (candidate, coach, assessor, administrator), mapped from
    ``lti_roles`` the same way as at launch. ``name``/``given_name``/``family_name`` are None
    unless the tool keeps names, ``email`` is None unless it keeps emails (privacy settings).
    """

    sub: str
    role: str
    lti_roles: tuple[str, ...]
    status: str = ACTIVE
    name: str | None = None
    given_name: str | None = None
    family_name: str | None = None
    email: str | None = None

    @property
    def active(self) -> bool:
        return self.status == ACTIVE

    @property
    def display_name(self) -> str:
        """The name to show: the full name, else given + family name, else the platform's id."""
        if self.name:
            return self.name
        joined = " ".join(p for p in (self.given_name, self.family_name) if p)
        return joined or self.sub

    def has_role(self, *roles: str) -> bool:
        return self.role in roles

    def to_cache(self) -> dict[str, Any]:
        return {
            "sub": self.sub,
            "role": self.role,
            "lti_roles": list(self.lti_roles),
            "status": self.status,
            "name": self.name,
            "given_name": self.given_name,
            "family_name": self.family_name,
            "email": self.email,
        }

    @classmethod
    def from_cache(cls, data: Mapping[str, Any]) -> Member:
        return cls(**{**data, "lti_roles": tuple(data.get("lti_roles") or ())})


@dataclass(frozen=True)
class Roster:
    """A course's members at ``fetched_at`` (Unix time), in the order the platform listed them.

    Iterating yields every member, Inactive ones included; the role helpers return Active
    members only unless asked otherwise.
    """

    platform_pk: int
    context_id: str
    members: tuple[Member, ...]
    fetched_at: float
    course_title: str | None = None

    def __iter__(self) -> Iterator[Member]:
        return iter(self.members)

    def __len__(self) -> int:
        return len(self.members)

    def find(self, sub: str) -> Member | None:
        """The member with this platform user id (a launch's ``sub``), or None."""
        for member in self.members:
            if member.sub == sub:
                return member
        return None

    def with_role(self, *roles: str, include_inactive: bool = False) -> list[Member]:
        """Members whose tool role is one of ``roles`` (Active ones unless include_inactive)."""
        return [m for m in self.members if m.role in roles and (include_inactive or m.active)]

    def active(self) -> list[Member]:
        return [m for m in self.members if m.active]

    def candidates(self, include_inactive: bool = False) -> list[Member]:
        return self.with_role(CANDIDATE, include_inactive=include_inactive)

    def coaches(self, include_inactive: bool = False) -> list[Member]:
        return self.with_role(COACH, include_inactive=include_inactive)

    def assessors(self, include_inactive: bool = False) -> list[Member]:
        return self.with_role(ASSESSOR, include_inactive=include_inactive)

    def administrators(self, include_inactive: bool = False) -> list[Member]:
        return self.with_role(ADMINISTRATOR, include_inactive=include_inactive)


@dataclass
class _Fetched:
    members: dict[str, Member]
    differences_url: str | None
    course_title: str | None
    pages: int


def _text(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()[:MAX_FIELD_CHARS]
    return None


def _status(value: Any) -> str:
    if value is None or value == "":
        return ACTIVE
    if isinstance(value, str):
        for known in (ACTIVE, INACTIVE, DELETED):
            if value.strip().lower() == known.lower():
                return known
    # A status the tool does not understand is not treated as an active member.
    return INACTIVE


def _same_origin(a: str, b: str) -> bool:
    pa, pb = urlsplit(a), urlsplit(b)
    return (pa.scheme, pa.netloc.lower()) == (pb.scheme, pb.netloc.lower())


class RosterService:
    """Fetches, caches and refreshes course rosters; one per running tool (``Tool.rosters``)."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        cache,
        http: requests.Session,
        connector_for: Callable[[PlatformInfo], Any],
        clock: Callable[[], float] = time.time,
    ):
        self._db = db
        self._settings = settings
        self._cache = cache
        self._http = http
        self._connector_for = connector_for
        self.clock = clock
        self.ttl = settings.nrps.roster_ttl_seconds
        self.max_pages = settings.nrps.max_pages
        self.max_members = settings.nrps.max_members
        self.max_page_bytes = MAX_PAGE_BYTES

    # -- the API ---------------------------------------------------------------------------
    def roster(self, context: LaunchContext, *, refresh: bool = False) -> Roster:
        """The roster of the launch's course: from the cache while fresh, else from the platform.

        ``refresh=True`` skips the fresh-cache shortcut (the differences link is still used when
        one is known). Raises RosterUnavailable, never anything else the platform provokes.
        """
        try:
            return self._roster(context, refresh)
        except RosterUnavailable as error:
            log.warning(
                "roster unavailable (%s) platform=%s context=%s: %s",
                error.code,
                context.platform_pk,
                context.context_id,
                error.detail,
            )
            raise

    def forget(self, context: LaunchContext) -> None:
        """Drop the cached roster of the launch's course."""
        if context.context_id:
            self._cache.delete(self._cache_key(context.platform_pk, context.context_id))

    def offered(self, context: LaunchContext) -> bool:
        """Whether the launch's platform shares the course's roster with the tool (no HTTP)."""
        try:
            self._memberships_url(context)
        except RosterUnavailable:
            return False
        return True

    # -- flow ------------------------------------------------------------------------------
    def _roster(self, context: LaunchContext, refresh: bool) -> Roster:
        url = self._memberships_url(context)
        key = self._cache_key(context.platform_pk, context.context_id)
        entry = self._cache.get(key)
        if not self._usable(entry, url):
            entry = None
        now = self.clock()
        if entry and not refresh and now - entry["fetched_at"] < self.ttl:
            return self._build(context, entry)

        platform = get_platform(self._db, context.platform_pk)
        if platform is None:
            raise RosterUnavailable("refused", f"platform {context.platform_pk} is no longer registered")
        connector = self._connector_for(platform)
        fetched: _Fetched | None = None
        if entry and entry.get("differences_url"):
            fetched = self._apply_differences(connector, url, context, entry)
        if fetched is None:
            fetched = self._fetch(connector, url, url, context)
            fetched.members = {s: m for s, m in fetched.members.items() if m.status != DELETED}
        entry = {
            "format": CACHE_FORMAT,
            "url": url,
            "fetched_at": now,
            "differences_url": fetched.differences_url,
            "course_title": fetched.course_title or context.course_title,
            "members": [m.to_cache() for m in fetched.members.values()],
        }
        keep = self.ttl + (DIFFERENCES_KEEP_SECONDS if fetched.differences_url else 0)
        if keep > 0:
            self._cache.set(key, entry, timeout=keep)
        return self._build(context, entry)

    def _apply_differences(self, connector, url: str, context: LaunchContext, entry: dict) -> _Fetched | None:
        """The cached roster updated with the platform's differences; None: read it all again."""
        try:
            changes = self._fetch(connector, entry["differences_url"], url, context)
        except RosterUnavailable as error:
            if error.code == "platform_unreachable":
                raise
            log.info("roster differences refused (%s: %s); reading the whole roster", error.code, error.detail)
            return None
        members = {m["sub"]: Member.from_cache(m) for m in entry["members"]}
        for sub, member in changes.members.items():
            if member.status == DELETED:
                members.pop(sub, None)
            else:
                members[sub] = member
        if len(members) > self.max_members:
            raise RosterUnavailable("too_large", f"{len(members)} members after differences")
        # A platform that offers no new differences link must be read in full next time.
        return _Fetched(members, changes.differences_url, changes.course_title or entry.get("course_title"), 0)

    def _fetch(self, connector, start: str, origin: str, context: LaunchContext) -> _Fetched:
        """Every page from ``start``, following rel="next"; members keyed by sub (later wins)."""
        members: dict[str, Member] = {}
        differences_url = None
        course_title = None
        seen: set[str] = set()
        url: str | None = start
        pages = 0
        while url:
            if url in seen:
                raise RosterUnavailable("bad_answer", f"rel=next leads back to {url}")
            seen.add(url)
            pages += 1
            if pages > self.max_pages:
                raise RosterUnavailable("too_large", f"more than {self.max_pages} pages")
            body, links = self._get_page(connector, url)
            course_title = self._check_context(body, context) or course_title
            raw_members = body.get("members")
            if not isinstance(raw_members, list):
                raise RosterUnavailable("bad_answer", f"page {url}: 'members' is not a list")
            for raw in raw_members:
                member = self._member(raw)
                if member is None:
                    log.info("roster: skipped a member without a usable user_id on %s", url)
                    continue
                members.pop(member.sub, None)
                members[member.sub] = member
                if len(members) > self.max_members:
                    raise RosterUnavailable("too_large", f"more than {self.max_members} members")
            differences_url = self._link(links, "differences", url, origin) or differences_url
            url = self._link(links, "next", url, origin)
        return _Fetched(members, differences_url, course_title, pages)

    # -- one page --------------------------------------------------------------------------
    def _get_page(self, connector, url: str) -> tuple[dict, dict[str, str]]:
        token = self._token(connector)
        for attempt in (1, 2):
            headers = {"Authorization": "Bearer " + token, "Accept": MEMBERSHIP_MEDIA_TYPE}
            try:
                response = self._http.get(url, headers=headers, stream=True)
            except requests.RequestException as exc:
                raise RosterUnavailable(
                    "platform_unreachable", f"GET {url}: {exc.__class__.__name__}: {exc}"
                ) from None
            with response:
                status = response.status_code
                if status == 401 and attempt == 1:
                    # The platform no longer honours the cached token: get a new one, once.
                    connector.forget_access_token([NRPS_SCOPE])
                    token = self._token(connector)
                    continue
                if status >= 500 or status in (408, 429):
                    raise RosterUnavailable("platform_unreachable", f"GET {url}: HTTP {status}")
                if status != 200:
                    code = "bad_answer" if 200 <= status < 300 else "refused"
                    raise RosterUnavailable(code, f"GET {url}: HTTP {status}")
                raw = self._read_body(response, url)
                links = self._links(response)
            break
        try:
            body = json.loads(raw)
        except ValueError:
            raise RosterUnavailable("bad_answer", f"GET {url}: body is not JSON") from None
        if not isinstance(body, dict):
            raise RosterUnavailable("bad_answer", f"GET {url}: body is not a JSON object")
        return body, links

    def _token(self, connector) -> str:
        try:
            return connector.get_access_token([NRPS_SCOPE])
        except LtiServiceException as exc:
            status = getattr(getattr(exc, "response", None), "status_code", 0) or 0
            code = "platform_unreachable" if status >= 500 or status in (408, 429) else "refused"
            raise RosterUnavailable(code, f"access token: {exc}") from None
        except requests.RequestException as exc:
            raise RosterUnavailable(
                "platform_unreachable", f"access token: {exc.__class__.__name__}: {exc}"
            ) from None
        except (KeyError, TypeError, ValueError) as exc:
            raise RosterUnavailable("bad_answer", f"access token response: {exc!r}") from None

    def _read_body(self, response: requests.Response, url: str) -> bytes:
        declared = response.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > self.max_page_bytes:
            raise RosterUnavailable("too_large", f"GET {url}: Content-Length {declared}")
        chunks: list[bytes] = []
        size = 0
        try:
            for chunk in response.iter_content(64 * 1024):
                size += len(chunk)
                if size > self.max_page_bytes:
                    raise RosterUnavailable("too_large", f"GET {url}: page over {self.max_page_bytes} bytes")
                chunks.append(chunk)
        except requests.RequestException as exc:
            raise RosterUnavailable("platform_unreachable", f"GET {url}: reading body: {exc}") from None
        return b"".join(chunks)

    @staticmethod
    def _links(response: requests.Response) -> dict[str, str]:
        links: dict[str, str] = {}
        for link in requests.utils.parse_header_links(response.headers.get("Link", "")):
            for rel in (link.get("rel") or "").lower().split():
                if link.get("url"):
                    links.setdefault(rel, link["url"])
        return links

    @staticmethod
    def _link(links: Mapping[str, str], rel: str, base: str, origin: str) -> str | None:
        target = links.get(rel)
        if not target:
            return None
        absolute = urljoin(base, target)
        # The bearer token goes wherever the link points: only ever to the memberships' own host.
        if not _same_origin(absolute, origin):
            raise RosterUnavailable("bad_answer", f'rel="{rel}" points at another host: {absolute}')
        return absolute

    def _check_context(self, body: Mapping[str, Any], context: LaunchContext) -> str | None:
        claim = body.get("context")
        if claim is None:
            return None
        if not isinstance(claim, Mapping):
            raise RosterUnavailable("bad_answer", "'context' is not an object")
        context_id = claim.get("id")
        if context_id is not None and str(context_id) != context.context_id:
            raise RosterUnavailable(
                "bad_answer", f"memberships are for context {context_id!r}, the launch is {context.context_id!r}"
            )
        return _text(claim.get("title"))

    def _member(self, raw: Any) -> Member | None:
        if not isinstance(raw, Mapping):
            return None
        sub = raw.get("user_id")
        if not isinstance(sub, str) or not sub or len(sub) > MAX_FIELD_CHARS:
            return None
        roles = raw.get("roles")
        lti_roles = tuple(r for r in roles if isinstance(r, str))[:50] if isinstance(roles, list) else ()
        keep_names = self._settings.keep_names
        return Member(
            sub=sub,
            role=map_roles(lti_roles),
            lti_roles=lti_roles,
            status=_status(raw.get("status")),
            name=_text(raw.get("name")) if keep_names else None,
            given_name=_text(raw.get("given_name")) if keep_names else None,
            family_name=_text(raw.get("family_name")) if keep_names else None,
            email=_text(raw.get("email")) if self._settings.keep_emails else None,
        )

    # -- cache and claims ------------------------------------------------------------------
    @staticmethod
    def _cache_key(platform_pk: int, context_id: str) -> str:
        digest = hashlib.sha256(context_id.encode("utf-8")).hexdigest()[:32]
        return f"nrps-roster:{platform_pk}:{digest}"

    def _usable(self, entry: Any, url: str) -> bool:
        return (
            isinstance(entry, dict)
            and entry.get("format") == CACHE_FORMAT
            and entry.get("url") == url
            and isinstance(entry.get("fetched_at"), (int, float))
        )

    def _build(self, context: LaunchContext, entry: Mapping[str, Any]) -> Roster:
        return Roster(
            platform_pk=context.platform_pk,
            context_id=context.context_id or "",
            members=tuple(Member.from_cache(m) for m in entry["members"]),
            fetched_at=entry["fetched_at"],
            course_title=entry.get("course_title"),
        )

    def _memberships_url(self, context: LaunchContext) -> str:
        if not context.context_id:
            raise RosterUnavailable("no_course", f"launch {context.launch_id} has no context")
        try:
            claims = launches.load_claims(self._db, context.launch_id)
        except LaunchError as error:
            raise RosterUnavailable("launch_expired", str(error.detail or error.code)) from None
        claim = claims.get(NRPS_CLAIM)
        url = claim.get("context_memberships_url") if isinstance(claim, Mapping) else None
        if not isinstance(url, str) or not url:
            raise RosterUnavailable("not_offered", f"launch {context.launch_id} has no {NRPS_CLAIM}")
        versions = claim.get("service_versions")
        if isinstance(versions, Iterable) and not isinstance(versions, str) and versions:
            if "2.0" not in versions:
                raise RosterUnavailable("not_offered", f"service_versions {versions!r} lack 2.0")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise RosterUnavailable("bad_answer", f"context_memberships_url {url!r} is not an http(s) URL")
        return url
