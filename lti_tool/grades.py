"""AGS grade sync: scored learning events become scores in the VLE's gradebook.

The rules are Moodle's, since Moodle is the strictest platform a tool meets:

- The line item. A launch's AGS claim names the resource link's own grade item (``lineitem``)
  when it has one: in Moodle, the activity's column, made when deep linking placed an item with
  a lineItem. Scores for the activity the link launches go there. Otherwise the tool looks in the
  course's ``lineitems`` container for the item with resourceId ``plugin:activity``, its tag and
  the resource link, and creates it when there is none (Moodle then shows a separate *manual*
  column). A found or created URL is kept per resource link and activity; a lease on that row
  keeps two workers from creating two columns.
- The score. Always ``userId`` (the LTI sub), ``scoreGiven``/``scoreMaximum``,
  ``activityProgress``, ``gradingProgress`` and ``timestamp``. Only FullyGraded carries a grade:
  Moodle nulls the stored grade for any other gradingProgress, so an interim score never goes
  out over a final one unless the event kind means a fresh start (see ``PROGRESS``).
- Timestamps: the event's time, in UTC with milliseconds, strictly increasing per person and
  line item (bumped by 1 ms past the last one sent). Moodle answers 409 to a timestamp at or
  before the stored one, comparing whole seconds; after a 409 the score moves to the next whole
  second past the platform's stored time (read from the results service when granted) and goes
  again, a few times, then waits its turn in the outbox with the new watermark kept.
- Access tokens come from the platform's token endpoint through ``ToolServiceConnector`` (signed
  by the key ring, cached per platform and scope set), asked with the narrowest scopes a call
  needs. A 401 forgets the cached token and tries once more with a new one.
- Faults: a refused connection, a timeout, a 5xx, 408/429 or a second 401 is transient (the
  outbox retries it later, in order, for as long as it takes); any other 4xx is permanent, with
  the platform's answer kept for the operator.

The core is ``sync_score(tool, event, outbox_id=...)``, a plain function answering a
``SyncOutcome``; ``AgsReceiver`` is the thin outbox adapter around it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import requests
from pylti1p3.exception import LtiServiceException
from sqlalchemy import delete, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import object_session

from plugins.contract import ACTIVITY_PARAM, PLUGIN_PARAM

from .models import (
    AgsEndpoint,
    AgsLineItem,
    AgsScoreState,
    Launch,
    LearningEventRow,
    OutboxMessage,
    ResourceLink,
    User,
    utcnow,
)
from .platforms import get_platform
from .roles import CANDIDATE

if TYPE_CHECKING:
    from .app import Tool
    from .db import Database
    from .outbox import Delivery

log = logging.getLogger(__name__)

AGS_CLAIM = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
AGS_SCOPE = "https://purl.imsglobal.org/spec/lti-ags/scope/"
SCORE_SCOPE = AGS_SCOPE + "score"
LINEITEM_SCOPE = AGS_SCOPE + "lineitem"
LINEITEM_READ_SCOPE = AGS_SCOPE + "lineitem.readonly"
RESULT_READ_SCOPE = AGS_SCOPE + "result.readonly"

SCORE_MEDIA_TYPE = "application/vnd.ims.lis.v1.score+json"
LINEITEM_MEDIA_TYPE = "application/vnd.ims.lis.v2.lineitem+json"
LINEITEMS_MEDIA_TYPE = "application/vnd.ims.lis.v2.lineitemcontainer+json"
RESULTS_MEDIA_TYPE = "application/vnd.ims.lis.v2.resultcontainer+json"

RECEIVER_NAME = "ags"
# 409s answered in one delivery before it waits for its next turn in the outbox.
MAX_CONFLICTS = 3
# How long a worker may hold a line item row while it finds or creates it, in seconds.
LINE_ITEM_LOCK_SECONDS = 60
# Pages of the lineitems container read while looking for an activity's line item.
MAX_LINEITEM_PAGES = 50
# The most of a platform's answer kept in an outcome.
MAX_ANSWER_CHARS = 1000
TRANSIENT_STATUSES = frozenset({408, 425, 429})

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Progress:
    """What a kind of event says about the activity and its grading, in AGS terms."""

    activity: str
    grading: str
    # A deliberate fresh start: may replace a final grade with a non-final one.
    restarts: bool = False

    @property
    def final(self) -> bool:
        return self.grading == "FullyGraded"


# Event kinds that carry a final grade, and the one that means a new attempt. Any other kind with
# a score (progressed, answered, ...) is an interim score: InProgress/Pending, which Moodle shows
# as no grade, so it is never sent over a final grade.
PROGRESS: dict[str, Progress] = {
    "scored": Progress("Completed", "FullyGraded"),
    "completed": Progress("Completed", "FullyGraded"),
    "passed": Progress("Completed", "FullyGraded"),
    "failed": Progress("Completed", "FullyGraded"),
    "submitted": Progress("Submitted", "FullyGraded"),
    "initialized": Progress("Initialized", "NotReady", restarts=True),
}
INTERIM = Progress("InProgress", "Pending")


def progress_for(kind: str) -> Progress:
    return PROGRESS.get(kind, INTERIM)


# -- outcomes ---------------------------------------------------------------------------------

DELIVERED = "delivered"  # the platform accepted the score
SKIPPED = "skipped"  # nothing to send (superseded, or would null a final grade): done
RETRY = "retry"  # transient: the outbox tries again later
FAILED = "failed"  # permanent: the platform refused and will refuse again


@dataclass(frozen=True)
class SyncOutcome:
    """What became of one score: the result, a sentence for the operator, the HTTP status."""

    result: str
    detail: str = ""
    status: int | None = None
    retry_after: float | None = None

    @property
    def done(self) -> bool:
        return self.result in (DELIVERED, SKIPPED)


class _Stop(Exception):
    """Ends a sync early with its outcome (a refusal, a fault)."""

    def __init__(self, outcome: SyncOutcome):
        super().__init__(outcome.detail)
        self.outcome = outcome


def _answer(response: requests.Response, what: str) -> str:
    body = (response.text or "").strip().replace("\n", " ")
    if len(body) > MAX_ANSWER_CHARS:
        body = body[: MAX_ANSWER_CHARS - 1] + "…"
    text = f"{what}: {response.status_code} {response.reason or ''}".rstrip()
    return f"{text}: {body}" if body else text


def _retry_after(response: requests.Response) -> float | None:
    value = (response.headers.get("Retry-After") or "").strip()
    return float(value) if value.isdigit() else None


def classify(response: requests.Response, what: str) -> SyncOutcome:
    """2xx delivered; 401 (after a fresh token), 408/425/429, 5xx retry; any other 4xx failed."""
    status = response.status_code
    if 200 <= status < 300:
        return SyncOutcome(DELIVERED, f"{what}: {status}", status)
    answer = _answer(response, what)
    if 400 <= status < 500 and status != 401 and status not in TRANSIENT_STATUSES:
        return SyncOutcome(FAILED, answer, status)
    return SyncOutcome(RETRY, answer, status, _retry_after(response))


# -- the launch's AGS endpoint ----------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    """The AGS endpoint claim of a launch: granted scopes, the container, the link's own item."""

    scopes: tuple[str, ...]
    lineitems: str | None = None
    lineitem: str | None = None

    @classmethod
    def from_claims(cls, claims: Mapping[str, Any] | None) -> Endpoint | None:
        claim = (claims or {}).get(AGS_CLAIM)
        if not isinstance(claim, Mapping):
            return None
        scopes = claim.get("scope")
        scopes = tuple(s for s in scopes if isinstance(s, str)) if isinstance(scopes, list) else ()

        def url(name: str) -> str | None:
            value = claim.get(name)
            return value if isinstance(value, str) and urlsplit(value).scheme in ("http", "https") else None

        return cls(scopes, url("lineitems"), url("lineitem"))

    @property
    def can_score(self) -> bool:
        return SCORE_SCOPE in self.scopes and bool(self.lineitem or self.lineitems)


def _endpoint_for(session, event: LearningEventRow) -> Endpoint | None:
    """The endpoint kept with the event, or (for older rows) the launch's claim if it is still there."""
    kept = session.get(AgsEndpoint, event.id)
    if kept is not None:
        return Endpoint(tuple(kept.scopes or ()), kept.lineitems_url, kept.lineitem_url)
    launch = session.get(Launch, event.launch_id) if event.launch_id else None
    if launch is None or launch.platform_id != event.platform_id:
        return None
    return Endpoint.from_claims(launch.claims)


# -- URLs and times ---------------------------------------------------------------------------


def with_query(url: str, **params: str | None) -> str:
    """``url`` with ``params`` added to its query (Moodle's URLs already carry ``?type_id=``)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    query += [(k, v) for k, v in params.items() if v is not None]
    return urlunsplit(parts._replace(query=urlencode(query)))


def sub_resource(lineitem_url: str, name: str) -> str:
    """``{lineitem}/scores`` or ``/results``, keeping the line item URL's query."""
    parts = urlsplit(lineitem_url)
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + "/" + name))


def to_ms(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def iso_ms(ms: int) -> str:
    """ISO 8601 in UTC with milliseconds, as the AGS examples write it."""
    return (_EPOCH + timedelta(milliseconds=ms)).isoformat(timespec="milliseconds")


def next_whole_second(ms: int) -> int:
    """The first millisecond of the next second: past a stored time compared in whole seconds."""
    return (ms // 1000 + 1) * 1000


def _parse_time_ms(value: Any) -> int | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return to_ms(moment) if moment.tzinfo is not None else None


def line_item_key(url: str) -> str:
    return hashlib.sha256(url.encode("utf-8")).hexdigest()


# -- service calls ----------------------------------------------------------------------------


class _Service:
    """The platform's AGS over HTTP: a bearer token per scope set, refreshed once on a 401."""

    def __init__(self, tool: Tool, platform, endpoint: Endpoint):
        self.connector = tool.service_connector(platform)
        self.http = tool.http
        self.granted = set(endpoint.scopes)

    def request(
        self,
        method: str,
        url: str,
        scopes: list[str],
        *,
        accept: str,
        body: dict | None = None,
        content_type: str | None = None,
    ) -> requests.Response:
        response = None
        for _attempt in range(2):
            token = self._token(scopes)
            headers = {"Authorization": f"Bearer {token}", "Accept": accept}
            data = None
            if body is not None:
                headers["Content-Type"] = content_type or "application/json"
                data = json.dumps(body)
            try:
                response = self.http.request(method, url, data=data, headers=headers)
            except requests.RequestException as exc:
                raise _Stop(SyncOutcome(RETRY, f"{method} {url}: {exc.__class__.__name__}: {exc}")) from None
            if response.status_code != 401:
                return response
            # The platform no longer knows the token (restarted, revoked): forget it, ask again.
            self.connector.forget_access_token(scopes)
        return response

    def _token(self, scopes: list[str]) -> str:
        try:
            return self.connector.get_access_token(scopes)
        except LtiServiceException as exc:
            # The token endpoint refused (down, or the registration needs fixing): retry later.
            outcome = classify(exc.response, "access token")
            raise _Stop(SyncOutcome(RETRY, outcome.detail, outcome.status, outcome.retry_after)) from None
        except requests.RequestException as exc:
            raise _Stop(SyncOutcome(RETRY, f"access token: {exc.__class__.__name__}: {exc}")) from None
        except (KeyError, TypeError, ValueError) as exc:
            raise _Stop(SyncOutcome(RETRY, f"access token: unreadable answer ({exc!r})")) from None


def _json(response: requests.Response, what: str) -> Any:
    try:
        return response.json()
    except ValueError:
        raise _Stop(SyncOutcome(RETRY, _answer(response, f"{what}: not JSON"), response.status_code)) from None


# -- line items -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Link:
    pk: int
    resource_link_id: str
    title: str | None
    custom: dict


def _uses_launch_line_item(link: _Link | None, event: LearningEventRow) -> bool:
    """Whether the event is for the activity the resource link launches (its own grade item)."""
    if link is None:
        return True
    plugin = link.custom.get(PLUGIN_PARAM)
    activity = link.custom.get(ACTIVITY_PARAM)
    return plugin in (None, "", event.plugin_key) and activity in (None, "", event.activity)


def _line_item_url(
    tool: Tool, service: _Service, endpoint: Endpoint, event: LearningEventRow, link: _Link | None
) -> str:
    if endpoint.lineitem and _uses_launch_line_item(link, event):
        return endpoint.lineitem
    if link is None:
        raise _Stop(SyncOutcome(FAILED, "no line item in the launch and no resource link to find one for"))
    if not endpoint.lineitems:
        raise _Stop(
            SyncOutcome(FAILED, "the launch names no lineitems container to find or create a line item in")
        )
    return _find_or_create(tool, service, endpoint, event, link)


def _find_or_create(
    tool: Tool, service: _Service, endpoint: Endpoint, event: LearningEventRow, link: _Link
) -> str:
    resource_id = f"{event.plugin_key}:{event.activity}"[:255]
    plugin = tool.plugins.get(event.plugin_key)
    tag = plugin.kind if plugin is not None else None
    owner = uuid.uuid4().hex
    url, owned = _claim_line_item(tool.db, event.platform_id, link.pk, resource_id, tag, owner)
    if url:
        return url
    if not owned:
        raise _Stop(
            SyncOutcome(RETRY, f"another worker is finding or creating the line item {resource_id}", None, 2.0)
        )
    try:
        found = _find(service, endpoint, resource_id, tag, link)
        source = "found"
        if found is None:
            found = _create(tool, service, endpoint, event, resource_id, tag, link, plugin)
            source = "created"
    except BaseException:
        _release_line_item(tool.db, event.platform_id, link.pk, resource_id, owner)
        raise
    _store_line_item(tool.db, event.platform_id, link.pk, resource_id, owner, found, source)
    log.info("AGS line item for %s on link %s %s: %s", resource_id, link.resource_link_id, source, found)
    return found


def _line_item_row(platform_id: int, link_pk: int, resource_id: str):
    return (
        AgsLineItem.platform_id == platform_id,
        AgsLineItem.resource_link_id == link_pk,
        AgsLineItem.resource_id == resource_id,
    )


def _claim_line_item(
    db: Database, platform_id: int, link_pk: int, resource_id: str, tag: str | None, owner: str
) -> tuple[str | None, bool]:
    """(the cached URL, False), or (None, whether this worker now holds the row to fill it)."""
    where = _line_item_row(platform_id, link_pk, resource_id)
    with db.sessions() as session:
        url = session.scalar(select(AgsLineItem.url).where(*where))
    if url:
        return url, False
    now = utcnow()
    until = now + timedelta(seconds=LINE_ITEM_LOCK_SECONDS)
    try:
        with db.transaction() as session:
            if session.scalar(select(AgsLineItem.id).where(*where)) is None:
                session.add(
                    AgsLineItem(
                        platform_id=platform_id,
                        resource_link_id=link_pk,
                        resource_id=resource_id,
                        tag=tag,
                        lock_owner=owner,
                        lock_until=until,
                        created_at=now,
                        updated_at=now,
                    )
                )
    except IntegrityError:
        pass  # another worker inserted it first; the update below decides who holds it
    with db.transaction() as session:
        held = session.execute(
            update(AgsLineItem)
            .where(
                *where,
                AgsLineItem.url.is_(None),
                or_(
                    AgsLineItem.lock_owner == owner,
                    AgsLineItem.lock_until.is_(None),
                    AgsLineItem.lock_until < now,
                ),
            )
            .values(lock_owner=owner, lock_until=until)
            .execution_options(synchronize_session=False)
        ).rowcount
        if held:
            return None, True
        return session.scalar(select(AgsLineItem.url).where(*where)), False


def _forget_line_item(db: Database, platform_id: int, link_pk: int, url: str) -> None:
    with db.transaction() as session:
        session.execute(
            delete(AgsLineItem)
            .where(
                AgsLineItem.platform_id == platform_id,
                AgsLineItem.resource_link_id == link_pk,
                AgsLineItem.url == url,
            )
            .execution_options(synchronize_session=False)
        )


def _release_line_item(db: Database, platform_id: int, link_pk: int, resource_id: str, owner: str) -> None:
    with db.transaction() as session:
        session.execute(
            update(AgsLineItem)
            .where(*_line_item_row(platform_id, link_pk, resource_id), AgsLineItem.lock_owner == owner)
            .values(lock_owner=None, lock_until=None)
            .execution_options(synchronize_session=False)
        )


def _store_line_item(
    db: Database, platform_id: int, link_pk: int, resource_id: str, owner: str, url: str, source: str
) -> None:
    with db.transaction() as session:
        session.execute(
            update(AgsLineItem)
            .where(*_line_item_row(platform_id, link_pk, resource_id), AgsLineItem.lock_owner == owner)
            .values(url=url, source=source, lock_owner=None, lock_until=None, updated_at=utcnow())
            .execution_options(synchronize_session=False)
        )


def _matches(item: Any, resource_id: str, tag: str | None, link: _Link) -> bool:
    if not isinstance(item, Mapping) or not isinstance(item.get("id"), str):
        return False
    if item.get("resourceId") != resource_id:
        return False
    if tag and item.get("tag") not in (None, "", tag):
        return False
    return item.get("resourceLinkId") in (None, "", link.resource_link_id)


def _find(service: _Service, endpoint: Endpoint, resource_id: str, tag: str | None, link: _Link) -> str | None:
    """The activity's line item in the container (filtered there, checked here), following pages."""
    if LINEITEM_SCOPE in service.granted:
        scopes = [LINEITEM_SCOPE]  # the same token then creates it, if it is missing
    elif LINEITEM_READ_SCOPE in service.granted:
        scopes = [LINEITEM_READ_SCOPE]
    else:
        raise _Stop(SyncOutcome(FAILED, "the platform grants no lineitem scope to find the activity's line item"))
    url: str | None = with_query(
        endpoint.lineitems, resource_id=resource_id, tag=tag, resource_link_id=link.resource_link_id
    )
    for _page in range(MAX_LINEITEM_PAGES):
        if not url:
            break
        response = service.request("GET", url, scopes, accept=LINEITEMS_MEDIA_TYPE)
        if not response.ok:
            raise _Stop(classify(response, "listing line items"))
        items = _json(response, "listing line items")
        if not isinstance(items, list):
            raise _Stop(SyncOutcome(RETRY, "listing line items: the answer is not a list", response.status_code))
        for item in items:
            if _matches(item, resource_id, tag, link):
                return item["id"]
        url = response.links.get("next", {}).get("url")
    return None


def _create(
    tool: Tool,
    service: _Service,
    endpoint: Endpoint,
    event: LearningEventRow,
    resource_id: str,
    tag: str | None,
    link: _Link,
    plugin,
) -> str:
    if LINEITEM_SCOPE not in service.granted:
        raise _Stop(
            SyncOutcome(
                FAILED,
                f"no line item for {resource_id} and the platform does not let the tool create one "
                "(lineitem scope not granted): give the activity a grade item in the VLE",
            )
        )
    offer = next((o for o in plugin.offers() if o.activity == event.activity), None) if plugin else None
    result = event.result or {}
    maximum = (offer.score_maximum if offer else None) or (result["score_max"] - result.get("score_min", 0.0))
    label = link.title or (offer.title if offer else None) or resource_id
    body: dict[str, Any] = {
        "scoreMaximum": maximum,
        "label": label[:255],
        "resourceId": resource_id,
        "resourceLinkId": link.resource_link_id,
    }
    if tag:
        body["tag"] = tag
    response = service.request(
        "POST",
        endpoint.lineitems,
        [LINEITEM_SCOPE],
        accept=LINEITEM_MEDIA_TYPE,
        body=body,
        content_type=LINEITEM_MEDIA_TYPE,
    )
    if not response.ok:
        raise _Stop(classify(response, "creating a line item"))
    created = _json(response, "creating a line item")
    url = created.get("id") if isinstance(created, Mapping) else None
    if not isinstance(url, str) or not url:
        # Something was made; the next attempt finds it by its resourceId instead of making another.
        raise _Stop(SyncOutcome(RETRY, "creating a line item: the answer has no id", response.status_code))
    return url


# -- scores -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _State:
    last_timestamp_ms: int
    last_outbox_id: int | None
    last_event_at: datetime | None
    final: bool


def _load_state(db: Database, platform_id: int, user_id: int, key: str) -> _State | None:
    with db.sessions() as session:
        row = session.scalar(
            select(AgsScoreState).where(
                AgsScoreState.platform_id == platform_id,
                AgsScoreState.user_id == user_id,
                AgsScoreState.line_item_key == key,
            )
        )
        if row is None:
            return None
        return _State(row.last_timestamp_ms, row.last_outbox_id, row.last_event_at, row.final)


def _save_state(
    db: Database,
    platform_id: int,
    user_id: int,
    url: str,
    timestamp_ms: int,
    *,
    accepted: bool,
    outbox_id: int | None = None,
    event_at: datetime | None = None,
    final: bool = False,
) -> None:
    """Move the watermark to ``timestamp_ms``; when ``accepted``, record the delivery too."""
    key = line_item_key(url)
    for _attempt in range(2):
        try:
            with db.transaction() as session:
                row = session.scalar(
                    select(AgsScoreState)
                    .where(
                        AgsScoreState.platform_id == platform_id,
                        AgsScoreState.user_id == user_id,
                        AgsScoreState.line_item_key == key,
                    )
                    .with_for_update()
                )
                if row is None:
                    row = AgsScoreState(
                        platform_id=platform_id,
                        user_id=user_id,
                        line_item_key=key,
                        line_item_url=url,
                        last_timestamp_ms=timestamp_ms,
                        final=False,
                    )
                    session.add(row)
                row.last_timestamp_ms = max(row.last_timestamp_ms, timestamp_ms)
                if accepted:
                    row.last_outbox_id = outbox_id
                    row.last_event_at = event_at
                    row.final = final
                row.updated_at = utcnow()
            return
        except IntegrityError:
            continue  # a first row inserted concurrently: update it instead


def _stored_timestamp_ms(service: _Service, lineitem_url: str, sub: str) -> int | None:
    """The platform's stored time for the person's grade, from the results service if granted."""
    if RESULT_READ_SCOPE not in service.granted:
        return None
    url = with_query(sub_resource(lineitem_url, "results"), user_id=sub)
    try:
        response = service.request("GET", url, [RESULT_READ_SCOPE], accept=RESULTS_MEDIA_TYPE)
        results = response.json() if response.ok else None
    except (_Stop, ValueError):
        return None
    if not isinstance(results, list):
        return None
    times = [
        _parse_time_ms(r.get("timestamp")) for r in results if isinstance(r, Mapping) and r.get("userId") == sub
    ]
    times = [t for t in times if t is not None]
    return max(times) if times else None


def _post_score(
    tool: Tool,
    service: _Service,
    event: LearningEventRow,
    user: User,
    url: str,
    outbox_id: int | None,
) -> SyncOutcome:
    progress = progress_for(event.kind)
    state = _load_state(tool.db, event.platform_id, event.user_id, line_item_key(url))
    if state is not None:
        if outbox_id is not None and state.last_outbox_id == outbox_id:
            return SyncOutcome(DELIVERED, "already accepted (an earlier attempt's answer was not recorded)")
        if state.last_event_at is not None and (state.last_event_at, state.last_outbox_id or 0) > (
            event.occurred_at,
            outbox_id or 0,
        ):
            return SyncOutcome(SKIPPED, "a later score is already in the gradebook")
        if state.final and not progress.final and not progress.restarts:
            return SyncOutcome(SKIPPED, f"kept the final grade: a {event.kind!r} score is not final")

    result = event.result or {}
    minimum = float(result.get("score_min") or 0.0)
    timestamp = to_ms(event.occurred_at)
    if state is not None:
        timestamp = max(timestamp, state.last_timestamp_ms + 1)
    body: dict[str, Any] = {
        "userId": user.sub,
        "scoreGiven": float(result["score_raw"]) - minimum,
        "scoreMaximum": float(result["score_max"]) - minimum,
        "activityProgress": progress.activity,
        "gradingProgress": progress.grading,
    }
    scores_url = sub_resource(url, "scores")
    conflicts = 0
    while True:
        body["timestamp"] = iso_ms(timestamp)
        response = service.request(
            "POST", scores_url, [SCORE_SCOPE], accept="application/json", body=body, content_type=SCORE_MEDIA_TYPE
        )
        if response.status_code != 409 or conflicts >= MAX_CONFLICTS:
            break
        # The platform holds a time at or after ours (a lost answer, a teacher's edit, a second
        # shared with the last score): move past it, to a whole second, and send again.
        conflicts += 1
        stored = _stored_timestamp_ms(service, url, user.sub)
        timestamp = next_whole_second(max(timestamp, stored or 0))

    if response.ok:
        _save_state(
            tool.db,
            event.platform_id,
            event.user_id,
            url,
            timestamp,
            accepted=True,
            outbox_id=outbox_id,
            event_at=event.occurred_at,
            final=progress.final,
        )
        note = f" after {conflicts} conflict(s)" if conflicts else ""
        return SyncOutcome(
            DELIVERED,
            f"{response.status_code}: {body['scoreGiven']:g}/{body['scoreMaximum']:g} {progress.grading} "
            f"at {body['timestamp']}{note}",
            response.status_code,
        )
    if response.status_code == 409:
        # Keep the watermark, so the next attempt starts past every time refused so far.
        _save_state(tool.db, event.platform_id, event.user_id, url, timestamp, accepted=False)
        return SyncOutcome(RETRY, _answer(response, f"posting a score ({conflicts + 1} conflicts)"), 409)
    return classify(response, "posting a score")


def sync_score(tool: Tool, event: LearningEventRow, *, outbox_id: int | None = None) -> SyncOutcome:
    """Send one scored event to its platform's gradebook; never raises for a platform fault."""
    try:
        return _sync(tool, event, outbox_id)
    except _Stop as stop:
        return stop.outcome


def _sync(tool: Tool, event: LearningEventRow, outbox_id: int | None) -> SyncOutcome:
    result = event.result or {}
    if result.get("score_raw") is None or result.get("score_max") is None:
        return SyncOutcome(SKIPPED, "the event carries no score")
    with tool.db.sessions() as session:
        endpoint = _endpoint_for(session, event)
        user = session.get(User, event.user_id)
        row = session.get(ResourceLink, event.resource_link_id) if event.resource_link_id else None
        if row is not None and row.platform_id != event.platform_id:
            row = None
        link = _Link(row.id, row.resource_link_id, row.title, dict(row.custom or {})) if row else None
    if endpoint is None or not endpoint.can_score:
        return SyncOutcome(FAILED, "the launch behind this event granted no AGS score service")
    platform = get_platform(tool.db, event.platform_id)
    if platform is None or user is None or user.platform_id != event.platform_id:
        return SyncOutcome(FAILED, "the platform or the person is no longer registered")
    service = _Service(tool, platform, endpoint)
    url = _line_item_url(tool, service, endpoint, event, link)
    outcome = _post_score(tool, service, event, user, url, outbox_id)
    if outcome.status in (404, 410) and link is not None and url != endpoint.lineitem:
        # A column the tool found or created was deleted in the gradebook: forget it, so the
        # next attempt finds or creates it again instead of failing for ever.
        _forget_line_item(tool.db, event.platform_id, link.pk, url)
        return SyncOutcome(RETRY, f"{outcome.detail} (line item gone: it will be found or created again)", 404)
    return outcome


# -- the outbox receiver ----------------------------------------------------------------------


def wants_score(event: LearningEventRow) -> bool:
    result = event.result or {}
    return result.get("score_raw") is not None and result.get("score_max") is not None


class AgsReceiver:
    """Outbox receiver ``ags``: scored events from launches that granted the AGS score scope."""

    name = RECEIVER_NAME

    def __init__(self, db: Database):
        self._db = db

    def wants(self, event: LearningEventRow) -> bool:
        """Owed a delivery when the event has a score and its launch may post scores.

        Inside the recording's transaction, the launch's endpoint is kept with the event, so the
        score can still be delivered after the launch row itself has been purged.
        """
        if not wants_score(event) or not event.launch_id or event.resource_link_id is None:
            return False
        session = object_session(event)
        if session is None:
            with self._db.sessions() as own:
                return self._grants_scores(own, event) is not None
        endpoint = self._grants_scores(session, event)
        if endpoint is None:
            return False
        session.add(
            AgsEndpoint(
                event_id=event.id,
                platform_id=event.platform_id,
                lineitems_url=endpoint.lineitems,
                lineitem_url=endpoint.lineitem,
                scopes=list(endpoint.scopes),
            )
        )
        return True

    @staticmethod
    def _grants_scores(session, event: LearningEventRow) -> Endpoint | None:
        """The launch's AGS endpoint, for candidates only: the gradebook holds learners' grades
        (Moodle refuses scores for teachers), so a coach trying an activity out sends none."""
        row = session.execute(
            select(Launch.claims, Launch.role).where(
                Launch.id == event.launch_id, Launch.platform_id == event.platform_id
            )
        ).one_or_none()
        if row is None or row.role != CANDIDATE:
            return None
        endpoint = Endpoint.from_claims(row.claims)
        return endpoint if endpoint is not None and endpoint.can_score else None

    def deliver(self, message: OutboxMessage, event: LearningEventRow, tool: Tool) -> Delivery:
        outcome = sync_score(tool, event, outbox_id=message.id)
        if outcome.result != DELIVERED:
            log.debug("AGS outbox %s (event %s): %s %s", message.id, event.id, outcome.result, outcome.detail)
        return as_delivery(outcome)


def as_delivery(outcome: SyncOutcome) -> Delivery:
    """The outbox's view of an outcome: done, try again later, or refused for good."""
    from .outbox import Delivery

    if outcome.done:
        return Delivery.delivered(outcome.status)
    if outcome.result == RETRY:
        return Delivery.retry(outcome.detail, outcome.status, outcome.retry_after)
    return Delivery.permanent(outcome.detail, outcome.status)
