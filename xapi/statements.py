"""Learning events become xAPI statements: one event, one statement, the same on every send.

The statement of an event is 1.0.3-shaped (no ``contextAgents``/``contextGroups``), so 1.0.3-only,
2.0-only and dual LRSs all accept it, and it is validated against both versions before it
leaves. Its id derives from the event id, so a re-sent statement is the same statement.

Shape::

    actor     {"objectType": "Agent", "account": {"homePage": <platform issuer>, "name": <LTI sub>}}
              (+ "name" when xapi.actor_names is on and the tool keeps names)
    verb      the registered verb of the event kind (vocabulary.VERBS)
    object    the plugin activity, <base>/activities/plugins/<plugin>/<activity path>
    result    score (scaled, raw, min, max), success, completion, duration, response
    context   registration: the candidate's programme enrolment (vocabulary.registration)
              contextActivities: parent (the unit/module), grouping (the qualification, the VLE
              course, further ancestors), category (the NPQSL profile version)
              platform, language, extensions (LTI context, deployment, resource link, launch, plugin)
    timestamp when the event happened, UTC with milliseconds

Plugins shape their statements through the activity path and a few event extensions:

- ``activity`` may be a path: ``closing-the-gap/finding-gaps/check`` has the parent
  ``closing-the-gap/finding-gaps`` and ``closing-the-gap`` in its grouping;
- ``extensions["parent"]`` names the parent activity path explicitly (same plugin);
- ``extensions["title"]``, ``["description"]`` name and describe the activity (else the plugin's
  offer of that activity names it), ``["activity_type"]`` overrides the plugin's activity type;
- keys that are absolute IRIs go into ``context.extensions`` as they are; any other keys are kept
  together under the profile's ``event-data`` extension.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from lti_tool.models import Course, LearningEventRow, Platform, ResourceLink, User

from . import vocabulary
from .vocabulary import Vocabulary

if TYPE_CHECKING:
    from lti_tool.app import Tool
    from lti_tool.settings import Settings

log = logging.getLogger(__name__)

# The xAPI versions every statement must satisfy.
XAPI_VERSIONS = ("1.0.3", "2.0.0")
RESERVED_EXTENSIONS = ("parent", "title", "description", "activity_type")
DEFAULT_ACTIVITY_TYPE = vocabulary.LESSON_TYPE


class StatementBuildError(Exception):
    """An event that cannot become a valid statement: a bug, never a passing fault."""


@dataclass(frozen=True)
class EventFacts:
    """What a statement needs besides the event row: who, on which platform, in which course."""

    issuer: str
    sub: str
    user_name: str | None = None
    user_email: str | None = None
    context_id: str | None = None
    course_title: str | None = None
    resource_link_id: str | None = None
    resource_title: str | None = None


def timestamp(moment: datetime) -> str:
    """UTC with millisecond precision: ``2026-11-22T10:00:00.123Z``."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def iso_duration(seconds: float) -> str:
    """An ISO 8601 duration to the hundredth of a second (xAPI's precision): ``PT1H2M3.5S``."""
    centis = round(seconds * 100)
    hours, centis = divmod(centis, 360_000)
    minutes, centis = divmod(centis, 6_000)
    text = "PT" + (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "")
    if centis or not (hours or minutes):
        whole, frac = divmod(centis, 100)
        text += f"{whole}.{frac:02d}".rstrip("0").rstrip(".") + "S"
    return text


def _number(value: float) -> int | float:
    """Whole numbers as integers, so 7.0 reads 7 in the LRS."""
    return int(value) if float(value).is_integer() else value


def _result(data: Mapping[str, Any] | None) -> dict | None:
    if not data:
        return None
    result: dict[str, Any] = {}
    raw, high, low = data.get("score_raw"), data.get("score_max"), data.get("score_min") or 0.0
    if raw is not None and high is not None:
        result["score"] = {
            "scaled": round((raw - low) / (high - low), 6),
            "raw": _number(raw),
            "min": _number(low),
            "max": _number(high),
        }
    for key in ("success", "completion"):
        if data.get(key) is not None:
            result[key] = bool(data[key])
    if data.get("response") is not None:
        result["response"] = str(data["response"])
    if data.get("duration_seconds") is not None:
        result["duration"] = iso_duration(data["duration_seconds"])
    return result or None


def _is_iri(key: str) -> bool:
    return key.startswith(("http://", "https://", "urn:"))


def _text_extension(extensions: Mapping[str, Any], key: str) -> str | None:
    value = extensions.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise StatementBuildError(f"event extension {key!r} must be a non-empty string, got {value!r}")
    return value


class StatementFactory:
    """Turns events into statements for one installation (its vocabulary, settings and plugins)."""

    def __init__(self, settings: Settings, plugins=None):
        self.vocab = Vocabulary.from_settings(settings)
        self.settings = settings
        self.plugins = plugins
        self.include_names = settings.xapi.actor_names and settings.keep_names
        self.include_emails = settings.xapi.actor_emails and settings.keep_emails

    # -- one statement, from the facts -------------------------------------------------------
    def build(self, event: LearningEventRow, facts: EventFacts, offers: dict[str, dict] | None = None) -> dict:
        """The statement of one event; raises StatementBuildError on an event it cannot express.

        ``offers`` caches the plugins' offers (which name activities) across a batch.
        """
        offers = {} if offers is None else offers
        verb = vocabulary.VERBS.get(event.kind)
        if verb is None:
            raise StatementBuildError(f"event {event.id}: no verb for kind {event.kind!r}")
        vocab = self.vocab
        extensions = dict(event.extensions or {})
        plugin = self.plugins.get(event.plugin_key) if self.plugins is not None else None

        actor: dict[str, Any] = {"objectType": "Agent", "account": {"homePage": facts.issuer, "name": facts.sub}}
        if self.include_names and facts.user_name:
            actor["name"] = facts.user_name

        parent_path = _text_extension(extensions, "parent")
        if parent_path is None and "/" in event.activity:
            parent_path = event.activity.rsplit("/", 1)[0]
        context_activities: dict[str, list] = {}
        if parent_path:
            context_activities["parent"] = [self._plugin_activity(plugin, event.plugin_key, parent_path, offers)]
        grouping = [
            {
                "objectType": "Activity",
                "id": vocab.qualification,
                "definition": {
                    "type": vocab.qualification_type,
                    "name": vocab.lang(vocabulary.QUALIFICATION_NAME),
                    "description": vocab.lang(vocabulary.QUALIFICATION_DESCRIPTION),
                },
            }
        ]
        if facts.context_id:
            grouping.append(
                {
                    "objectType": "Activity",
                    "id": vocab.course(facts.issuer, facts.context_id),
                    "definition": {
                        "type": vocabulary.COURSE_TYPE,
                        "name": vocab.lang(facts.course_title or facts.context_id),
                    },
                }
            )
        if parent_path and "/" in parent_path:
            parts = parent_path.split("/")
            grouping.extend(
                self._plugin_activity(plugin, event.plugin_key, "/".join(parts[:depth]), offers)
                for depth in range(1, len(parts))
            )
        context_activities["grouping"] = grouping
        context_activities["category"] = [
            {
                "objectType": "Activity",
                "id": vocab.profile_version,
                "definition": {"type": vocabulary.PROFILE_TYPE},
            }
        ]

        context_extensions: dict[str, Any] = {vocab.extension("lti_deployment_id"): event.deployment_id}
        if facts.context_id:
            context_extensions[vocab.extension("lti_context_id")] = facts.context_id
        if facts.resource_link_id:
            context_extensions[vocab.extension("lti_resource_link_id")] = facts.resource_link_id
        if event.launch_id:
            context_extensions[vocab.extension("launch_id")] = event.launch_id
        context_extensions[vocab.extension("plugin")] = event.plugin_key
        if self.include_emails and facts.user_email:
            # An Agent carries exactly one identifier, and the account is the stable one.
            context_extensions[vocab.extension("actor_email")] = "mailto:" + facts.user_email
        event_data = {}
        for key, value in extensions.items():
            if key in RESERVED_EXTENSIONS:
                continue
            if _is_iri(key):
                context_extensions[key] = value
            else:
                event_data[key] = value
        if event_data:
            context_extensions[vocab.extension("event_data")] = event_data

        context: dict[str, Any] = {
            "registration": vocabulary.registration(facts.issuer, facts.context_id, facts.sub),
            "contextActivities": context_activities,
            "platform": self.settings.registration.tool_name,
            "language": vocab.language,
            "extensions": context_extensions,
        }

        statement: dict[str, Any] = {
            "id": vocabulary.statement_id(event.id),
            "actor": actor,
            "verb": {"id": verb.iri, "display": vocab.lang(verb.display)},
            "object": self._object(plugin, event, facts, extensions, offers),
        }
        result = _result(event.result)
        if result:
            statement["result"] = result
        statement["context"] = context
        statement["timestamp"] = timestamp(event.occurred_at)
        return statement

    def _offer(self, plugin, activity: str, offers: dict[str, dict]):
        """The plugin's offer of ``activity``, if any; ``offers`` caches each plugin's list."""
        if plugin is None:
            return None
        if plugin.key not in offers:
            try:
                offers[plugin.key] = {offer.activity: offer for offer in plugin.offers()}
            except Exception:  # noqa: BLE001 - a plugin's fault must not stop its statements
                log.warning("plugin %s: offers() failed while naming %s", plugin.key, activity, exc_info=True)
                offers[plugin.key] = {}
        return offers[plugin.key].get(activity)

    def _plugin_activity(self, plugin, plugin_key: str, path: str, offers: dict[str, dict]) -> dict:
        activity: dict[str, Any] = {"objectType": "Activity", "id": self.vocab.plugin_activity(plugin_key, path)}
        offer = self._offer(plugin, path, offers)
        if offer is not None:
            activity["definition"] = {"name": self.vocab.lang(offer.title)}
        return activity

    def _object(
        self, plugin, event: LearningEventRow, facts: EventFacts, extensions: Mapping[str, Any], offers: dict
    ) -> dict:
        offer = self._offer(plugin, event.activity, offers)
        activity_type = _text_extension(extensions, "activity_type") or (
            getattr(plugin, "xapi_activity_type", None) or DEFAULT_ACTIVITY_TYPE
        )
        if not _is_iri(activity_type):
            raise StatementBuildError(f"event {event.id}: activity_type {activity_type!r} is not an absolute IRI")
        name = (
            _text_extension(extensions, "title")
            or (offer.title if offer else None)
            or facts.resource_title
            or event.activity.rsplit("/", 1)[-1]
        )
        definition: dict[str, Any] = {"type": activity_type, "name": self.vocab.lang(name)}
        description = _text_extension(extensions, "description") or (offer.description if offer else None)
        if description:
            definition["description"] = self.vocab.lang(description)
        return {
            "objectType": "Activity",
            "id": self.vocab.plugin_activity(event.plugin_key, event.activity),
            "definition": definition,
        }


def validate(statement: dict) -> dict:
    """Check a statement against every xAPI version the tool speaks; StatementBuildError if not."""
    from .schemas import XapiValidationError, validate_statement

    for version in XAPI_VERSIONS:
        try:
            validate_statement(statement, version)
        except XapiValidationError as exc:
            raise StatementBuildError(
                f"statement {statement.get('id')} is not valid xAPI {version}: {exc}"
            ) from exc
    return statement


class StatementBuilder:
    """Statements for outbox rows: looks up the people, platforms and courses, builds, validates."""

    def __init__(self, tool: Tool):
        self.tool = tool
        self.factory = StatementFactory(tool.settings, tool.plugins)

    @property
    def vocab(self) -> Vocabulary:
        return self.factory.vocab

    def facts(self, events: Sequence[LearningEventRow]) -> dict[str, EventFacts]:
        """The facts of each event (by event id), read in one query per table."""
        ids = {
            "users": {e.user_id for e in events},
            "platforms": {e.platform_id for e in events},
            "courses": {e.course_id for e in events if e.course_id is not None},
            "links": {e.resource_link_id for e in events if e.resource_link_id is not None},
        }
        with self.tool.db.sessions() as session:
            users = {u.id: u for u in session.scalars(select(User).where(User.id.in_(ids["users"])))}
            platforms = {
                p.id: p for p in session.scalars(select(Platform).where(Platform.id.in_(ids["platforms"])))
            }
            courses = (
                {c.id: c for c in session.scalars(select(Course).where(Course.id.in_(ids["courses"])))}
                if ids["courses"]
                else {}
            )
            links = (
                {r.id: r for r in session.scalars(select(ResourceLink).where(ResourceLink.id.in_(ids["links"])))}
                if ids["links"]
                else {}
            )
        found: dict[str, EventFacts] = {}
        for event in events:
            user, platform = users.get(event.user_id), platforms.get(event.platform_id)
            if user is None or platform is None:
                continue
            course = courses.get(event.course_id)
            link = links.get(event.resource_link_id)
            found[event.id] = EventFacts(
                issuer=platform.issuer,
                sub=user.sub,
                user_name=user.name,
                user_email=user.email,
                context_id=course.context_id if course else None,
                course_title=(course.title or course.label) if course else None,
                resource_link_id=link.resource_link_id if link else None,
                resource_title=link.title if link else None,
            )
        return found

    def build_many(self, events: Sequence[LearningEventRow]) -> list[dict | StatementBuildError]:
        """A validated statement per event, or the error that stopped it (in the same order)."""
        facts = self.facts(events)
        offers: dict[str, dict] = {}
        built: list[dict | StatementBuildError] = []
        for event in events:
            try:
                if event.id not in facts:
                    raise StatementBuildError(f"event {event.id}: its person or platform no longer exists")
                built.append(validate(self.factory.build(event, facts[event.id], offers)))
            except StatementBuildError as exc:
                log.error("xAPI statement for event %s (%s) cannot be built: %s", event.id, event.kind, exc)
                built.append(exc)
        return built

    def build(self, event: LearningEventRow) -> dict:
        [statement] = self.build_many([event])
        if isinstance(statement, StatementBuildError):
            raise statement
        return statement
