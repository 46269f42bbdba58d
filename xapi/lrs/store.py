"""Statement storage: the one write path (``StatementStore.store``) and the reads the API needs.

Everyone who writes statements goes through ``store()``: the Statements API for keys, and the
tool's own receivers of learning events (no key: they pass their own ``authority``). Writes
take the LRS clock row first, so concurrent writers queue there; each batch then gets one
``stored`` time that never goes backwards and a contiguous run of sequence numbers, and all of
its rows go in with a handful of multi-row INSERTs.

Other parts of the tool can keep their own tables in step with the statements: append a
callable to ``StatementStore.after_store``; it is called as ``callback(session, rows)`` inside
the same transaction, after the statements are written, with the ``StoredStatement`` rows that
were new (identical re-sends are not passed again). Raising aborts the whole batch.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import secrets
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import bindparam, case, insert, select, union, update
from sqlalchemy.orm import Session

from lti_tool.db import Database

from . import write_lock
from .models import LrsActivity, LrsAttachment, LrsClock, LrsStatement, LrsStatementTerm
from .terms import activity_definitions, statement_terms

VOIDED_VERB = "http://adlnet.gov/expapi/verbs/voided"
LRS_SET = ("stored", "authority", "version")
DURATION_SECONDS = re.compile(r"(\d+)(?:\.(\d+))?S\Z")


class StatementError(ValueError):
    """A batch the LRS refuses as a whole (the HTTP layer answers 400); nothing is stored."""


class StatementConflict(StatementError):
    """A statement id already stored with different content (the HTTP layer answers 409)."""

    def __init__(self, statement_id: str):
        super().__init__(f"statement {statement_id} already exists with different content")
        self.statement_id = statement_id


@dataclass(frozen=True)
class StoredStatement:
    """A statement as the LRS keeps it."""

    seq: int
    id: str
    stored_ms: int
    statement: dict
    json: str
    platform_id: int | None = None
    voided: bool = False


@dataclass
class StatementQuery:
    """The filters of GET /statements, already parsed (term hashes, milliseconds, a cursor)."""

    # Every filter as the term hashes it accepts (a statement matches if it has any of them).
    terms: list[tuple[int, ...]] = field(default_factory=list)
    since_ms: int | None = None
    until_ms: int | None = None
    limit: int = 100
    ascending: bool = False
    # The last sequence number a previous page returned (the ``more`` cursor).
    after_seq: int | None = None
    platform_id: int | None = None


@dataclass(frozen=True)
class StatementPage:
    statements: list[str]  # the stored JSON texts, in order
    next_seq: int | None  # cursor for the next page, or None when this is the last


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def format_ms(ms: int) -> str:
    """An xAPI timestamp with millisecond precision in UTC."""
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def dumps(value) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def parse_instant(value: str) -> datetime | None:
    """An ISO 8601 timestamp as an aware datetime, or None if it is not one."""
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except (ValueError, AttributeError, TypeError):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _duration_to_hundredths(duration: str) -> str:
    """A duration with seconds truncated to 0.01 s: xAPI compares durations at that precision."""
    match = DURATION_SECONDS.search(duration)
    if match is None:
        return duration
    whole, fraction = match.group(1), (match.group(2) or "")[:2].rstrip("0")
    return duration[: match.start()] + whole + (f".{fraction}" if fraction else "") + "S"


def normalise(statement: dict) -> dict:
    """The statement as the LRS keeps it: each contextActivities value an array (also in a SubStatement)."""
    result = dict(statement)
    context = result.get("context")
    if isinstance(context, dict) and isinstance(context.get("contextActivities"), dict):
        activities = {k: v if isinstance(v, list) else [v] for k, v in context["contextActivities"].items()}
        result["context"] = {**context, "contextActivities": activities}
    obj = result.get("object")
    if isinstance(obj, dict) and obj.get("objectType") == "SubStatement":
        result["object"] = normalise(obj)
    return result


def comparable(statement: dict, *, with_timestamp: bool = True) -> dict:
    """The parts of a statement that decide whether two sends are "the same statement".

    What the LRS adds (stored, authority, version) is ignored, timestamps compare as instants,
    and the id compares case-insensitively.
    """
    result = {k: v for k, v in normalise(statement).items() if k not in LRS_SET}
    if isinstance(result.get("result"), dict) and isinstance(result["result"].get("duration"), str):
        result["result"] = {**result["result"], "duration": _duration_to_hundredths(result["result"]["duration"])}
    if "id" in result and isinstance(result["id"], str):
        result["id"] = result["id"].lower()
    if not with_timestamp:
        result.pop("timestamp", None)
    elif isinstance(result.get("timestamp"), str):
        instant = parse_instant(result["timestamp"])
        if instant is not None:
            result["timestamp"] = instant.astimezone(UTC).isoformat()
    return result


def same_statement(existing: dict, new: dict) -> bool:
    """Whether ``new`` re-sends ``existing`` (a re-send without a timestamp matches any)."""
    has_timestamp = "timestamp" in new
    return comparable(existing, with_timestamp=has_timestamp) == comparable(new, with_timestamp=has_timestamp)


def merge_definition(old: dict, new: dict) -> dict:
    """A canonical activity definition: language maps merged, everything else the newest."""
    merged = dict(old)
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict) and key in ("name", "description"):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


# Stands in for the stored time while a statement is serialised before the write lock is taken;
# random per process, so no statement can contain it.
STORED_PLACEHOLDER = "@" + secrets.token_hex(11) + "@"


@dataclass
class _Prepared:
    """A statement made ready outside the lock: complete but for its stored time."""

    id: str
    sent: dict
    complete: dict
    template: str
    terms: set[int]

    def complete_at(self, stored: str, *, seq: int, stored_ms: int, platform_id: int | None) -> StoredStatement:
        statement = self.complete
        statement["stored"] = stored
        if statement["timestamp"] == STORED_PLACEHOLDER:
            statement["timestamp"] = stored
        return StoredStatement(
            seq=seq,
            id=self.id,
            stored_ms=stored_ms,
            statement=statement,
            json=self.template.replace(STORED_PLACEHOLDER, stored),
            platform_id=platform_id,
        )


def batch_definitions(statements) -> dict[str, tuple[str, dict]]:
    """The activity definitions a batch carries, merged per activity: {sha256(id): (id, definition)}."""
    by_iri: dict[str, dict] = {}
    for statement in statements:
        for activity in activity_definitions(statement):
            iri, definition = activity["id"], activity["definition"]
            previous = by_iri.get(iri)
            # Most statements of a batch repeat the definitions of the ones before them.
            if previous is None:
                by_iri[iri] = definition
            elif previous != definition:
                by_iri[iri] = merge_definition(previous, definition)
    return {sha256_hex(iri): (iri, definition) for iri, definition in by_iri.items()}


AfterStore = Callable[[Session, list[StoredStatement]], None]


def _copy_value(value) -> str:
    """One value in PostgreSQL's COPY text format."""
    if value is None:
        return "\\N"
    if value is True or value is False:
        return "t" if value else "f"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def bulk_insert(session: Session, table, columns: tuple[str, ...], rows: list[tuple]) -> None:
    """A multi-row INSERT of plain tuples, already in the driver's types (see ``bind_processors``).

    The rows go to the driver as they are, with no per-row work in SQLAlchemy (a batch of 100
    statements has over 1,000 term rows): on SQLite the driver's executemany, on PostgreSQL with
    psycopg2 a COPY, which PostgreSQL also parses faster than INSERTs.
    """
    connection = session.connection()
    names = ", ".join(columns)
    if connection.dialect.name == "sqlite":
        marks = ", ".join("?" * len(columns))
        connection.exec_driver_sql(f"INSERT INTO {table.name} ({names}) VALUES ({marks})", rows)
    elif connection.dialect.driver == "psycopg2":
        text = "".join("\t".join(map(_copy_value, row)) + "\n" for row in rows)
        with connection.connection.driver_connection.cursor() as cursor:
            cursor.copy_expert(f"COPY {table.name} ({names}) FROM STDIN", io.StringIO(text))
    else:
        connection.execute(insert(table), [dict(zip(columns, row, strict=True)) for row in rows])


def bind_processors(table, columns: tuple[str, ...], dialect) -> list:
    """Per column, what SQLAlchemy would do to a value before handing it to the driver (or None)."""
    return [table.c[name].type.bind_processor(dialect) for name in columns]


class StatementStore:
    """Statements in the tool's database: store, get, query."""

    def __init__(self, db: Database):
        self.db = db
        self.after_store: list[AfterStore] = []
        self.write_lock = write_lock.for_database(db.url)

    # -- writing ---------------------------------------------------------------------------------

    def store(
        self,
        statements: Sequence[dict],
        *,
        authority: dict,
        platform_id: int | None = None,
        version: str = "1.0.0",
        attachments: dict[str, tuple[str, bytes]] | None = None,
    ) -> list[str]:
        """Store a batch (all or nothing); returns the statement ids in order.

        Assigns ``id`` (when absent), ``stored``, ``timestamp`` (= stored when absent),
        ``authority`` (always: the credentials' agent) and ``version`` (when absent). A statement
        whose id is stored already is a no-op when identical, else ``StatementConflict``.
        ``attachments`` maps SHA-2 hashes to (content type, bytes) for attachments sent inline.
        """
        batch = [normalise(s) for s in statements]
        ids: list[str] = []
        for statement in batch:
            if statement.get("id") is None:
                statement["id"] = str(uuid.uuid4())
            ids.append(statement["id"].lower())
        if len(set(ids)) != len(ids):
            twice = next(i for i in ids if ids.count(i) > 1)
            raise StatementError(f"statements: the batch holds statement id {twice} twice")
        if not batch:
            return []
        # Everything that does not need the write lock is done before taking it.
        prepared = [self._prepare(i, s, authority, version) for i, s in zip(ids, batch, strict=True)]
        definitions = batch_definitions(p.complete for p in prepared)

        written = self._write(ids, prepared, definitions, platform_id, attachments)
        self.write_lock.wrote(self.db.engine, written)
        return ids

    def _write(
        self,
        ids: list[str],
        prepared: list[_Prepared],
        definitions: dict[str, tuple[str, dict]],
        platform_id: int | None,
        attachments: dict[str, tuple[str, bytes]] | None,
    ) -> int:
        """The batch's rows, under the write lock, in one transaction; returns how many were new."""
        with self.write_lock.held(), self.db.transaction() as session:
            stored_ms, first_seq = self._tick(session)
            existing = self._existing(session, ids)
            new = []
            for item in prepared:
                if item.id in existing:
                    if not same_statement(existing[item.id], item.sent):
                        raise StatementConflict(item.id)
                    continue
                new.append(item)
            if not new:
                return 0
            voiding = self._check_voiding(session, new)
            stored = format_ms(stored_ms)
            rows = [
                item.complete_at(stored, seq=first_seq + offset, stored_ms=stored_ms, platform_id=platform_id)
                for offset, item in enumerate(new)
            ]
            self._insert(session, rows, {item.id: item.terms for item in new}, voiding)
            self._merge_activities(session, definitions)
            if attachments:
                self._store_attachments(session, rows, attachments)
            for callback in self.after_store:
                callback(session, rows)
        return len(rows)

    def _prepare(self, statement_id: str, sent: dict, authority: dict, version: str) -> _Prepared:
        complete = dict(sent)
        complete["stored"] = STORED_PLACEHOLDER
        complete.setdefault("timestamp", STORED_PLACEHOLDER)
        complete["authority"] = authority
        complete.setdefault("version", version)
        return _Prepared(statement_id, sent, complete, dumps(complete), statement_terms(complete))

    def _tick(self, session: Session) -> tuple[int, int]:
        """Take the write lock (the clock row) and return this batch's stored time and first seq."""
        clock = LrsClock.__table__
        now = now_ms()
        session.execute(
            update(clock)
            .where(clock.c.id == 1)
            .values(last_ms=case((clock.c.last_ms < now, now), else_=clock.c.last_ms))
        )
        last_ms = session.scalar(select(clock.c.last_ms).where(clock.c.id == 1))
        last_seq = session.scalar(select(LrsStatement.seq).order_by(LrsStatement.seq.desc()).limit(1)) or 0
        return last_ms, last_seq + 1

    def _existing(self, session: Session, ids: list[str]) -> dict[str, dict]:
        table = LrsStatement.__table__
        found: dict[str, dict] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            for statement_id, body in session.execute(
                select(table.c.id, table.c.statement).where(table.c.id.in_(chunk))
            ):
                found[statement_id] = json.loads(body)
        return found

    def _check_voiding(self, session: Session, new: list[_Prepared]) -> dict[str, str]:
        """Voiding statements of the batch: {voiding id: target id}; refuses to void a voider."""
        voiding: dict[str, str] = {}
        for item in new:
            verb = item.sent.get("verb") or {}
            obj = item.sent.get("object") or {}
            if verb.get("id") == VOIDED_VERB and obj.get("objectType") == "StatementRef":
                voiding[item.id] = str(obj.get("id", "")).lower()
        if not voiding:
            return voiding
        table = LrsStatement.__table__
        targets = set(voiding.values())
        voiders = {
            row.id
            for row in session.execute(
                select(table.c.id).where(table.c.id.in_(targets), table.c.voids.is_not(None))
            )
        }
        voiders.update(t for t in targets if t in voiding)
        for statement_id, target in voiding.items():
            if target in voiders:
                raise StatementError(
                    f"object.id: statement {statement_id} voids {target}, which is itself a voiding statement"
                )
        return voiding

    def _insert(
        self, session: Session, rows: list[StoredStatement], own: dict[str, set[int]], voiding: dict[str, str]
    ) -> None:
        bulk_insert(
            session,
            LrsStatement.__table__,
            ("seq", "id", "platform_id", "stored_ms", "voided", "voids", "has_attachments", "statement"),
            [
                (
                    row.seq,
                    row.id,
                    row.platform_id,
                    row.stored_ms,
                    False,
                    voiding.get(row.id),
                    bool(row.statement.get("attachments")),
                    row.json,
                )
                for row in rows
            ],
        )
        terms = self._terms(session, rows, own)
        if terms:
            bulk_insert(session, LrsStatementTerm.__table__, ("term", "seq"), terms)
        if voiding:
            table = LrsStatement.__table__
            session.execute(update(table).where(table.c.id.in_(set(voiding.values()))).values(voided=True))

    def _terms(self, session: Session, rows: list[StoredStatement], own: dict[str, set[int]]) -> list[tuple]:
        """Each statement's terms, plus those of the statement it refers to (a StatementRef).

        A filter that matches a statement also matches the statements that refer to it (xAPI's
        filter rule for StatementRefs), so a referring statement inherits its target's terms.
        """
        seq_of = {row.id: row.seq for row in rows}
        refs = {}
        for row in rows:
            obj = row.statement.get("object")
            if (
                isinstance(obj, dict)
                and obj.get("objectType") == "StatementRef"
                and isinstance(obj.get("id"), str)
            ):
                refs[row.id] = obj["id"].lower()
        outside = {t for t in refs.values() if t not in own}
        inherited: dict[str, set[int]] = {}
        if outside:
            table = LrsStatement.__table__
            terms = LrsStatementTerm.__table__
            for statement_id, term in session.execute(
                select(table.c.id, terms.c.term)
                .join(terms, terms.c.seq == table.c.seq)
                .where(table.c.id.in_(outside))
            ):
                inherited.setdefault(statement_id, set()).add(term)
        result = []
        for row in rows:
            found = set(own[row.id])
            target, seen = refs.get(row.id), {row.id}
            while target is not None and target not in seen:
                seen.add(target)
                found |= own.get(target) or inherited.get(target) or set()
                target = refs.get(target)
            seq = seq_of[row.id]
            result.extend((term, seq) for term in found)
        return result

    def _merge_activities(self, session: Session, definitions: dict[str, tuple[str, dict]]) -> None:
        """Fold the batch's activity definitions into the canonical ones (writing only changes)."""
        if not definitions:
            return
        table = LrsActivity.__table__
        known = {
            id_hash: body
            for id_hash, body in session.execute(
                select(table.c.id_hash, table.c.definition).where(table.c.id_hash.in_(definitions))
            )
        }
        updates, inserts = [], []
        for key, (iri, definition) in definitions.items():
            if key not in known:
                inserts.append({"id_hash": key, "activity_id": iri, "definition": dumps(definition)})
                continue
            stored = json.loads(known[key])
            merged = merge_definition(stored, definition)
            if merged != stored:
                updates.append({"h": key, "definition": dumps(merged)})
        if updates:
            session.execute(
                update(table).where(table.c.id_hash == bindparam("h")).values(definition=bindparam("definition")),
                updates,
            )
        if inserts:
            session.execute(insert(table), inserts)

    def _store_attachments(self, session, rows, attachments: dict[str, tuple[str, bytes]]) -> None:
        table = LrsAttachment.__table__
        wanted = {
            attachment["sha2"]
            for row in rows
            for attachment in row.statement.get("attachments") or []
            if isinstance(attachment, dict) and attachment.get("sha2") in attachments
        }
        if not wanted:
            return
        present = set(session.scalars(select(table.c.sha2).where(table.c.sha2.in_(wanted))))
        fresh = [
            {"sha2": sha2, "content_type": attachments[sha2][0], "content": attachments[sha2][1]}
            for sha2 in wanted - present
        ]
        if fresh:
            session.execute(insert(table), fresh)

    # -- reading ---------------------------------------------------------------------------------

    def get(self, statement_id: str) -> StoredStatement | None:
        """A statement by id, voided or not (``.voided`` says which)."""
        table = LrsStatement.__table__
        with self.db.sessions() as session:
            row = session.execute(select(table).where(table.c.id == statement_id.lower())).first()
        if row is None:
            return None
        return StoredStatement(
            seq=row.seq,
            id=row.id,
            stored_ms=row.stored_ms,
            statement=json.loads(row.statement),
            json=row.statement,
            platform_id=row.platform_id,
            voided=row.voided,
        )

    def query(self, q: StatementQuery) -> StatementPage:
        """One page of unvoided statements matching every term, newest first unless ascending."""
        statements = LrsStatement.__table__
        with self.db.sessions() as session:
            low = self._seq_at(session, q.since_ms) if q.since_ms is not None else None
            high = self._seq_at(session, q.until_ms) if q.until_ms is not None else None
            if q.after_seq is not None:
                if q.ascending:
                    low = q.after_seq if low is None else max(low, q.after_seq)
                else:
                    high = q.after_seq - 1 if high is None else min(high, q.after_seq - 1)
            drivers = q.terms[0] if q.terms else (None,)
            if len(drivers) == 1:
                stmt = self._scan(q, drivers[0], low, high, statements.c.statement)
            else:
                # One bounded range scan per term the first filter accepts, each in seq order and
                # limited, then merged: never a sort of every match. A statement stored before
                # related terms stopped repeating the direct ones has both; UNION keeps it once.
                scans = [self._scan(q, term, low, high).subquery() for term in drivers]
                merged = union(*(select(scan.c.seq) for scan in scans)).subquery()
                stmt = select(statements.c.seq, statements.c.statement).join(
                    merged, merged.c.seq == statements.c.seq
                )
                seq = statements.c.seq
                stmt = stmt.order_by(seq.asc() if q.ascending else seq.desc()).limit(q.limit + 1)
            rows = session.execute(stmt).all()
        more = len(rows) > q.limit
        rows = rows[: q.limit]
        return StatementPage([row.statement for row in rows], rows[-1].seq if more else None)

    @staticmethod
    def _scan(q: StatementQuery, driver: int | None, low: int | None, high: int | None, *columns):
        """Seqs (and ``columns``) of the page's statements that have the term ``driver`` (None: any
        statement) and match the query's other filters, in the page's order."""
        statements, terms = LrsStatement.__table__, LrsStatementTerm.__table__
        if driver is None:
            seq = statements.c.seq
            stmt = select(seq, *columns)
        else:
            first = terms.alias("t0")
            seq = first.c.seq
            stmt = select(seq, *columns).select_from(first.join(statements, statements.c.seq == seq))
            stmt = stmt.where(first.c.term == driver)
        for number, accepted in enumerate(q.terms[1:], start=1):
            alias = terms.alias(f"t{number}")
            stmt = stmt.where(select(alias.c.seq).where(alias.c.term.in_(accepted), alias.c.seq == seq).exists())
        stmt = stmt.where(statements.c.voided.is_(False))
        if low is not None:
            stmt = stmt.where(seq > low)
        if high is not None:
            stmt = stmt.where(seq <= high)
        if q.platform_id is not None:
            stmt = stmt.where(statements.c.platform_id == q.platform_id)
        return stmt.order_by(seq.asc() if q.ascending else seq.desc()).limit(q.limit + 1)

    def _seq_at(self, session: Session, ms: int) -> int:
        """The last sequence number stored at or before ``ms`` (0 if none)."""
        table = LrsStatement.__table__
        found = session.scalar(
            select(table.c.seq)
            .where(table.c.stored_ms <= ms)
            .order_by(table.c.stored_ms.desc(), table.c.seq.desc())
            .limit(1)
        )
        return found or 0

    def attachments(self, sha2s: set[str]) -> dict[str, tuple[str, bytes]]:
        """Stored attachment contents by hash."""
        if not sha2s:
            return {}
        table = LrsAttachment.__table__
        with self.db.sessions() as session:
            return {
                row.sha2: (row.content_type, row.content)
                for row in session.execute(select(table).where(table.c.sha2.in_(sha2s)))
            }
