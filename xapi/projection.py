"""The flat projection: one plain row per stored statement, for SQL and BI tools.

The LRS keeps each statement exactly as accepted (JSON). Analysts on Superset, Metabase or psql
want columns they can filter, group and index instead: who, did what, to which activity, in
which course, with what result, and whether the statement has since been voided. The rows are
written in the same transaction as the statements they flatten (``record``, called by the
statement store), so the table never disagrees with the LRS.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, String, Text, select, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, Session, mapped_column

from lti_tool.db import Base, UTCDateTime

from .lrs.models import LrsStatement, Seq
from .vocabulary import COURSE_TYPE, VOIDED, Vocabulary

if TYPE_CHECKING:
    from lti_tool.app import Tool

VOIDED_VERB = VOIDED.iri
# The most an identifier column keeps as it is (bytes of UTF-8); three of them fit one index key.
MAX_KEY_BYTES = 400
ANALYTICS_COLUMNS = (
    "platform_id",
    "timestamp",
    "voided",
    "verb_id",
    "object_type",
    "object_id",
    "actor_ifi",
    "registration",
    "score_scaled",
    "completion",
    "success",
)
# JSONB on PostgreSQL, so analysts can index and query into it (event_data->>'unit').
EventData = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")


class FlatStatement(Base):
    """One statement, flattened. Documented column by column in the README ("Analytics")."""

    __tablename__ = "xapi_flat_statements"
    # Few indexes on purpose: each one costs every insert (measured: 30-110 us a row on SQLite),
    # and the flat table is written inside the LRS's write path. The wide one covers every column
    # the analytics page aggregates, and the common analyst filters on a platform and period
    # (verb, activity, person, enrolment), which it answers from the index alone. A person's or
    # an enrolment's own index (dropped in migration 0010) put one more random page in every
    # insert; the Statements API's agent and registration filters answer those lookups.
    __table_args__ = (
        Index("ix_xapi_flat_object_time", "object_id", "timestamp"),
        Index("ix_xapi_flat_platform_time", *ANALYTICS_COLUMNS),
    )

    # The statement's LRS sequence number (lrs_statements.seq): statements are stored in seq
    # order, so new rows append at the end of the table instead of landing at random places in
    # an index of UUIDs (migration 0011). Look a statement up by id through lrs_statements.id.
    seq: Mapped[int] = mapped_column(Seq, primary_key=True, autoincrement=False)
    statement_id: Mapped[str] = mapped_column(String(36))
    # The tool's platform (tenant) the statement belongs to; NULL for statements other LRS
    # clients sent that name no platform the tool knows.
    platform_id: Mapped[int | None] = mapped_column(ForeignKey("platforms.id", ondelete="CASCADE"), nullable=True)
    stored: Mapped[datetime] = mapped_column(UTCDateTime())
    timestamp: Mapped[datetime] = mapped_column(UTCDateTime())
    verb_id: Mapped[str] = mapped_column(Text)
    verb_display: Mapped[str | None] = mapped_column(Text, nullable=True)
    # One string per actor whatever its identifier: "account:<homePage>|<name>", "mbox:mailto:...",
    # "mbox_sha1sum:<hex>", "openid:<uri>" (a Group without one: "group:<statement id>").
    actor_ifi: Mapped[str] = mapped_column(Text)
    actor_object_type: Mapped[str] = mapped_column(String(16))
    actor_account_homepage: Mapped[str | None] = mapped_column(Text, nullable=True)
    actor_account_name: Mapped[str | None] = mapped_column(Text, nullable=True)
    actor_mbox: Mapped[str | None] = mapped_column(Text, nullable=True)
    actor_mbox_sha1sum: Mapped[str | None] = mapped_column(String(40), nullable=True)
    actor_openid: Mapped[str | None] = mapped_column(Text, nullable=True)
    actor_name: Mapped[str | None] = mapped_column(Text, nullable=True)
    object_id: Mapped[str] = mapped_column(Text)
    object_type: Mapped[str] = mapped_column(String(16))
    object_definition_type: Mapped[str | None] = mapped_column(Text, nullable=True)
    object_name: Mapped[str | None] = mapped_column(Text, nullable=True)
    parent_activity_id: Mapped[str | None] = mapped_column(Text, nullable=True)
    course_activity_id: Mapped[str | None] = mapped_column(Text, nullable=True)
    registration: Mapped[str | None] = mapped_column(String(36), nullable=True)
    lti_context_id: Mapped[str | None] = mapped_column(Text, nullable=True)
    lti_deployment_id: Mapped[str | None] = mapped_column(Text, nullable=True)
    lti_resource_link_id: Mapped[str | None] = mapped_column(Text, nullable=True)
    # The tool's plugin that emitted the statement, and what else its event reported (the
    # profile's event-data extension: unit, check, score_percent, ... as the plugin names them).
    plugin: Mapped[str | None] = mapped_column(Text, nullable=True)
    event_data: Mapped[dict | None] = mapped_column(EventData, nullable=True)
    score_raw: Mapped[float | None] = mapped_column(Float, nullable=True)
    score_scaled: Mapped[float | None] = mapped_column(Float, nullable=True)
    score_min: Mapped[float | None] = mapped_column(Float, nullable=True)
    score_max: Mapped[float | None] = mapped_column(Float, nullable=True)
    success: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    completion: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    duration: Mapped[str | None] = mapped_column(Text, nullable=True)
    duration_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    voided: Mapped[bool] = mapped_column(Boolean, default=False)
    # The voiding statement's id, once one voids this statement.
    voided_by: Mapped[str | None] = mapped_column(String(36), nullable=True)


_DURATION = re.compile(
    r"^P(?:(?P<years>\d+(?:[.,]\d+)?)Y)?(?:(?P<months>\d+(?:[.,]\d+)?)M)?(?:(?P<weeks>\d+(?:[.,]\d+)?)W)?"
    r"(?:(?P<days>\d+(?:[.,]\d+)?)D)?"
    r"(?:T(?:(?P<hours>\d+(?:[.,]\d+)?)H)?(?:(?P<minutes>\d+(?:[.,]\d+)?)M)?(?:(?P<seconds>\d+(?:[.,]\d+)?)S)?)?$"
)
_SECONDS_PER = {"weeks": 604800, "days": 86400, "hours": 3600, "minutes": 60, "seconds": 1}


def duration_seconds(value: str | None) -> float | None:
    """An ISO 8601 duration in seconds; None when absent, malformed or calendar-dependent.

    Years and months have no fixed length, so a duration that uses them has no number of
    seconds (the ISO string is kept in ``duration`` all the same).
    """
    if not value:
        return None
    match = _DURATION.match(value)
    if match is None or value in ("P", "PT") or value.endswith("T"):
        return None
    parts = {name: float(text.replace(",", ".")) for name, text in match.groupdict().items() if text}
    if parts.get("years") or parts.get("months"):
        return None
    return sum(parts.get(name, 0.0) * factor for name, factor in _SECONDS_PER.items())


def parse_timestamp(value: Any) -> datetime | None:
    """An xAPI timestamp (ISO 8601, any offset) as an aware UTC datetime."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)


def _language_map_text(value: Any) -> str | None:
    """One text out of a language map: en-GB, then any English, then the first given."""
    if not isinstance(value, dict) or not value:
        return None
    for tag in ("en-GB", "en-US", "en"):
        if isinstance(value.get(tag), str):
            return value[tag]
    for tag, text in value.items():
        if tag.lower().startswith("en") and isinstance(text, str):
            return text
    first = next(iter(value.values()))
    return first if isinstance(first, str) else None


def actor_ifi(actor: Mapping[str, Any]) -> str | None:
    """The actor's inverse functional identifier as one comparable string."""
    account = actor.get("account")
    if isinstance(account, dict):
        return f"account:{account.get('homePage', '')}|{account.get('name', '')}"
    for key in ("mbox", "mbox_sha1sum", "openid"):
        if actor.get(key):
            return f"{key}:{actor[key]}"
    return None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _flag(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _first_id(activities: Any, wanted_type: str | None = None) -> str | None:
    """The id of the first context activity (of ``wanted_type``, when given) in a list or object."""
    if isinstance(activities, dict):
        activities = [activities]
    if not isinstance(activities, list):
        return None
    for activity in activities:
        if not isinstance(activity, dict):
            continue
        definition = activity.get("definition")
        kind = definition.get("type") if isinstance(definition, dict) else None
        if wanted_type is None or kind == wanted_type:
            return _text(activity.get("id"))
    return None


@dataclass(frozen=True)
class Extensions:
    """Where the projection finds the LTI ids (context-extension IRIs) and the course activity."""

    context_id: str
    deployment_id: str
    resource_link_id: str
    plugin: str
    event_data: str
    course_type: str = COURSE_TYPE

    @classmethod
    def of(cls, vocabulary: Vocabulary) -> Extensions:
        """The IRIs the tool's own statements use (they depend on the installation's base URL)."""
        return cls(
            context_id=vocabulary.extension("lti_context_id"),
            deployment_id=vocabulary.extension("lti_deployment_id"),
            resource_link_id=vocabulary.extension("lti_resource_link_id"),
            plugin=vocabulary.extension("plugin"),
            event_data=vocabulary.extension("event_data"),
        )


def indexable(value: str) -> str:
    """``value``, or ``sha256:<hex digest>`` when it is longer than an index key can hold.

    The identifier columns are indexed, and PostgreSQL refuses index keys over ~2.7 kB, so an
    IRI of thousands of characters (valid xAPI) would otherwise make the LRS refuse a statement.
    The digest still identifies it exactly: ``'sha256:' || encode(sha256(convert_to(iri, 'UTF8')), 'hex')``.
    """
    if len(value) > MAX_KEY_BYTES // 4 and len(value.encode()) > MAX_KEY_BYTES:
        return "sha256:" + hashlib.sha256(value.encode()).hexdigest()
    return value


def project(statement: Mapping[str, Any], extensions: Extensions) -> dict[str, Any]:
    """The flat row of one stored statement (it must carry ``id`` and ``stored``)."""
    actor = statement.get("actor") or {}
    account = actor.get("account") if isinstance(actor.get("account"), dict) else {}
    verb = statement.get("verb") or {}
    obj = statement.get("object") or {}
    definition = obj.get("definition") if isinstance(obj.get("definition"), dict) else {}
    context = statement.get("context") if isinstance(statement.get("context"), dict) else {}
    context_activities = context.get("contextActivities") or {}
    context_extensions = context.get("extensions") or {}
    result = statement.get("result") if isinstance(statement.get("result"), dict) else {}
    score = result.get("score") if isinstance(result.get("score"), dict) else {}
    stored = parse_timestamp(statement.get("stored"))
    object_type = obj.get("objectType") or "Activity"
    return {
        "statement_id": str(statement["id"]).lower(),
        "stored": stored,
        "timestamp": parse_timestamp(statement.get("timestamp")) or stored,
        "verb_id": indexable(verb.get("id", "")),
        "verb_display": _language_map_text(verb.get("display")),
        "actor_ifi": indexable(actor_ifi(actor) or f"group:{statement['id']}"),
        "actor_object_type": actor.get("objectType") or "Agent",
        "actor_account_homepage": _text(account.get("homePage")),
        "actor_account_name": _text(account.get("name")),
        "actor_mbox": _text(actor.get("mbox")),
        "actor_mbox_sha1sum": _text(actor.get("mbox_sha1sum")),
        "actor_openid": _text(actor.get("openid")),
        "actor_name": _text(actor.get("name")),
        "object_id": str(obj.get("id", "")).lower()
        if object_type == "StatementRef"
        else indexable(_object_id(obj)),
        "object_type": object_type,
        "object_definition_type": _text(definition.get("type")),
        "object_name": _language_map_text(definition.get("name")),
        "parent_activity_id": _first_id(context_activities.get("parent")),
        "course_activity_id": _first_id(context_activities.get("grouping"), extensions.course_type),
        "registration": _text(context.get("registration")),
        "lti_context_id": _extension_text(context_extensions, extensions.context_id),
        "lti_deployment_id": _extension_text(context_extensions, extensions.deployment_id),
        "lti_resource_link_id": _extension_text(context_extensions, extensions.resource_link_id),
        "plugin": _extension_text(context_extensions, extensions.plugin),
        "event_data": _extension_object(context_extensions, extensions.event_data),
        "score_raw": _number(score.get("raw")),
        "score_scaled": _number(score.get("scaled")),
        "score_min": _number(score.get("min")),
        "score_max": _number(score.get("max")),
        "success": _flag(result.get("success")),
        "completion": _flag(result.get("completion")),
        "duration": _text(result.get("duration")),
        "duration_seconds": duration_seconds(result.get("duration")),
        "voided": False,
        "voided_by": None,
    }


def _object_id(obj: Mapping[str, Any]) -> str:
    """An Activity's id; an Agent/Group object's IFI; a SubStatement's own activity, if any."""
    if obj.get("objectType") in ("Agent", "Group"):
        return actor_ifi(obj) or ""
    if obj.get("objectType") == "SubStatement":
        inner = obj.get("object") or {}
        return str(inner.get("id", ""))
    return str(obj.get("id", ""))


def _extension_text(extensions: Any, iri: str) -> str | None:
    if not isinstance(extensions, dict):
        return None
    value = extensions.get(iri)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return _text(value)


def _extension_object(extensions: Any, iri: str) -> dict | None:
    value = extensions.get(iri) if isinstance(extensions, dict) else None
    return dict(value) if isinstance(value, dict) else None


def record(
    session: Session, stored: Iterable[tuple[Mapping[str, Any], int | None, int]], extensions: Extensions
) -> int:
    """Add the flat rows of newly stored (statement, platform id, seq), then apply their voiding.

    Runs in the statement store's transaction. As in the LRS, a voiding statement flags its target
    when the target is stored already (earlier, or earlier in the same batch).
    """
    rows = []
    for statement, platform_id, seq in stored:
        row = project(statement, extensions)
        row["platform_id"] = platform_id
        row["seq"] = seq
        rows.append(row)
    if not rows:
        return 0
    _insert(session, rows)
    mark_voided(session, {row["object_id"]: row["statement_id"] for row in rows if _is_voiding(row)})
    return len(rows)


COLUMNS = tuple(column.name for column in FlatStatement.__table__.columns)
_processors: dict[str, list] = {}


def _insert(session: Session, rows: list[dict[str, Any]]) -> None:
    """The rows as tuples straight to the driver (the statement store's bulk path: COPY on PostgreSQL)."""
    from .lrs.store import bind_processors, bulk_insert

    table = FlatStatement.__table__
    dialect = session.connection().dialect
    key = f"{dialect.name}+{dialect.driver}"
    processors = _processors.get(key)
    if processors is None:
        processors = _processors[key] = bind_processors(table, COLUMNS, dialect)
    columns = tuple(zip(COLUMNS, processors, strict=True))
    bulk_insert(
        session,
        table,
        COLUMNS,
        [tuple(row[name] if process is None else process(row[name]) for name, process in columns) for row in rows],
    )


def mark_voided(session: Session, voided: Mapping[str, str]) -> None:
    """Flag stored statements (target id -> voiding statement id) as voided."""
    table, statements = FlatStatement.__table__, LrsStatement.__table__
    for target, voider in voided.items():
        # The target's seq through the LRS's unique index of statement ids.
        seq = select(statements.c.seq).where(statements.c.id == target).scalar_subquery()
        session.execute(
            update(table)
            .where(table.c.seq == seq, table.c.voided.is_(False))
            .values(voided=True, voided_by=voider)
        )


def _is_voiding(row: Mapping[str, Any]) -> bool:
    return row["verb_id"] == VOIDED_VERB and row["object_type"] == "StatementRef"


def projector(extensions: Extensions):
    """The ``StatementStore.after_store`` callback that keeps the flat table in step."""

    def after_store(session: Session, rows) -> None:
        record(session, ((row.statement, row.platform_id, row.seq) for row in rows), extensions)

    return after_store


def install(tool: Tool) -> None:
    """Keep the flat table in step with the tool's statement store, in the store's transactions."""
    from .lrs import statement_store

    extensions = Extensions.of(Vocabulary.from_settings(tool.settings))
    statement_store(tool).after_store.append(projector(extensions))
