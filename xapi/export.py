"""Exports of stored statements for analytics: JSON Lines as stored, or CSV of the common fields.

Statements are read in the order the LRS stored them, a thousand rows at a time through a
streaming cursor, and written as they come, so an export of millions of statements runs in
constant memory. The period is half-open on ``stored``: ``since <= stored < until``, so
consecutive exports (``--since`` = the previous ``--until``) neither overlap nor leave gaps.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import TextIO

from sqlalchemy import func, select

from lti_tool.db import Database

from .lrs.models import LrsStatement
from .projection import Extensions, project

FORMATS = ("jsonl", "csv")
FETCH_ROWS = 1000

# The CSV's columns, in order; each is a column of the flat projection except ``actor``,
# ``verb``, ``object`` and ``course`` (see CSV_FROM_FLAT).
CSV_COLUMNS = (
    "statement_id",
    "timestamp",
    "stored",
    "actor",
    "actor_name",
    "verb",
    "verb_display",
    "object",
    "object_type",
    "object_name",
    "plugin",
    "score_scaled",
    "score_raw",
    "score_min",
    "score_max",
    "success",
    "completion",
    "duration_seconds",
    "registration",
    "course",
    "lti_context_id",
    "voided",
)
CSV_FROM_FLAT = {"actor": "actor_ifi", "verb": "verb_id", "object": "object_id", "course": "course_activity_id"}


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _ms(moment: datetime) -> int:
    """Milliseconds since the epoch, exactly (``timestamp() * 1000`` can land a millisecond short)."""
    return (moment - EPOCH) // timedelta(milliseconds=1)


def _selection(since: datetime | None, until: datetime | None, include_voided: bool):
    table = LrsStatement.__table__
    conditions = []
    if since is not None:
        conditions.append(table.c.stored_ms >= _ms(since))
    if until is not None:
        conditions.append(table.c.stored_ms < _ms(until))
    if not include_voided:
        conditions.append(table.c.voided.is_(False))
    return table, conditions


def count(db: Database, since: datetime | None, until: datetime | None, include_voided: bool = False) -> int:
    """How many statements an export of the same period would write."""
    table, conditions = _selection(since, until, include_voided)
    with db.sessions() as session:
        return session.scalar(select(func.count()).select_from(table).where(*conditions)) or 0


def stored_statements(
    db: Database, since: datetime | None, until: datetime | None, include_voided: bool = False
) -> Iterator[tuple[str, bool]]:
    """(stored JSON text, voided) of each statement in the period, in stored order."""
    table, conditions = _selection(since, until, include_voided)
    query = (
        select(table.c.statement, table.c.voided)
        .where(*conditions)
        .order_by(table.c.seq)
        .execution_options(yield_per=FETCH_ROWS)
    )
    with db.sessions() as session, session.begin():
        yield from session.execute(query).tuples()


def csv_row(statement: dict, voided: bool, extensions: Extensions) -> list[str]:
    """One statement's CSV cells: empty for what it lacks, true/false for flags, ISO 8601 times."""
    flat = project(statement, extensions)
    flat["voided"] = voided
    cells = []
    for column in CSV_COLUMNS:
        value = flat[CSV_FROM_FLAT.get(column, column)]
        if value is None:
            cells.append("")
        elif isinstance(value, bool):
            cells.append("true" if value else "false")
        elif isinstance(value, datetime):
            cells.append(value.isoformat(timespec="milliseconds").replace("+00:00", "Z"))
        else:
            cells.append(str(value))
    return cells


def write(
    db: Database,
    out: TextIO,
    fmt: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    include_voided: bool = False,
    extensions: Extensions,
    advance: Callable[[int], None] | None = None,
) -> int:
    """Write the period's statements to ``out`` as ``fmt``; returns how many were written."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    written = 0
    writer = csv.writer(out, lineterminator="\n") if fmt == "csv" else None
    if writer is not None:
        writer.writerow(CSV_COLUMNS)
    for text, voided in stored_statements(db, since, until, include_voided):
        if writer is None:
            out.write(text)
            out.write("\n")
        else:
            writer.writerow(csv_row(json.loads(text), voided, extensions))
        written += 1
        if advance is not None and written % FETCH_ROWS == 0:
            advance(FETCH_ROWS)
    if advance is not None:
        advance(written % FETCH_ROWS)
    return written
